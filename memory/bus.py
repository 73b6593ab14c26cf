"""The Postgres bus (`CREW_BUS_URL=postgres`, the embedded default): the outbox is the bus.

A consumer group is a row in `crew_bus_groups`; each event of its families gets a delivery
row when it is written. Consumers lock deliveries with `SELECT ... FOR UPDATE SKIP LOCKED`
(so consumers of one group never get the same one), hold them for the ack wait, and delete
them on ack; LISTEN/NOTIFY wakes a waiting consumer as soon as events are written. The SQL
is in `memory/events.py`; this module adapts it to `tools.bus.Bus`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Literal

import psycopg

from memory.db import Pool
from memory.events import (
    OutboxListener,
    ack_delivery,
    ensure_group,
    fetch_deliveries,
    group_backlog,
    insert_events,
)
from schemas.errors import BusError
from schemas.events import OpsEvent
from tools.bus import BusNames, BusObserver, Delivery, NoObserver, SeenIds, check_name, decode

_ERRORS = (psycopg.Error, OSError)


class PostgresBus:
    kind: Literal["postgres"] = "postgres"

    def __init__(
        self,
        pool: Pool,
        conninfo: str,
        names: BusNames,
        *,
        ack_wait_s: float,
        observer: BusObserver | None = None,
    ) -> None:
        self.names = names
        self._pool = pool
        self._conninfo = conninfo
        self._ack_wait_s = ack_wait_s
        self._observer = observer or NoObserver()
        # None: the pool's connections count the write (`memory.db.open_pool`), if anyone does
        self._publish_observer = observer

    async def publish(self, event: OpsEvent) -> bool:
        """Write the event to the outbox. `insert_events` reports it to the observer once the
        transaction commits (as it does for every other outbox write, so each is counted
        once); a failure before the write began is counted here."""
        writing = False
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                writing = True
                return await insert_events(cur, [event], observer=self._publish_observer) == 1
        except _ERRORS as exc:
            if not writing:
                self._observer.publish_failed(self.kind)
            raise BusError(f"cannot write event to the Postgres outbox: {exc}") from exc

    async def subscribe(
        self, group: str, families: Collection[str], consumer: str
    ) -> PostgresSubscription:
        check_name("group", group)
        for family in families:
            check_name("family", family)
        full = self.names.pg_group(group)
        try:
            await ensure_group(self._pool, full, families)
        except _ERRORS as exc:
            raise BusError(f"cannot create consumer group {full}: {exc}") from exc
        return PostgresSubscription(self, group, full, consumer)

    async def pending(self) -> dict[str, int]:
        prefix = self.names.pg_group("")
        try:
            backlog = await group_backlog(self._pool, prefix)
        except _ERRORS as exc:
            raise BusError(f"cannot read consumer groups: {exc}") from exc
        return {name.removeprefix(prefix): n for name, n in backlog.items()}

    async def ping(self) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.execute("SELECT 1")
        except _ERRORS as exc:
            raise BusError(f"Postgres does not answer: {exc}") from exc

    async def close(self) -> None:
        return None  # the pool belongs to the container


class PostgresSubscription:
    def __init__(self, bus: PostgresBus, group: str, full_name: str, consumer: str) -> None:
        self.group = group
        self.consumer = consumer
        self._bus = bus
        self._full = full_name
        self._listener = OutboxListener(bus._conninfo)
        self._seen = SeenIds()

    async def fetch(self, max_messages: int = 10, wait_s: float = 1.0) -> list[Delivery]:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                await self._listener.open()  # before looking: no NOTIFY can slip in between
                rows = await fetch_deliveries(
                    self._bus._pool, self._full, self.consumer, max_messages, self._bus._ack_wait_s
                )
            except _ERRORS as exc:
                raise BusError(f"cannot fetch from group {self._full}: {exc}") from exc
            deliveries = []
            for row in rows:
                event = decode_row(row.body)
                if event is None or event.event_id in self._seen:
                    if event is None:
                        self._bus._observer.rejected(self._bus.kind, self.group)
                    await ack_delivery(self._bus._pool, self._full, row.event_pk)
                    continue
                deliveries.append(Delivery(event, self.group, row.attempts, row.event_pk))
            remaining = deadline - time.monotonic()
            if deliveries or rows or remaining <= 0:
                return deliveries
            await self._listener.wait(remaining)

    async def ack(self, delivery: Delivery) -> None:
        assert isinstance(delivery.handle, int)
        try:
            await ack_delivery(self._bus._pool, self._full, delivery.handle)
        except _ERRORS as exc:
            self._bus._observer.ack_failed(self._bus.kind, self.group)
            raise BusError(f"cannot ack in group {self._full}: {exc}") from exc
        self._seen.add(delivery.event.event_id)
        self._bus._observer.acked(self._bus.kind, self.group)

    async def close(self) -> None:
        await self._listener.close()


def decode_row(body: object) -> OpsEvent | None:
    """The outbox stores the event as jsonb; validate it like any other bus message."""
    return decode(json.dumps(body))
