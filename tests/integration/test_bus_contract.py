"""One contract, three buses: Postgres (outbox + SKIP LOCKED), Redis Streams, NATS JetStream.

Each test runs against the real servers (Postgres 127.0.0.1:5432, Redis :6379, NATS :4222) on
its own prefix, and removes what it created.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.events import EventType, OpsEvent
from tests.integration._bus import BUS_KINDS, eventually, open_bus
from tools.bus import Bus, Delivery, Subscription, family_of

pytestmark = pytest.mark.integration


def event(kind: EventType = EventType.PLAN_PENDING, run_id: str = "r1", **kw: Any) -> OpsEvent:
    return OpsEvent(type=kind, run_id=run_id, at=datetime.now(UTC), **kw)


@pytest.fixture(params=BUS_KINDS)
async def bus(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Bus]:
    async with open_bus(request.param, database_url=database_url) as b:
        yield b


async def drain(sub: Subscription, *, want: int, ack: bool = True) -> list[Delivery]:
    """Fetch until `want` deliveries arrived (acknowledging them unless told not to)."""
    got: list[Delivery] = []

    async def more() -> int:
        batch = await sub.fetch(10, 0.3)
        for d in batch:
            if ack:
                await sub.ack(d)
        got.extend(batch)
        return len(got)

    await eventually(more, lambda n: n >= want, what=f"{want} deliveries")
    return got


async def test_publish_consume_ack(bus: Bus) -> None:
    sent = [event(run_id=f"run-{i}") for i in range(3)]
    sub = await bus.subscribe("audit", [family_of(EventType.PLAN_PENDING)], "c1")
    for e in sent:
        assert await bus.publish(e) is True
    got = await drain(sub, want=3)
    assert [d.event for d in got] == sent  # validated, equal field for field, in order
    assert all(d.attempt == 1 for d in got)
    assert await sub.fetch(10, 0.3) == []  # acknowledged: not delivered again
    assert (await bus.pending()).get("audit", 0) == 0
    await sub.close()


async def test_pending_counts_what_is_not_acknowledged(bus: Bus) -> None:
    sub = await bus.subscribe("depth", ["plan"], "c1")
    for i in range(3):
        await bus.publish(event(run_id=f"run-{i}"))
    first = await drain(sub, want=1, ack=False)
    await sub.ack(first[0])
    assert (await bus.pending())["depth"] == 2
    await sub.close()


async def test_redelivery_after_a_consumer_dies_without_ack(bus: Bus) -> None:
    """A consumer takes an event and dies: after the ack wait (1 s here) another consumer of
    the group gets it, marked as a redelivery."""
    doomed = await bus.subscribe("workers", ["work"], "doomed")
    sent = event(EventType.RUN_READY, run_id="run-x")
    await bus.publish(sent)
    (taken,) = await drain(doomed, want=1, ack=False)
    assert taken.event == sent
    await doomed.close()  # gone without an ack

    heir = await bus.subscribe("workers", ["work"], "heir")
    (again,) = await drain(heir, want=1)
    assert again.event == sent
    assert again.attempt >= 2
    assert await heir.fetch(10, 0.3) == []
    await heir.close()


async def test_groups_fan_out_and_consumers_of_a_group_share(bus: Bus) -> None:
    sent = [event(run_id=f"run-{i}") for i in range(8)]
    a1 = await bus.subscribe("alpha", ["plan"], "a1")
    a2 = await bus.subscribe("alpha", ["plan"], "a2")
    beta = await bus.subscribe("beta", ["plan"], "b1")
    for e in sent:
        await bus.publish(e)

    # every group sees every event ...
    got_beta = await drain(beta, want=8)
    assert sorted(d.event.event_id for d in got_beta) == sorted(e.event_id for e in sent)

    # ... and the consumers of one group split them: each event exactly once between them
    seen: list[str] = []

    async def share() -> int:
        for sub in (a1, a2):
            for d in await sub.fetch(3, 0.2):
                seen.append(d.event.event_id)
                await sub.ack(d)
        return len(seen)

    await eventually(share, lambda n: n >= 8, what="the group's 8 events")
    assert sorted(seen) == sorted(e.event_id for e in sent)
    for sub in (a1, a2, beta):
        await sub.close()


async def test_order_per_run_is_kept(bus: Bus) -> None:
    """Interleaved runs: each run's events come out in the order they went in."""
    sent = [
        event(EventType.VALIDATE_PENDING, run_id=f"run-{i % 3}", event_id=f"run-{i % 3}.{i}")
        for i in range(15)
    ]
    sub = await bus.subscribe("ordered", ["validate"], "c1")
    for e in sent:
        await bus.publish(e)
    got = await drain(sub, want=15)
    for run in ("run-0", "run-1", "run-2"):
        assert [d.event.event_id for d in got if d.event.run_id == run] == [
            e.event_id for e in sent if e.run_id == run
        ]
    await sub.close()


