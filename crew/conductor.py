"""Duties every long-running process shares: heartbeats, dead workers, the run queue's sweep,
the outbox relay and its retention.

`crew serve`, `crew serve --no-worker` (API only) and `crew worker` all run a Conductor:
- every CREW_HEARTBEAT_S it records a heartbeat (row + `heartbeat` event, one transaction);
- it declares dead the workers silent for 3 of their beats, takes their leases away and
  hands their runs to the others (`run.ready`); those resume from their last checkpoint;
- it re-dispatches runs that need a worker and have no `run.ready` queued (a back-off that
  ended, a lease that expired, an event the bus lost);
- with a Redis/NATS bus it relays the outbox; and it prunes old outbox rows.
Each duty is idempotent and safe with many processes doing it at once (row locks, `SKIP
LOCKED`, one relay at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from crew import __version__
from crew.container import Services
from crew.metrics import ClusterSnapshot
from memory import dispatch, workers
from memory.events import count_unrelayed, prune_events
from memory.relay import OutboxRelay
from schemas.errors import BusError
from schemas.heartbeat import Heartbeat

logger = logging.getLogger(__name__)

Role = Literal["api", "worker", "serve"]


@dataclass
class SweepReport:
    dead: list[str] = field(default_factory=list)
    reassigned: list[str] = field(default_factory=list)
    redispatched: list[str] = field(default_factory=list)


class Conductor:
    def __init__(
        self, services: Services, *, role: Role, in_flight: Callable[[], int] = lambda: 0
    ) -> None:
        self.services = services
        self.role = role
        self._in_flight = in_flight
        self._started_at = services.context.clock()

    async def beat(self) -> None:
        """Record one heartbeat of this process."""
        now = self.services.context.clock()
        heartbeat = Heartbeat(
            worker_id=self.services.worker_id,
            role=self.role,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            at=now,
            runs_in_flight=self._in_flight(),
            version=__version__,
        )
        await workers.beat(self.services.pool, heartbeat, self.services.settings.heartbeat_s)

    async def sweep(self) -> SweepReport:
        """Declare silent workers dead, hand their runs on, re-dispatch orphaned runs."""
        pool, now = self.services.pool, self.services.context.clock()
        report = SweepReport(dead=await workers.declare_dead(pool))
        if report.dead:
            report.reassigned = await dispatch.release_workers(pool, report.dead, now)
            logger.warning(
                "worker(s) %s missed %d heartbeats: declared dead; their runs %s go to others",
                ", ".join(report.dead),
                workers.MISSED_BEATS,
                ", ".join(report.reassigned) or "(none)",
            )
        report.redispatched = await dispatch.dispatch_orphans(pool, now)
        if report.redispatched:
            logger.info("re-dispatched %d run(s) with no worker", len(report.redispatched))
        return report

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run every duty until `stop`; a clean stop is recorded (no dead-worker alert)."""
        settings = self.services.settings
        duties: list[Awaitable[None]] = [
            _every(stop, settings.heartbeat_s, self.beat, "heartbeat"),
            _every(stop, settings.heartbeat_s, self.sweep, "sweep"),
            _every(stop, settings.retention_interval_s, self.prune, "outbox retention"),
        ]
        if self.services.bus.kind != "postgres":
            relay = OutboxRelay(
                self.services.pool,
                self.services.conninfo,
                self.services.bus,
                poll_s=settings.poll_interval_s,
            )
            duties.append(relay.run_forever(stop))
        try:
            await asyncio.gather(*duties)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    workers.mark_stopped(self.services.pool, self.services.worker_id)
                )

    async def prune(self) -> None:
        retention = timedelta(days=self.services.settings.events_retention_days)
        relayed_only = self.services.bus.kind != "postgres"
        pruned = await prune_events(self.services.pool, retention, relayed_only=relayed_only)
        if pruned:
            logger.info("pruned %d old outbox event(s)", pruned)


async def _every(
    stop: asyncio.Event, interval_s: float, duty: Callable[[], Awaitable[object]], what: str
) -> None:
    """Run `duty` now and then every `interval_s` until `stop`; errors are logged, not fatal."""
    while not stop.is_set():
        try:
            await duty()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("%s failed; will retry", what, exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def cluster_snapshot(services: Services) -> ClusterSnapshot:
    """What the cluster gauges show now (for /metrics). A bus that does not answer leaves
    its queue depths out rather than failing the scrape."""
    pending: dict[str, int] | None
    try:
        pending = await asyncio.wait_for(
            services.bus.pending(), services.settings.bus_timeout_s + 1
        )
    except (BusError, TimeoutError) as exc:
        logger.warning("metrics: bus queue depths unavailable: %s", exc)
        pending = None
    beats = await workers.recent_workers(services.pool)
    return ClusterSnapshot(
        runs_by_state=await services.runs.count_by_state(),
        waiting_for_worker=await dispatch.waiting_for_worker(services.pool),
        bus_pending=pending,
        unrelayed=0 if services.bus.kind == "postgres" else await count_unrelayed(services.pool),
        workers=[(b.worker_id, b.role, b.age_s, b.dead) for b in beats],
        decisions=await services.gate.decisions_acted_on(),
        shield_advisories=await services.shield.open_by_severity(),
    )


async def refresh_metrics(services: Services) -> bytes:
    """Update the cluster gauges and render the registry (the /metrics body)."""
    services.metrics.set_cluster(await cluster_snapshot(services))
    return services.metrics.render()
