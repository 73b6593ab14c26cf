"""memory/checkpointer.py on a real Postgres: checkpoint, audit rows and run row commit
together or not at all; lease fencing; append-only audit; migrations; retention."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from crew.container import Services, open_services
from crew.service import decide, run_detail
from crew.settings import Settings
from crew.worker import Worker, prune_checkpoints
from graph.state import initial_state
from memory.checkpointer import LEASE_OWNER_KEY
from memory.db import open_pool
from memory.migrate import load_migrations, migrate
from memory.runs import LeaseLostError
from schemas.approval import Channel, Decision
from schemas.audit import Transition
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.states import ConductorState
from tests.conftest import example_goal

pytestmark = pytest.mark.integration

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "memory" / "migrations"

#: A one-shot fault: the audit insert of a listed seq raises (until the test drops it), and a
#: sequence (not rolled back with the failed transaction) counts how often it fired.
FAULT_SQL = """
CREATE TABLE crew_test_fault (seq integer PRIMARY KEY);
CREATE SEQUENCE crew_test_fault_fired;
CREATE FUNCTION crew_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM crew_test_fault WHERE seq = NEW.seq) THEN
        PERFORM nextval('crew_test_fault_fired');
        RAISE EXCEPTION 'injected fault at audit seq %', NEW.seq;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER crew_test_fault BEFORE INSERT ON crew_audit
    FOR EACH ROW EXECUTE FUNCTION crew_test_fault();