async def test_an_event_id_is_delivered_once(bus: Bus) -> None:
    sub = await bus.subscribe("dedupe", ["apply"], "c1")
    once = event(EventType.APPLY_DONE, event_id="run-1.7")
    assert await bus.publish(once) is True
    assert await bus.publish(once) is False  # the relay re-sent it: stored once
    (got,) = await drain(sub, want=1)
    assert got.event == once
    assert await sub.fetch(10, 0.5) == []
    await sub.close()


@pytest.mark.parametrize("kind", ["redis", "nats"])
async def test_a_resend_after_the_dedupe_window_is_still_handled_once(
    kind: str, database_url: str
) -> None:
    """Past the bus's dedupe window a re-sent event is stored again; the subscription that
    acknowledged it drops it (consumers are idempotent by event id)."""
    async with open_bus(kind, database_url=database_url, dedupe_window_s=0.3) as b:
        sub = await b.subscribe("late", ["rollback"], "c1")
        once = event(EventType.ROLLBACK_DONE, event_id="run-1.9")
        await b.publish(once)
        await drain(sub, want=1)
        await asyncio.sleep(0.5)  # let the dedupe window pass (not a timing assertion)
        assert await b.publish(once) is True
        marker = event(EventType.ROLLBACK_STARTED, event_id="run-2.1")
        await b.publish(marker)
        rest = await drain(sub, want=1)
        assert [d.event for d in rest] == [marker]
        await sub.close()


async def test_a_message_that_is_not_an_ops_event_is_dropped(
    database_url: str,
) -> None:
    """Validated on the way in: garbage on the stream is acknowledged away, never handed out."""
    async with open_bus("redis", database_url=database_url) as b:
        from tools.bus.redis_streams import RedisBus

        assert isinstance(b, RedisBus)
        sub = await b.subscribe("strict", ["plan"], "c1")
        await b.client.xadd(b.names.redis_stream("plan"), {"event": b'{"type": "nope"}'})
        good = event()
        await b.publish(good)
        got = await drain(sub, want=1)
        assert [d.event for d in got] == [good]
        assert (await b.pending())["strict"] == 0
        await sub.close()


async def test_a_group_created_while_an_event_is_being_written_still_gets_it(
    database_url: str,
) -> None:
    """The Postgres bus: an event whose transaction is open while a new consumer group is
    created is delivered to that group (the race that once left a run unclaimed for minutes:
    the event's fan-out missed the uncommitted group, the group's backfill the uncommitted
    event)."""
    from memory.events import ensure_group, fetch_deliveries, insert_events
    from tests.integration._bus import migrated_pool

    async with migrated_pool(database_url) as pool:
        sent = event(EventType.RUN_READY, run_id="raced")
        async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            assert await insert_events(cur, [sent]) == 1
            creating = asyncio.create_task(ensure_group(pool, "crew.late", ["work"]))
            await asyncio.sleep(0.3)
            # the group waits for the open event transaction instead of missing its event
            assert not creating.done()
        await asyncio.wait_for(creating, 10)
        rows = await fetch_deliveries(pool, "crew.late", "c1", 10, 5.0)
        assert [r.body["event_id"] for r in rows] == [sent.event_id]


@pytest.mark.parametrize("kind", ["redis", "nats"])
async def test_the_bus_keeps_at_most_maxlen_events(kind: str, database_url: str) -> None:
    """CREW_BUS_MAXLEN bounds what the server keeps: Redis trims each family stream with
    `XADD MAXLEN ~` (whole radix-tree nodes, so up to one node more than asked), NATS keeps
    exactly `max_msgs` in its one stream. The oldest go; the newest stay, and a group that
    joins afterwards starts with the oldest event still kept."""
    maxlen, published = 20, 400
    async with open_bus(kind, database_url=database_url, maxlen=maxlen) as b:
        sent = [event(run_id=f"run-{i}", event_id=f"trim-{i}") for i in range(published)]
        for e in sent:
            assert await b.publish(e) is True
        if kind == "redis":
            from tools.bus.redis_streams import RedisBus

            assert isinstance(b, RedisBus)
            setting = await b.client.config_get("stream-node-max-entries")
            node = int(next(iter(setting.values())))  # entries per node: the trimming unit
            kept = int(await b.client.xlen(b.names.redis_stream("plan")))
            assert maxlen <= kept <= maxlen + node, kept
        else:
            from tools.bus.nats_jetstream import NatsBus

            assert isinstance(b, NatsBus)
            js = await b.jetstream()
            info = await js.stream_info(b.names.nats_stream())
            assert info.config.max_msgs == maxlen
            kept = info.state.messages
            assert kept == maxlen
            assert info.state.first_seq == published - maxlen + 1
        assert kept < published // 3  # well below what was published (up to 120 of 400)

        late = await b.subscribe("late_joiner", ["plan"], "c1")
        got = await drain(late, want=kept)
        assert [d.event.event_id for d in got] == [e.event_id for e in sent[-kept:]]
        await late.close()
