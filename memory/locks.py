"""Stack locks: a Postgres advisory lock per Terraform stack, so two runs never change one
stack at once (docs/architecture.md, Scale-out).

`stack_lock_key` is the one function that turns a stack into a lock key. A lock is held on a
dedicated connection for as long as terraform runs: closing that connection releases it, so a
crashed worker never leaves a stack locked. Who holds a lock is written to
`crew_stack_locks`, so a failed try-lock can say who to wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from schemas.errors import CrewError, DatabaseError

#: How often a waiting lock asks again.
_POLL_S = 0.5


def stack_lock_key(stack_id: str) -> int:
    """The advisory lock key of a stack: 64 bits of sha256("crew-stack:" + id), signed as
    Postgres' bigint wants it. Every stack lock in the product is taken with this key."""
    digest = hashlib.sha256(f"crew-stack:{stack_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class LockHolder:
    stack_id: str
    run_id: str | None
    worker_id: str
    operation: str
    acquired_at: datetime


class StackLockedError(CrewError):
    """Another run holds the stack; the message says which, what it does and since when."""

    def __init__(self, stack_id: str, holder: LockHolder | None, waited_s: float) -> None:
        who = (
            f"run {holder.run_id} ({holder.operation} by {holder.worker_id} since "
            f"{holder.acquired_at:%Y-%m-%d %H:%M:%S %Z})"
            if holder is not None
            else "another session (no holder recorded)"
        )
        super().__init__(f"stack {stack_id} is locked by {who}; waited {waited_s:.0f}s")
        self.stack_id = stack_id
        self.holder = holder


class StackLocks:
    """Advisory locks on the project's Postgres (one connection per held lock)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    @contextlib.asynccontextmanager
    async def hold(
        self, stack_id: str, *, run_id: str | None, worker_id: str, operation: str, wait_s: float
    ) -> AsyncIterator[LockHolder]:
        """Hold the stack's lock for the block; wait up to `wait_s` for it, then raise
        StackLockedError naming the holder. `wait_s=0` is a plain try-lock."""
        key = stack_lock_key(stack_id)
        try:
            conn = await AsyncConnection.connect(
                self._conninfo, autocommit=True, row_factory=dict_row
            )
        except Exception as exc:
            raise DatabaseError(f"cannot open a connection for the stack lock: {exc}") from exc
        try:
            started = time.monotonic()
            while not await _try_lock(conn, key):
                waited = time.monotonic() - started
                if waited >= wait_s:
                    raise StackLockedError(stack_id, await self.holder(stack_id), waited)
                await asyncio.sleep(min(_POLL_S, max(0.0, wait_s - waited)))
            row = await (
                await conn.execute(
                    """
                    INSERT INTO crew_stack_locks (stack_id, lock_key, run_id, worker_id,
                                                  operation, acquired_at)
                    VALUES (%s, %s, %s, %s, %s, now())
                    ON CONFLICT (stack_id) DO UPDATE SET
                        lock_key = EXCLUDED.lock_key, run_id = EXCLUDED.run_id,
                        worker_id = EXCLUDED.worker_id, operation = EXCLUDED.operation,
                        acquired_at = EXCLUDED.acquired_at
                    RETURNING *
                    """,
                    (stack_id, key, run_id, worker_id, operation),
                )
            ).fetchone()
            assert row is not None
            try:
                yield _holder(row)
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute(
                        "DELETE FROM crew_stack_locks WHERE stack_id = %s AND worker_id = %s",
                        (stack_id, worker_id),
                    )
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            # Closing the session releases its advisory locks whatever happened above.
            await conn.close()

    async def holder(self, stack_id: str) -> LockHolder | None:
        async with await AsyncConnection.connect(
            self._conninfo, autocommit=True, row_factory=dict_row
        ) as conn:
            row = await (
                await conn.execute(
                    "SELECT * FROM crew_stack_locks WHERE stack_id = %s", (stack_id,)
                )
            ).fetchone()
        return _holder(row) if row else None


async def _try_lock(conn: AsyncConnection[DictRow], key: int) -> bool:
    row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (key,))).fetchone()
    return bool(row and row["locked"])


def _holder(row: DictRow) -> LockHolder:
    return LockHolder(
        stack_id=row["stack_id"],
        run_id=row["run_id"],
        worker_id=row["worker_id"],
        operation=row["operation"],
        acquired_at=row["acquired_at"],
    )
