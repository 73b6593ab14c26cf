"""On the Postgres bus (the default) an outbox write is the bus publish, so it must show in
`crew_bus_published_total{bus="postgres"}` / `crew_bus_publish_errors_total` like a Redis or
NATS publish does: counted when its transaction commits (not when a rollback throws it away),
failed when a database error ends it, whichever code wrote it (the EventPublisher, the
checkpointer, the run store, heartbeats)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from crew.conductor import Conductor
from crew.container import Services, open_services
from crew.metrics import CrewMetrics, LlmPrices
from crew.settings import Settings
from graph.state import initial_state
from memory.bus import PostgresBus
from memory.checkpointer import LEASE_OWNER_KEY
from memory.db import Pool, open_pool
from memory.events import OutboxPublisher, insert_events
from memory.migrate import migrate
from memory.runs import LeaseLostError
from schemas.audit import Transition
from schemas.events import EventType, OpsEvent
from schemas.goal import GoalStatement
from schemas.states import ConductorState
from tests.conftest import example_goal
from tools.bus import BusNames

pytestmark = pytest.mark.integration

#: Refuses to store the event with id 'boom': a database error while writing the outbox.
REFUSE_BOOM_SQL = """
CREATE FUNCTION crew_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id = 'boom' THEN
        RAISE EXCEPTION 'injected outbox fault';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER crew_test_refuse BEFORE INSERT ON crew_events
    FOR EACH ROW EXECUTE FUNCTION crew_test_refuse();
"""


class Refused(Exception):
    """A caller's own reason to roll back (like LeaseLostError): not a publish failure."""


def event(event_id: str, kind: EventType = EventType.PLAN_PENDING) -> OpsEvent:
    return OpsEvent(event_id=event_id, type=kind, run_id="r1", at=datetime.now(UTC))


def counted(metrics: CrewMetrics) -> tuple[float, float]:
    """(published, publish errors) of the Postgres bus, as /metrics shows them."""
    published = metrics.registry.get_sample_value("crew_bus_published_total", {"bus": "postgres"})
    failed = metrics.registry.get_sample_value("crew_bus_publish_errors_total", {"bus": "postgres"})
    return published or 0.0, failed or 0.0


async def outbox_size(pool: Pool) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS n FROM crew_events")).fetchone()
    assert row is not None
    return int(row["n"])


@pytest.fixture
async def observed(database_url: str) -> AsyncIterator[tuple[Pool, CrewMetrics]]:
    metrics = CrewMetrics(bus="postgres", heartbeat_s=1.0, llm_prices=LlmPrices())
    pool = await open_pool(database_url, max_size=4, outbox_observer=metrics)
    try:
        await migrate(pool)
        yield pool, metrics
    finally:
        await pool.close()


async def test_outbox_writes_are_counted_once_their_transaction_commits(
    observed: tuple[Pool, CrewMetrics],
) -> None:
    pool, metrics = observed
    publisher = OutboxPublisher(pool, metrics)

    assert await publisher.publish(event("e1")) is True
    assert counted(metrics) == (1, 0)
    assert await publisher.publish(event("e1")) is False  # already stored: not a publish
    assert counted(metrics) == (1, 0)

    # Written in a caller's transaction (as the checkpointer does): counted at commit.
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        assert await insert_events(cur, [event("e2"), event("e3")]) == 2
        assert counted(metrics) == (1, 0)  # not committed yet
    assert counted(metrics) == (3, 0)

    # Rolled back for the caller's reason (a lost lease): never published, never failed.
    async def refused() -> None:
        async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await insert_events(cur, [event("gone")])
            raise Refused

    with pytest.raises(Refused):
        await refused()
    assert counted(metrics) == (3, 0)

    # A savepoint that a database error rolls back loses its event; the enclosing
    # transaction commits the other.
    async def broken_savepoint(conn: AsyncConnection[DictRow]) -> None:
        async with conn.transaction():
            await insert_events(conn.cursor(), [event("lost")])
            await conn.execute("SELECT 1 / 0")

    async with pool.connection() as conn, conn.transaction():
        await insert_events(conn.cursor(), [event("e4")])
        with pytest.raises(psycopg.errors.DivisionByZero):
            await broken_savepoint(conn)
    assert counted(metrics) == (4, 1)
    assert await outbox_size(pool) == 4

    # The database refuses the write itself.
    async with pool.connection() as conn:
        await conn.execute(REFUSE_BOOM_SQL.encode(), prepare=False)
    with pytest.raises(psycopg.errors.RaiseException, match="injected outbox fault"):
        await publisher.publish(event("boom"))
    assert counted(metrics) == (4, 2)

    # The Postgres bus's own publish goes through the same count (once, not twice).
    bus = PostgresBus(pool, "unused", BusNames("t"), ack_wait_s=1.0, observer=metrics)
    assert await bus.publish(event("e5")) is True
    assert counted(metrics) == (5, 2)
    assert await outbox_size(pool) == 5


async def test_a_publish_that_cannot_reach_postgres_is_counted_as_failed(
    observed: tuple[Pool, CrewMetrics], database_url: str
) -> None:
    _, metrics = observed
    gone = await open_pool(database_url, max_size=1, outbox_observer=metrics)
    await gone.close()  # no connection can be had: the write never begins
    with pytest.raises(psycopg.OperationalError):
        await OutboxPublisher(gone, metrics).publish(event("never"))
    assert counted(metrics) == (0, 1)


def _checkpoint(services: Services, run_id: str, goal: GoalStatement) -> tuple[Any, Any]:
    """A checkpoint whose projection records one transition (audit row + its OpsEvent)."""
    at = datetime.now(UTC)
    values: dict[str, Any] = {
        **initial_state(run_id, run_id, goal, at),
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


async def test_every_writer_counts_on_the_postgres_bus(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """The real wiring (`open_services`, CREW_BUS_URL=postgres): a new run, a checkpoint with
    a transition, a heartbeat; the counter always equals what the outbox holds, and a
    checkpoint refused for a lost lease counts nothing."""
    settings = make_settings(database_url=database_url)
    assert settings.bus_url.get_secret_value() == "postgres"
    async with open_services(settings, role="test") as services:
        metrics = services.metrics
        goal = GoalStatement.model_validate(example_goal())
        record, created = await services.runs.create(goal, run_id="m-1", at=datetime.now(UTC))
        assert created
        assert counted(metrics) == (await outbox_size(services.pool), 0) == (2, 0)

        assert await services.runs.claim(record.run_id, "worker-a", 30) is not None
        checkpoint, versions = _checkpoint(services, record.run_id, goal)
        metadata: Any = {"source": "loop", "step": 0, "parents": {}}

        def config(owner: str) -> Any:
            configurable = {"thread_id": record.run_id, "checkpoint_ns": "", LEASE_OWNER_KEY: owner}
            return {"configurable": configurable}

        with pytest.raises(LeaseLostError):
            await services.saver.aput(config("worker-b"), checkpoint, metadata, versions)
        assert counted(metrics) == (2, 0)
        await services.saver.aput(config("worker-a"), checkpoint, metadata, versions)
        assert counted(metrics) == (await outbox_size(services.pool), 0) == (3, 0)

        await Conductor(services, role="serve").beat()
        assert counted(metrics) == (await outbox_size(services.pool), 0) == (4, 0)
        assert await services.events.publish(event("m-1.extra", EventType.APPLY_DONE)) is True
        assert counted(metrics) == (5, 0)
        exposed = services.metrics.render().decode()
        assert 'crew_bus_published_total{bus="postgres"} 5.0' in exposed
