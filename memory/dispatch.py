"""The run queue's SQL: handing runs to workers through the bus, and taking them back.

A run that needs a worker gets a `run.ready` event (family `work`), written to the outbox in
the transaction that made it need one: created, decided at the gate, let go of while still
active, or taken from a dead worker. Workers of the `workers` group share those events; the
Postgres lease (`crew_runs.lease_owner`) stays the guard that one worker drives a run at a
time, so a duplicate or stale `run.ready` is harmless (its claim fails and it is dropped).
`dispatched_at` marks a queued, unclaimed `run.ready`; the Conductor's sweep re-dispatches
runs that need a worker and have none queued, which covers backed-off runs, expired leases
and events lost by the bus.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg import AsyncCursor
from psycopg.rows import DictRow

from memory.db import Pool
from memory.events import insert_events
from schemas.events import EventType, OpsEvent
from schemas.states import ACTIVE_STATES, ConductorState

_ACTIVE = [s.value for s in ACTIVE_STATES]
_WAITING = ConductorState.WAIT_FOR_APPROVE.value

#: A run needs a worker when it is active, or waiting at the gate with a decision recorded
#: (the same rule as memory.runs; kept here because the sweep is this module's SQL).
NEEDS_WORK = f"""
    (state = ANY(%(active)s) OR (state = '{_WAITING}' AND decision IS NOT NULL))
    AND (not_before IS NULL OR not_before <= now())
"""

#: A queued `run.ready` nobody claimed for this long is sent again (the bus may have lost it).
REDISPATCH_AFTER_S = 300.0


async def dispatch(cur: AsyncCursor[DictRow], run_ids: Sequence[str], at: datetime) -> None:
    """Queue a `run.ready` for each run, in the caller's transaction."""
    if not run_ids:
        return
    await cur.execute(
        "UPDATE crew_runs SET dispatched_at = now() WHERE run_id = ANY(%s)", (list(run_ids),)
    )
    await insert_events(cur, [OpsEvent(type=EventType.RUN_READY, run_id=r, at=at) for r in run_ids])


async def dispatch_if_needed(cur: AsyncCursor[DictRow], run_id: str, at: datetime) -> bool:
    """Queue a `run.ready` when the run needs a worker and nobody holds it (after a lease was
    let go of, or a state change made outside a worker)."""
    await cur.execute(
        f"""
        SELECT 1 AS yes FROM crew_runs
        WHERE run_id = %(run)s AND {NEEDS_WORK}
          AND (lease_until IS NULL OR lease_until < now())
        """,
        {"run": run_id, "active": _ACTIVE},
    )
    if await cur.fetchone() is None:
        return False
    await dispatch(cur, [run_id], at)
    return True


async def dispatch_orphans(pool: Pool, at: datetime, limit: int = 500) -> list[str]:
    """Re-dispatch runs that need a worker, have no live lease and no queued `run.ready`
    (or one older than REDISPATCH_AFTER_S); returns their ids."""
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            f"""
            SELECT run_id FROM crew_runs
            WHERE {NEEDS_WORK}
              AND (lease_until IS NULL OR lease_until < now())
              AND (dispatched_at IS NULL
                   OR dispatched_at < now() - make_interval(secs => %(stale)s))
            ORDER BY updated_at
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
            """,
            {"active": _ACTIVE, "stale": REDISPATCH_AFTER_S, "limit": limit},
        )
        run_ids = [r["run_id"] for r in await cur.fetchall()]
        await dispatch(cur, run_ids, at)
    return run_ids


async def release_workers(pool: Pool, worker_ids: Sequence[str], at: datetime) -> list[str]:
    """Take every lease of dead workers away and dispatch the runs that still need a worker;
    returns the ids of the runs taken back."""
    if not worker_ids:
        return []
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            """
            UPDATE crew_runs SET lease_owner = NULL, lease_until = NULL
            WHERE lease_owner = ANY(%s)
            RETURNING run_id
            """,
            (list(worker_ids),),
        )
        taken = [r["run_id"] for r in await cur.fetchall()]
        for run_id in taken:
            await dispatch_if_needed(cur, run_id, at)
    return taken


async def waiting_for_worker(pool: Pool) -> int:
    """Runs that need a worker and have none: the run queue's depth."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                f"""
                SELECT count(*) AS n FROM crew_runs
                WHERE {NEEDS_WORK} AND (lease_until IS NULL OR lease_until < now())
                """,
                {"active": _ACTIVE},
            )
        ).fetchone()
    return int(row["n"]) if row else 0
