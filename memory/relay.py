"""The outbox relay: forwards `crew_events` rows to Redis or NATS, in order, at least once.

Every long-running process runs one; a transaction-scoped advisory lock lets one of them work
at a time, so events reach the bus in outbox order. A batch is published one event after the
other and the rows that made it are marked relayed in the same transaction. When the bus is
down the relay stops at the first failure, keeps what was sent, and tries again with back-off:
nothing is lost, and runs never wait for the bus (they only write the outbox). A crash between
publishing and marking re-sends a few events, which the bus drops by event id.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from memory.db import Pool
from memory.events import OutboxListener, mark_relayed, take_relay_lock, unrelayed
from schemas.errors import BusError
from schemas.events import OpsEvent
from tools.bus import Bus

logger = logging.getLogger(__name__)

#: Back-off after a failed publish doubles up to this (seconds).
MAX_BACKOFF_S = 10.0


class OutboxRelay:
    def __init__(
        self, pool: Pool, conninfo: str, bus: Bus, *, poll_s: float, batch: int = 500
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._poll_s = poll_s
        self._batch = batch
        self._listener = OutboxListener(conninfo)

    async def relay_once(self) -> int:
        """Forward one batch; returns how many events went out. Raises BusError (after
        keeping the progress made) when the bus refuses one."""
        failure: BusError | None = None
        sent: list[int] = []
        async with self._pool.connection() as conn, conn.transaction():
            if not await take_relay_lock(conn, self._bus.names.prefix):
                return 0  # another process is relaying
            for pk, body in await unrelayed(conn, self._batch):
                try:
                    event = OpsEvent.model_validate(body)
                except ValidationError as exc:
                    logger.error("outbox row %d is not a valid OpsEvent; skipped: %s", pk, exc)
                    sent.append(pk)
                    continue
                try:
                    await self._bus.publish(event)
                except BusError as exc:
                    failure = exc
                    break
                sent.append(pk)
            if sent:
                await mark_relayed(conn, sent)
        if failure is not None:
            raise failure
        return len(sent)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Relay until `stop`; woken by NOTIFY when events are written, else every poll."""
        backoff = 0.0
        try:
            while not stop.is_set():
                try:
                    sent = await self.relay_once()
                    if backoff:
                        logger.info("the bus is back; relaying the outbox")
                    backoff = 0.0
                except BusError as exc:
                    backoff = min(MAX_BACKOFF_S, max(0.5, backoff * 2))
                    logger.warning("relay: bus unavailable (%s); retrying in %.1fs", exc, backoff)
                    await _sleep_unless(stop, backoff)
                    continue
                except Exception:
                    logger.exception("relay failed; retrying")
                    await _sleep_unless(stop, self._poll_s)
                    continue
                if sent < self._batch:  # caught up: wait for news
                    await _wait_unless(stop, self._listener, self._poll_s)
        finally:
            await self._listener.close()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return


async def _wait_unless(stop: asyncio.Event, listener: OutboxListener, seconds: float) -> None:
    waiters = [asyncio.ensure_future(listener.wait(seconds)), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