INSERT INTO crew_test_fault (seq) VALUES (2);
"""

DROP_FAULT_SQL = """
DROP TRIGGER crew_test_fault ON crew_audit;
DROP FUNCTION crew_test_fault();
DROP TABLE crew_test_fault;
DROP SEQUENCE crew_test_fault_fired;
"""


def goal(**changes: Any) -> GoalStatement:
    return GoalStatement.model_validate(example_goal(**changes))


async def fetch(services: Services, query: str, *params: Any) -> list[dict[str, Any]]:
    async with services.pool.connection() as conn:
        rows = await (await conn.execute(query.encode(), params)).fetchall()
    return [dict(r) for r in rows]


async def audit_seqs(services: Services, run_id: str) -> list[int]:
    rows = await fetch(
        services, "SELECT seq FROM crew_audit WHERE run_id = %s ORDER BY seq", run_id
    )
    return [r["seq"] for r in rows]


async def checkpoint_steps(services: Services, run_id: str) -> list[int]:
    rows = await fetch(
        services,
        """
        SELECT (metadata->>'step')::int AS step FROM checkpoints
        WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id
        """,
        run_id,
    )
    return [r["step"] for r in rows]


async def count(services: Services, table: str, run_id: str) -> int:
    rows = await fetch(services, f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", run_id)
    return int(rows[0]["n"])


async def drive(services: Services, run_id: str) -> ConductorState:
    """Lease the run and drive it to its next stop, as a worker does; always let go."""
    worker = Worker(services)
    run = await services.runs.claim(run_id, worker.worker_id, services.settings.lease_ttl_s)
    assert run is not None, f"run {run_id} could not be leased"
    try:
        return await worker.drive(run)
    finally:
        await services.runs.release(run_id, worker.worker_id)


# -- (a) one transaction -------------------------------------------------------------------


@pytest.fixture
async def aws_services(
    database_url: str, make_settings: Callable[..., Settings], aws_env: dict[str, str]
) -> AsyncIterator[Services]:
    """Like `services`, but opened after `aws_env`: terraform's environment is read when the
    services are built, so it must already point at moto."""
    async with open_services(make_settings(database_url=database_url), role="test") as svc:
        yield svc


async def test_failed_audit_insert_stores_no_checkpoint(aws_services: Services) -> None:
    services = aws_services
    record, created = await services.runs.create(
        goal(), run_id="fault-1", at=services.context.clock()
    )
    assert created
    async with services.pool.connection() as conn:
        await conn.execute(FAULT_SQL.encode(), prepare=False)

    worker = Worker(services)
    run = await services.runs.claim(record.run_id, worker.worker_id, 30)
    assert run is not None
    with pytest.raises(psycopg.errors.RaiseException, match="injected fault at audit seq 2"):
        await worker.drive(run)

    fired = await fetch(services, "SELECT last_value, is_called FROM crew_test_fault_fired")
    assert (fired[0]["last_value"], fired[0]["is_called"]) == (1, True)
    # The build step's checkpoint (step 2; -1 is the input, 0 the initial state, 1 design)
    # was refused together with its audit row and the run row update: everything still
    # says "designed, not built".
    after_fault = await services.runs.get(record.run_id)
    assert after_fault.state is ConductorState.IN_PROGRESS
    assert after_fault.last_seq == 1
    assert await audit_seqs(services, record.run_id) == [0, 1]
    assert await checkpoint_steps(services, record.run_id) == [-1, 0, 1]
    latest = await services.saver.aget_tuple({"configurable": {"thread_id": record.run_id}})
    assert latest is not None
    assert latest.metadata["step"] == 1
    assert latest.checkpoint["channel_values"]["conductor_state"] == ConductorState.IN_PROGRESS
    assert "build" not in latest.checkpoint["channel_values"]

    async with services.pool.connection() as conn:
        await conn.execute(DROP_FAULT_SQL.encode(), prepare=False)

    state = await worker.drive(run)
    await services.runs.release(record.run_id, worker.worker_id)

    assert state is ConductorState.WAIT_FOR_APPROVE
    final = await services.runs.get(record.run_id)
    assert final.state is ConductorState.WAIT_FOR_APPROVE
    assert final.last_seq == 4
    audit = await services.runs.audit(record.run_id)
    assert [r.seq for r in audit] == [0, 1, 2, 3, 4]
    assert [r.event for r in audit] == [
        EventType.RUN_CREATED,
        EventType.PLAN_PENDING,
        EventType.VALIDATE_PENDING,
        EventType.VALIDATE_RESULT,
        EventType.APPROVAL_REQUESTED,
    ]
    assert [r.to_state for r in audit][1:] == [
        ConductorState.IN_PROGRESS,
        ConductorState.VALIDATING,
        ConductorState.READY_FOR_APPLY,
        ConductorState.WAIT_FOR_APPROVE,
    ]
    for earlier, later in itertools.pairwise(audit):
        assert later.from_state is earlier.to_state
    steps = await checkpoint_steps(services, record.run_id)
    assert len(steps) == len(set(steps)), steps
    detail = await run_detail(services, record.run_id)
    assert detail.waiting_for_approval
    assert detail.artifacts.build is not None
    assert detail.artifacts.build.ok


# -- (b) lease fencing ---------------------------------------------------------------------


def _checkpoint_for(
    services: Services, run_id: str, g: GoalStatement
) -> tuple[Any, dict[str, str]]:
    at = datetime.now(UTC)
    values: dict[str, Any] = {
        **initial_state(run_id, run_id, g, at),
        "conductor_state": ConductorState.IN_PROGRESS,
        "transitions": [
            Transition(
                seq=1,
                at=at,
                actor="atlas",
                event=EventType.PLAN_PENDING,
                from_state=ConductorState.PENDING,
                to_state=ConductorState.IN_PROGRESS,
            )
        ],
    }
    checkpoint = empty_checkpoint()
    versions = {name: services.saver.get_next_version(None, None) for name in values}
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = dict(versions)
    return checkpoint, versions


async def test_checkpoint_by_a_worker_without_the_lease_is_refused(services: Services) -> None:
    g = goal()
    record, _ = await services.runs.create(g, run_id="fence-1", at=services.context.clock())
    assert await services.runs.claim(record.run_id, "worker-a", 30) is not None
    checkpoint, versions = _checkpoint_for(services, record.run_id, g)
    metadata: Any = {"source": "loop", "step": 0, "parents": {}}

    def config(owner: str) -> Any:
        return {
            "configurable": {
                "thread_id": record.run_id,
                "checkpoint_ns": "",
                LEASE_OWNER_KEY: owner,
            }
        }

    with pytest.raises(LeaseLostError, match="worker-a"):
        await services.saver.aput(config("worker-b"), checkpoint, metadata, versions)

    assert await count(services, "checkpoints", record.run_id) == 0
    assert await count(services, "checkpoint_blobs", record.run_id) == 0
    assert await audit_seqs(services, record.run_id) == [0]
    unchanged = await services.runs.get(record.run_id)
    assert (unchanged.state, unchanged.last_seq) == (ConductorState.PENDING, 0)
    assert unchanged.lease_owner == "worker-a"

    # The same checkpoint from the lease holder goes through: the lease was the only reason.
    await services.saver.aput(config("worker-a"), checkpoint, metadata, versions)
    assert await count(services, "checkpoints", record.run_id) == 1
    assert await count(services, "checkpoint_blobs", record.run_id) > 0
    assert await audit_seqs(services, record.run_id) == [0, 1]
    moved = await services.runs.get(record.run_id)
    assert (moved.state, moved.last_seq) == (ConductorState.IN_PROGRESS, 1)


async def test_stalled_worker_cannot_drive_a_run_taken_over(services: Services) -> None:
    record, _ = await services.runs.create(goal(), run_id="fence-2", at=services.context.clock())
    stalled = Worker(dataclasses.replace(services, worker_id="worker-stalled"))
    run = await services.runs.claim(record.run_id, "worker-stalled", 30)
    assert run is not None
    # Its lease runs out and another worker takes the run over.
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE crew_runs SET lease_until = now() - interval '1 second' WHERE run_id = %s",
            (record.run_id,),
        )
    assert await services.runs.claim(record.run_id, "worker-new", 30) is not None

    with pytest.raises(LeaseLostError, match="worker-new"):
        await stalled.drive(run)

    # Not even the run's first (still empty) checkpoint got through, so the thread has no
    # state the new lease holder could be confused by.
    assert await count(services, "checkpoints", record.run_id) == 0
    assert await services.saver.aget_tuple({"configurable": {"thread_id": record.run_id}}) is None
    assert await audit_seqs(services, record.run_id) == [0]
    current = await services.runs.get(record.run_id)
    assert (current.state, current.lease_owner) == (ConductorState.PENDING, "worker-new")


# -- (c) append-only audit -----------------------------------------------------------------


async def test_audit_log_is_append_only(services: Services) -> None:
    record, _ = await services.runs.create(goal(), run_id="audit-1", at=services.context.clock())
    before = await fetch(services, "SELECT * FROM crew_audit ORDER BY run_id, seq")
    assert [(r["run_id"], r["seq"]) for r in before] == [(record.run_id, 0)]

    for statement in (
        "UPDATE crew_audit SET actor = 'mallory'",
        "DELETE FROM crew_audit",
        "DELETE FROM crew_audit WHERE run_id = 'no-such-run'",
        "TRUNCATE crew_audit",
    ):
        async with services.pool.connection() as conn:
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                await conn.execute(statement.encode())

    assert await fetch(services, "SELECT * FROM crew_audit ORDER BY run_id, seq") == before


# -- (d) migrations ------------------------------------------------------------------------


async def test_migrations_are_idempotent_and_safe_concurrently(database_url: str) -> None:
    files = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert files, MIGRATIONS_DIR
    assert [m.name for m in load_migrations()] == files
    first_pool = await open_pool(database_url)
    second_pool = await open_pool(database_url)
    try:
        applied = await asyncio.gather(migrate(first_pool), migrate(second_pool))
        assert sorted(applied, key=len) == [[], files]
        assert await migrate(first_pool) == []
        assert await asyncio.gather(migrate(first_pool), migrate(second_pool)) == [[], []]

        async with first_pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT version, name FROM crew_schema_migrations")
            ).fetchall()
            langgraph = await (
                await conn.execute("SELECT count(*) AS n FROM checkpoint_migrations")
            ).fetchone()
        assert sorted(r["name"] for r in rows) == files
        assert len({r["version"] for r in rows}) == len(files)
        assert langgraph is not None
        assert langgraph["n"] == len(AsyncPostgresSaver.MIGRATIONS)
    finally:
        await first_pool.close()
        await second_pool.close()


# -- (e) retention -------------------------------------------------------------------------


@pytest.fixture
async def prune_now_services(
    database_url: str, make_settings: Callable[..., Settings], aws_env: dict[str, str]
) -> AsyncIterator[Services]:
    """Services with a retention period of zero (opened after `aws_env`, see above)."""
    settings = make_settings(database_url=database_url, checkpoint_retention_days=0)
    async with open_services(settings, role="test") as svc:
        yield svc


async def test_retention_keeps_the_last_checkpoint_of_finished_runs_only(
    prune_now_services: Services,
) -> None:
    services = prune_now_services
    clock = services.context.clock

    # An active run, stopped between design and build.
    active, _ = await services.runs.create(goal(), run_id="active-1", at=clock())
    await services.graph.ainvoke(
        initial_state(active.run_id, active.goal_id, active.goal, active.created_at),
        {"configurable": {"thread_id": active.run_id}},
        context=services.context,
        interrupt_before=["build"],
        durability="sync",
    )
    assert (await services.runs.get(active.run_id)).state is ConductorState.IN_PROGRESS
    active_checkpoints = await count(services, "checkpoints", active.run_id)
    assert active_checkpoints >= 2

    # A run that will finish: waiting at the gate is not finished either.
    finished, _ = await services.runs.create(goal(), run_id="finished-1", at=clock())
    assert await drive(services, finished.run_id) is ConductorState.WAIT_FOR_APPROVE
    waiting_checkpoints = await count(services, "checkpoints", finished.run_id)
    assert await prune_checkpoints(services) == 0
    assert await count(services, "checkpoints", finished.run_id) == waiting_checkpoints
    assert await count(services, "checkpoints", active.run_id) == active_checkpoints

    await decide(services, finished.run_id, Decision.APPROVE, actor="alice", channel=Channel.CLI)
    assert await drive(services, finished.run_id) is ConductorState.DONE
    before = await run_detail(services, finished.run_id)
    assert before.artifacts.apply_result is not None
    assert before.artifacts.apply_result.ok
    assert await count(services, "checkpoints", finished.run_id) > 1

    assert await prune_checkpoints(services) == 1

    assert await count(services, "checkpoints", finished.run_id) == 1
    assert await count(services, "checkpoints", active.run_id) == active_checkpoints
    after = await run_detail(services, finished.run_id)
    assert after.state is ConductorState.DONE
    assert after.artifacts == before.artifacts
    assert after.diagram == before.diagram
    assert after.audit == before.audit
    assert [r.seq for r in after.audit] == list(range(7))
    # Already pruned: nothing more to do.
    assert await prune_checkpoints(services) == 0
    assert await count(services, "checkpoints", finished.run_id) == 1
