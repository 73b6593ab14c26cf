"""The event bus: one typed interface over Postgres, Redis Streams and NATS JetStream.

How an OpsEvent travels (docs/architecture.md, Scale-out):

1. Nothing in the crew talks to a bus server to *produce* an event. Every OpsEvent is written
   to the Postgres outbox (`crew_events`, `memory/events.py`); an event caused by a state
   transition is written in the very transaction that stores the checkpoint and its audit row.
   So an event exists exactly when its cause was committed: a crash loses none and invents none.
   Code outside that transaction uses an `EventPublisher` (the outbox again).
2. With `CREW_BUS_URL=postgres` the outbox *is* the bus: consumer groups read it with
   `SELECT ... FOR UPDATE SKIP LOCKED`, woken by LISTEN/NOTIFY (`memory/bus.py`).
3. With `redis://` or `nats://`, the relay (`memory/relay.py`) forwards outbox rows in
   order, at least once. The bus keeps an event id once within the dedupe window and every
   subscription skips ids it has already acknowledged, so a re-sent event is handled once.

Consumers join a durable consumer group with `Bus.subscribe(group, families, consumer)`: every
group sees every event of its families (fan-out), the consumers of one group share them
(each event to one consumer), and an event fetched but not acknowledged within
`CREW_BUS_ACK_WAIT_S` is delivered again. A new group starts with the oldest event the bus
still keeps. Events are validated when published and when fetched.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import ValidationError

from schemas.errors import BusError
from schemas.events import EventType, OpsEvent

logger = logging.getLogger(__name__)

BusKind = Literal["postgres", "redis", "nats"]

#: The run queue: `run.ready` events, one consumer group shared by every worker.
WORK_FAMILY = "work"
WORK_GROUP = "workers"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def family_of(event_type: EventType) -> str:
    """The stream (Redis) / subject (NATS) an event type goes to: the part of its name before
    the dot (`plan.pending` -> `plan`), except the run queue's `run.ready` -> `work`, which
    workers consume apart from the run lifecycle events."""
    if event_type is EventType.RUN_READY:
        return WORK_FAMILY
    return event_type.value.split(".", 1)[0]


#: Every family, for consumers that want all events.
FAMILIES: tuple[str, ...] = tuple(sorted({family_of(t) for t in EventType}))


def check_name(kind: str, name: str) -> str:
    """Group and family names become Redis keys, NATS subjects and durable names: keep them
    to `[a-z][a-z0-9_]*` so one spelling is valid everywhere."""
    if not _NAME.match(name):
        raise ValueError(f"bad {kind} name {name!r}: use lowercase letters, digits and _")
    return name


@dataclass(frozen=True)
class BusNames:
    """Every name on a shared server, built in one place and prefixed by CREW_BUS_PREFIX."""

    prefix: str

    def redis_stream(self, family: str) -> str:
        return f"{self.prefix}:events:{family}"

    def redis_group(self, group: str) -> str:
        return f"{self.prefix}:{group}"

    def redis_seen_key(self, event_id: str) -> str:
        return f"{self.prefix}:seen:{event_id}"

    def nats_stream(self) -> str:
        return f"{self.prefix}_events"

    def nats_subject(self, family: str) -> str:
        return f"{self.prefix}.events.{family}"

    def nats_durable(self, group: str, family: str) -> str:
        return f"{self.prefix}_{group}_{family}"

    def pg_group(self, group: str) -> str:
        return f"{self.prefix}.{group}"


@dataclass(frozen=True)
class Delivery:
    """One event handed to one consumer; acknowledge it with `Subscription.ack`."""

    event: OpsEvent
    group: str
    attempt: int
    """1 on first delivery; more when it was delivered before and not acknowledged in time
    (Redis reports 2 for any redelivery)."""
    handle: object = field(repr=False, compare=False)
    """The backend's receipt (stream entry id, NATS message, outbox row)."""


class Subscription(Protocol):
    """One consumer's membership in a durable consumer group."""

    group: str
    consumer: str

    async def fetch(self, max_messages: int = 10, wait_s: float = 1.0) -> list[Delivery]:
        """Up to `max_messages` deliveries, waiting up to `wait_s` for the first one.
        Raises BusError when the bus cannot be reached."""
        ...

    async def ack(self, delivery: Delivery) -> None:
        """Done with it: the group will not deliver it again. Raises BusError."""
        ...

    async def close(self) -> None: ...


