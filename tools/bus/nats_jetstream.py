"""The NATS JetStream bus (`CREW_BUS_URL=nats://...`), through nats-py.

One stream, `<prefix>_events`, holds the subjects `<prefix>.events.<family>` (limits
retention: `max_msgs` = CREW_BUS_MAXLEN; `duplicate_window` = CREW_BUS_DEDUPE_WINDOW_S, and
every message carries `Nats-Msg-Id: <event id>`, so the relay may re-send without
duplicating). A consumer group is one durable pull consumer per family,
`<prefix>_<group>_<family>` (explicit ack, `ack_wait` = CREW_BUS_ACK_WAIT_S, redelivered
without limit, starting with the oldest kept message). The server here is 2.9, which has no
multi-subject filter; a consumer per family works on every version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection
from typing import Literal, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from schemas.errors import BusError
from schemas.events import OpsEvent
from tools.bus import (
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

logger = logging.getLogger(__name__)

T = TypeVar("T")

_ERRORS = (nats.errors.Error, OSError, TimeoutError)


class NatsBus:
    kind: Literal["nats"] = "nats"

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
        self.url = url
        self.ack_wait_s = ack_wait_s
        self.timeout_s = timeout_s
        self._maxlen = maxlen
        self._dedupe_window_s = dedupe_window_s
        self._observer = observer or NoObserver()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._lock = asyncio.Lock()

    async def jetstream(self) -> JetStreamContext:
        """Connected, with the stream in place (connects lazily; again after a close)."""
        async with self._lock:
            if self._js is not None and self._nc is not None and not self._nc.is_closed:
                return self._js
            try:
                nc = await asyncio.wait_for(
                    nats.connect(
                        self.url,
                        connect_timeout=max(1, int(self.timeout_s)),
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=1,
                        allow_reconnect=True,
                        error_cb=_log_error,
                    ),
                    self.timeout_s * 2,
                )
            except Exception as exc:  # nats-py raises unrelated types when it cannot connect
                raise BusError(f"NATS at {_safe(self.url)}: {type(exc).__name__}: {exc}") from exc
            js = nc.jetstream(timeout=self.timeout_s)
            config = StreamConfig(
                name=self.names.nats_stream(),
                subjects=[self.names.nats_subject("*")],
                max_msgs=self._maxlen,
                duplicate_window=self._dedupe_window_s,
                storage=StorageType.FILE,
            )
            try:
                try:
                    await js.add_stream(config)
                except nats.js.errors.BadRequestError:
                    await js.update_stream(config)  # exists with other limits: take ours
            except _ERRORS as exc:
                await nc.close()
                raise BusError(f"NATS: cannot create stream {config.name}: {exc}") from exc
            self._nc, self._js = nc, js
            return js

    async def call(self, awaitable: Awaitable[T], *, extra_s: float = 0.0) -> T:
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s + extra_s)
        except _ERRORS as exc:
            raise BusError(f"NATS: {type(exc).__name__}: {exc}") from exc

    async def publish(self, event: OpsEvent) -> bool:
        try:
            js = await self.jetstream()
            ack = await self.call(
                js.publish(
                    self.names.nats_subject(family_of(event.type)),
                    encode(event),
                    headers={"Nats-Msg-Id": event.event_id},
                )
            )
        except BusError:
            self._observer.publish_failed(self.kind)
            raise
        if ack.duplicate:
            return False
        self._observer.published(self.kind, event)
        return True

    async def subscribe(
        self, group: str, families: Collection[str], consumer: str
    ) -> NatsSubscription:
        check_name("group", group)
        js = await self.jetstream()
        stream = self.names.nats_stream()
        pulls = []
        for family in sorted(families):
            durable = self.names.nats_durable(group, check_name("family", family))
            config = ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait_s,
                deliver_policy=DeliverPolicy.ALL,
                filter_subject=self.names.nats_subject(family),
                max_deliver=-1,
            )
            await self.call(js.add_consumer(stream, config))
            pulls.append(await self.call(js.pull_subscribe_bind(durable=durable, stream=stream)))
        return NatsSubscription(self, group, consumer, pulls)

    async def pending(self) -> dict[str, int]:
        """Per group: messages not yet delivered plus delivered and not acknowledged."""
        js = await self.jetstream()
        infos = await self.call(js.consumers_info(self.names.nats_stream()))
        totals: dict[str, int] = {}
        head = f"{self.names.prefix}_"
        for info in infos:
            name = info.name or ""
            if not name.startswith(head) or "_" not in name.removeprefix(head):
                continue
            group = name.removeprefix(head).rsplit("_", 1)[0]
            depth = (info.num_pending or 0) + (info.num_ack_pending or 0)
            totals[group] = totals.get(group, 0) + depth
        return totals

    async def ping(self) -> None:
        js = await self.jetstream()
        await self.call(js.account_info())

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = self._js = None


class NatsSubscription:
    def __init__(
        self,
        bus: NatsBus,
        group: str,
        consumer: str,
        pulls: list[JetStreamContext.PullSubscription],
    ) -> None:
        self.group = group
        self.consumer = consumer
        self._bus = bus
        self._pulls = pulls
        self._seen = SeenIds()

    async def fetch(self, max_messages: int = 10, wait_s: float = 1.0) -> list[Delivery]:
        # Every family consumer is asked at once; each answers with its first messages or
        # when `wait_s` runs out.
        batches = await asyncio.gather(
            *(self._fetch_one(pull, max_messages, wait_s) for pull in self._pulls)
        )
        deliveries = []
        for msgs in batches:
            for msg in msgs:
                event = decode(msg.data)
                if event is None or event.event_id in self._seen:
                    if event is None:
                        self._bus._observer.rejected(self._bus.kind, self.group)
                    await self._bus.call(msg.ack())
                    continue
                deliveries.append(Delivery(event, self.group, msg.metadata.num_delivered or 1, msg))
        return deliveries

    async def _fetch_one(
        self, pull: JetStreamContext.PullSubscription, max_messages: int, wait_s: float
    ) -> list[Msg]:
        try:
            return await self._bus.call(
                pull.fetch(batch=max_messages, timeout=max(wait_s, 0.05)), extra_s=wait_s
            )
        except BusError as exc:
            if isinstance(exc.__cause__, nats.errors.TimeoutError | TimeoutError) and (
                self._bus._nc is not None and self._bus._nc.is_connected
            ):
                return []  # nothing arrived in time
            raise

    async def ack(self, delivery: Delivery) -> None:
        msg = delivery.handle
        assert isinstance(msg, Msg)
        try:
            await self._bus.call(msg.ack())
        except BusError:
            self._bus._observer.ack_failed(self._bus.kind, self.group)
            raise
        self._seen.add(delivery.event.event_id)
        self._bus._observer.acked(self._bus.kind, self.group)

    async def close(self) -> None:
        for pull in self._pulls:
            try:
                await pull.unsubscribe()
            except _ERRORS:
                logger.debug("unsubscribe failed", exc_info=True)


async def _log_error(exc: Exception) -> None:
    logger.info("NATS: %s: %s", type(exc).__name__, exc)


def _safe(url: str) -> str:
    """The URL without credentials, for messages."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
