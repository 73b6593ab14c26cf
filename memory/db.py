"""Connection pool set-up, shared by the checkpointer and the project's stores.

Connections follow the LangGraph Postgres saver's needs: autocommit, no server-side prepared
statements (safe behind PgBouncer), dict rows. They are `Connection`s, which can run code once
a transaction has committed or rolled back (what the outbox counts its events with).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, AsyncTransaction
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from schemas.errors import DatabaseError
from tools.bus import BusObserver

logger = logging.getLogger(__name__)

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": 0,
    "row_factory": dict_row,
}

OnCommit = Callable[[], None]
OnRollback = Callable[[BaseException | None], None]
"""Called with the exception that ended the transaction (None: `force_rollback`)."""


@dataclass
class _Frame:
    """The hooks registered inside one `transaction()` block."""

    hooks: list[tuple[OnCommit, OnRollback | None]] = field(default_factory=list)

    def committed(self) -> None:
        for on_commit, _ in self.hooks:
            _call(on_commit)

    def rolled_back(self, exc: BaseException | None) -> None:
        for _, on_rollback in self.hooks:
            if on_rollback is not None:
                _call(on_rollback, exc)


def _call(hook: Callable[..., None], *args: Any) -> None:
    """A hook never undoes or fails what the database already decided: errors are logged."""
    try:
        hook(*args)
    except Exception:
        logger.exception("a transaction hook failed (the transaction's outcome stands)")


class Connection(AsyncConnection[DictRow]):
    """A pool connection whose transactions can run code once they commit or roll back.

    Why: code that writes in its caller's transaction (the outbox's `insert_events`, called
    from the checkpoint's, a heartbeat's or a gate decision's transaction) only knows its rows
    are stored once that transaction commits, which happens in the caller. `on_commit` lets it
    act then, without every caller passing it along (like Django's `transaction.on_commit`).
    Callers keep writing `async with conn.transaction()`.

    The pool's connections are autocommit, so the outermost `transaction()` block is the
    database transaction; a nested block (a savepoint) hands its hooks to the enclosing one
    when it succeeds, and rolls them back when it fails.
    """

    outbox_observer: BusObserver | None = None
    """Who counts this connection's outbox writes as bus publishes: set by `open_pool` when
    the outbox is the bus (`CREW_BUS_URL=postgres`); None: nobody."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frames: list[_Frame] = []

    def on_commit(self, committed: OnCommit, rolled_back: OnRollback | None = None) -> None:
        """Run `committed` when the current transaction commits, else `rolled_back`. Outside
        any `transaction()` block the statements already committed: `committed` runs now."""
        if not self._frames:
            _call(committed)
            return
        self._frames[-1].hooks.append((committed, rolled_back))

    @asynccontextmanager
    async def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        frame = _Frame()
        self._frames.append(frame)
        try:
            async with super().transaction(savepoint_name, force_rollback) as tx:
                yield tx
        except BaseException as exc:
            self._frames.pop()
            frame.rolled_back(exc)
            raise
        self._frames.pop()
        if force_rollback:
            frame.rolled_back(None)
        elif self._frames:  # a savepoint: its writes stand or fall with the enclosing block
            self._frames[-1].hooks.extend(frame.hooks)
        else:
            frame.committed()


async def open_pool(
    conninfo: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    outbox_observer: BusObserver | None = None,
) -> Pool:
    """Open a pool and prove it works, with an error that says where it tried to connect.

    `outbox_observer` hears every event written to the outbox through this pool (published
    once its transaction commits, failed when a database error ends it): pass it when the
    outbox is the bus (`CREW_BUS_URL=postgres`); with Redis/NATS the relay's publishes count.
    """

    async def configure(conn: AsyncConnection[DictRow]) -> None:
        if isinstance(conn, Connection):
            conn.outbox_observer = outbox_observer

    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs=CONNECTION_KWARGS,
        open=False,
        connection_class=Connection,
        configure=configure if outbox_observer is not None else None,
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