class Bus(Protocol):
    """Publish OpsEvents; consume them with ack through durable consumer groups."""

    @property
    def kind(self) -> BusKind: ...

    @property
    def names(self) -> BusNames: ...

    async def publish(self, event: OpsEvent) -> bool:
        """Store one event; False when its id was stored before (within the dedupe window).
        Raises BusError when the bus cannot be reached."""
        ...

    async def subscribe(self, group: str, families: Collection[str], consumer: str) -> Subscription:
        """Join (creating it if needed) the durable group `group` reading `families`."""
        ...

    async def pending(self) -> dict[str, int]:
        """Per consumer group of this prefix: events not yet acknowledged (queue depth)."""
        ...

    async def ping(self) -> None:
        """Raise BusError unless the bus answers."""
        ...

    async def close(self) -> None: ...


class EventPublisher(Protocol):
    """What nodes, the worker and the gate use to emit an OpsEvent that is not a checkpointed
    transition (those are written by the checkpointer). The implementation writes to the
    Postgres outbox (`memory.events.OutboxPublisher`); within an existing transaction call
    `memory.events.insert_events(cursor, events)` instead, so the event commits with its cause.
    """

    async def publish(self, event: OpsEvent) -> bool:
        """Write one event; False when an event with its id was already written."""
        ...


class BusObserver(Protocol):
    """Hooks for metrics (crew/metrics.py implements them); tools stay free of metric objects.

    Redis and NATS report each `publish`. On the Postgres bus every outbox write is the
    publish, whoever makes it (the checkpointer, a store, `EventPublisher`): those are
    reported by `memory.events.insert_events` once their transaction commits (the pool is
    opened with the observer: `memory.db.open_pool`).
    """

    def published(self, bus: str, event: OpsEvent) -> None: ...

    def publish_failed(self, bus: str) -> None: ...

    def acked(self, bus: str, group: str) -> None: ...

    def ack_failed(self, bus: str, group: str) -> None: ...

    def rejected(self, bus: str, group: str) -> None: ...


class NoObserver:
    """Observes nothing (library use without metrics)."""

    def published(self, bus: str, event: OpsEvent) -> None:
        return None

    def publish_failed(self, bus: str) -> None:
        return None

    def acked(self, bus: str, group: str) -> None:
        return None

    def ack_failed(self, bus: str, group: str) -> None:
        return None

    def rejected(self, bus: str, group: str) -> None:
        return None


def encode(event: OpsEvent) -> bytes:
    """The wire form: the OpsEvent JSON, proven to parse back before it leaves."""
    data = event.model_dump_json().encode()
    OpsEvent.model_validate_json(data)
    return data


def decode(data: bytes | str) -> OpsEvent | None:
    """An OpsEvent from the wire, or None (logged) when it is not a valid one."""
    try:
        return OpsEvent.model_validate_json(data)
    except ValidationError as exc:
        logger.error("dropping a message that is not a valid OpsEvent: %s", exc)
        return None


class SeenIds:
    """Ids of events this subscription acknowledged lately (bounded): a re-sent event that
    arrives after the bus's own dedupe window is acknowledged again and not handed out."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)


Handler = Callable[[OpsEvent], Awaitable[None]]


async def consume(
    subscription: Subscription,
    handler: Handler,
    stop: asyncio.Event,
    *,
    batch: int = 10,
    wait_s: float = 1.0,
    retry_s: float = 2.0,
) -> None:
    """Hand each event to `handler`, acknowledging it when the handler returns, until `stop`.

    A handler that raises leaves its event unacknowledged: it is delivered again after the
    ack wait (handlers must be idempotent by event id). A bus outage is logged and retried.
    """
    while not stop.is_set():
        try:
            deliveries = await subscription.fetch(batch, wait_s)
        except BusError as exc:
            logger.warning("bus unavailable for group %s: %s", subscription.group, exc)
            await _sleep_unless(stop, retry_s)
            continue
        for delivery in deliveries:
            try:
                await handler(delivery.event)
            except Exception:
                logger.exception(
                    "handler failed on %s; it will be delivered again",
                    delivery.event.event_id,
                    extra={"run_id": delivery.event.run_id},
                )
                continue
            try:
                await subscription.ack(delivery)
            except BusError as exc:
                logger.warning("ack failed (the event comes again): %s", exc)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
