"""Connection pool set-up, shared by the checkpointer and the project's stores.

Connections follow the LangGraph Postgres saver's needs: autocommit, no server-side prepared
statements (safe behind PgBouncer), dict rows.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from crew.errors import DatabaseError

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": 0,
    "row_factory": dict_row,
}


async def open_pool(conninfo: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """Open a pool and prove it works, with an error that says where it tried to connect."""
    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs=CONNECTION_KWARGS,
        open=False,
        connection_class=AsyncConnection[DictRow],
    )
    try:
        await pool.open(wait=True, timeout=15)
    except Exception as exc:
        await pool.close()
        raise DatabaseError(f"cannot connect to Postgres at {redact(conninfo)}: {exc}") from exc
    return pool


def redact(conninfo: str) -> str:
    """A connection string without its password, for messages and logs."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return "<unparsable connection string>"
    if "password" in params:
        params["password"] = "***"  # noqa: S105 - a mask, not a secret
    return make_conninfo("", **params)
