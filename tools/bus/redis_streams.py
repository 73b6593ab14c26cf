"""The Redis Streams bus (`CREW_BUS_URL=redis://...`).

One stream per event family (`<prefix>:events:<family>`), trimmed with `XADD MAXLEN ~`. A
consumer group is a Redis consumer group of the same name on each of its families' streams
(created from id 0: a new group starts with the oldest kept entry); consumers read with
`XREADGROUP`, acknowledge with `XACK`, and take over entries another consumer left
unacknowledged for longer than the ack wait with `XAUTOCLAIM`. Publishing is one Lua script
that stores an event id once within the dedupe window (a `<prefix>:seen:<id>` key with a TTL)
and appends the entry, so the relay may re-send without duplicating.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Collection
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from schemas.errors import BusError
from schemas.events import OpsEvent
from tools.bus import (
    FAMILIES,
    BusNames,
    BusObserver,
    Delivery,
    NoObserver,
    SeenIds,
    check_name,
    decode,
    encode,
    family_of,
)

T = TypeVar("T")

#: SET the seen-key if absent (with a TTL), and only then XADD: one round trip, atomic.
_PUBLISH = """
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[1])
end
return false
"""


class RedisBus:
    kind: Literal["redis"] = "redis"

    def __init__(
        self,
        url: str,
        names: BusNames,
        *,
        ack_wait_s: float,
        maxlen: int,
        dedupe_window_s: float,
        timeout_s: float,
        observer: BusObserver | None = None,
    ) -> None:
        self.names = names
        self.ack_wait_s = ack_wait_s
        self.timeout_s = timeout_s
        self._maxlen = maxlen
        self._dedupe_ms = int(dedupe_window_s * 1000)
        self._observer = observer or NoObserver()
        # Blocking reads set their own limit; every call is bounded by `_call` instead.
        self.client = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=None, decode_responses=False
        )
        self._publish_script = self.client.register_script(_PUBLISH)

    async def call(self, awaitable: Awaitable[T], *, extra_s: float = 0.0) -> T:
        """One Redis call, bounded, with Redis's errors turned into BusError."""
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s + extra_s)
        except (RedisError, OSError, TimeoutError) as exc:
            raise BusError(f"Redis: {type(exc).__name__}: {exc}") from exc

    async def publish(self, event: OpsEvent) -> bool:
        stream = self.names.redis_stream(family_of(event.type))
        try:
            entry = await self.call(
                self._publish_script(
                    keys=[stream, self.names.redis_seen_key(event.event_id)],
                    args=[encode(event), self._maxlen, self._dedupe_ms],
                )
            )
        except BusError:
            self._observer.publish_failed(self.kind)
            raise
        if entry is None:
            return False
        self._observer.published(self.kind, event)
        return True

    async def subscribe(
        self, group: str, families: Collection[str], consumer: str
    ) -> RedisSubscription:
        check_name("group", group)
        streams = [self.names.redis_stream(check_name("family", f)) for f in sorted(families)]
        name = self.names.redis_group(group)
        for stream in streams:
            try:
                await self.call(self.client.xgroup_create(stream, name, id="0", mkstream=True))
            except BusError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        return RedisSubscription(self, group, name, streams, consumer)

    async def pending(self) -> dict[str, int]:
        """Per group: entries delivered but not acknowledged plus entries not yet delivered
        (`pending` + `lag` of XINFO GROUPS), over every family stream."""
        totals: dict[str, int] = {}
        prefix = self.names.redis_group("")
        for family in FAMILIES:
            try:
                groups: list[dict[Any, Any]] = await self.call(
                    self.client.xinfo_groups(self.names.redis_stream(family))
                )
            except BusError as exc:
                if "no such key" in str(exc).lower():
                    continue
                raise
            for info in groups:
                name = _text(info.get("name", info.get(b"name", b"")))
                if not name.startswith(prefix):
                    continue
                depth = int(info.get("pending") or 0) + int(info.get("lag") or 0)
                group = name.removeprefix(prefix)
                totals[group] = totals.get(group, 0) + depth
        return totals

    async def ping(self) -> None:
        await self.call(self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()


class RedisSubscription:
    def __init__(
        self, bus: RedisBus, group: str, name: str, streams: list[str], consumer: str
    ) -> None:
        self.group = group
        self.consumer = consumer
        self._bus = bus
        self._name = name
        self._streams = streams
        self._seen = SeenIds()
        self._next_reclaim = 0.0

    async def fetch(self, max_messages: int = 10, wait_s: float = 1.0) -> list[Delivery]:
        deliveries = await self._reclaim(max_messages)
        if deliveries:
            return deliveries
        block_ms = max(1, int(wait_s * 1000))
        reply = await self._bus.call(
            self._bus.client.xreadgroup(
                self._name,
                self.consumer,
                dict.fromkeys(self._streams, ">"),
                count=max_messages,
                block=block_ms,
            ),
            extra_s=wait_s,
        )
        for stream, entries in _stream_entries(reply):
            deliveries += await self._accept(stream, entries, attempt=1)
        return deliveries

    async def _reclaim(self, max_messages: int) -> list[Delivery]:
        """Entries another consumer (dead, or too slow) left unacknowledged past the ack wait;
        checked every half ack wait at most."""
        now = time.monotonic()
        if now < self._next_reclaim:
            return []
        self._next_reclaim = now + self._bus.ack_wait_s / 2
        idle_ms = int(self._bus.ack_wait_s * 1000)
        deliveries: list[Delivery] = []
        for stream in self._streams:
            reply = await self._bus.call(
                self._bus.client.xautoclaim(
                    stream, self._name, self.consumer, idle_ms, "0-0", count=max_messages
                )
            )
            claimed = reply[1] if len(reply) > 1 else []
            # Entries trimmed away meanwhile come back as deleted ids: acknowledge them.
            for entry_id in reply[2] if len(reply) > 2 else []:
                await self._bus.call(self._bus.client.xack(stream, self._name, entry_id))
            deliveries += await self._accept(_text(stream), claimed, attempt=2)
        return deliveries

    async def _accept(self, stream: Any, entries: Any, *, attempt: int) -> list[Delivery]:
        accepted = []
        for entry_id, fields in entries:
            raw = (fields or {}).get(b"event")
            event = decode(raw) if raw is not None else None
            if event is None or event.event_id in self._seen:
                if event is None:
                    self._bus._observer.rejected(self._bus.kind, self.group)
                await self._bus.call(self._bus.client.xack(stream, self._name, entry_id))
                continue
            accepted.append(Delivery(event, self.group, attempt, (_text(stream), entry_id)))
        return accepted

    async def ack(self, delivery: Delivery) -> None:
        handle = delivery.handle
        assert isinstance(handle, tuple)
        stream, entry_id = handle
        try:
            await self._bus.call(self._bus.client.xack(stream, self._name, entry_id))
        except BusError:
            self._bus._observer.ack_failed(self._bus.kind, self.group)
            raise
        self._seen.add(delivery.event.event_id)
        self._bus._observer.acked(self._bus.kind, self.group)

    async def close(self) -> None:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_entries(reply: Any) -> list[tuple[str, list[Any]]]:
    """XREADGROUP's reply (RESP2, redis-py's default) as (stream, entries) pairs."""
    return [(_text(stream), entries) for stream, entries in reply or []]
