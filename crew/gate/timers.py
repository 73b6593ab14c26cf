"""The gate's clock: approvals that expire, and the rollback SLA measured for every rollback.

`run_gate_jobs` runs in every worker every CREW_GATE_INTERVAL_S. Each part is idempotent, so
several replicas may run it at once:
- a run undecided at the gate for longer than CREW_APPROVAL_TTL is rejected through the same
  path as a human's decision (`crew.service.decide`, actor "conductor", channel "system"; if
  a human decided first, theirs stands);
- every finished rollback is measured against the SLA (begin < 5 min and finish < 15 min
  after what triggered it: the failed apply, or the human's request) and recorded; a breach,
  or a rollback still running 15 minutes after its trigger, raises an alert.

This job is the one place a breach is counted (`crew_rollback_sla_breaches_total`, by
trigger): it sees every rollback, also one whose worker died. A rollback breaches at most
once: the alert's dedup key names the rollback (its run and the audit row that started it),
so whichever check sees the breach first (overdue while running, or missed once measured)
logs, publishes and counts it, on one replica, and later passes or checks do not again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from crew.container import Services
from crew.gate.alerts import emit_alert
from crew.metrics import RollbackTrigger, rollback_trigger
from crew.service import decide
from memory.gate import RollbackToMeasure, RunningRollback, SlaMeasure
from nodes.forge.common import ROLLBACK_BEGIN_SLA_S, ROLLBACK_FINISH_SLA_S
from schemas.apply import ApplyResult
from schemas.approval import Channel, Decision, GateLogEntry
from schemas.errors import RunConflictError
from schemas.events import EventType

logger = logging.getLogger(__name__)

CONDUCTOR = "conductor"


@dataclass
class GateJobReport:
    expired: list[str] = field(default_factory=list)
    measured: list[SlaMeasure] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)


def describe_ttl(ttl: timedelta) -> str:
    seconds = ttl.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def measure_sla(item: RollbackToMeasure) -> SlaMeasure:
    """Seconds from the trigger to the rollback's start and end, against the SLA."""
    result = item.result
    started = result.rollback_started_at or result.started_at
    finished = result.rollback_finished_at or result.finished_at
    begin_s = max(0.0, (started - item.trigger_at).total_seconds())
    finish_s = max(0.0, (finished - item.trigger_at).total_seconds())
    return SlaMeasure(
        run_id=item.run_id,
        seq=item.seq,
        trigger_at=item.trigger_at,
        started_at=started,
        finished_at=finished,
        begin_s=begin_s,
        finish_s=finish_s,
        met=begin_s <= ROLLBACK_BEGIN_SLA_S and finish_s <= ROLLBACK_FINISH_SLA_S,
    )


async def expire_waiting_runs(services: Services) -> list[str]:
    """Reject runs that waited at the gate longer than CREW_APPROVAL_TTL; returns their ids."""
    ttl = services.settings.approval_ttl
    now = services.context.clock()
    expired = []
    for run_id in await services.gate.waiting_since_before(now - ttl):
        why = f"approval expired: nobody decided within {describe_ttl(ttl)} (CREW_APPROVAL_TTL)"
        try:
            record = await decide(
                services,
                run_id,
                Decision.REJECT,
                actor=CONDUCTOR,
                channel=Channel.SYSTEM,
                reason=why,
            )
        except RunConflictError:
            continue  # decided (or moved on) meanwhile: the human's decision stands
        expired.append(run_id)
        await emit_alert(
            services,
            GateLogEntry(
                at=now,
                kind=EventType.APPROVAL_EXPIRED.value,
                run_id=run_id,
                channel=Channel.SYSTEM,
                actor=CONDUCTOR,
                action="reject",
                detail=why,
            ),
            payload=record.decision,
            dedup=f"approval.expired:{run_id}",
        )
    return expired


async def check_rollback_slas(services: Services) -> tuple[list[SlaMeasure], list[str]]:
    """Measure finished rollbacks and look for overdue ones; alert on and count each breach.

    Returns what was measured this pass and the runs newly found overdue."""
    measured = []
    for item in await services.gate.rollbacks_to_measure():
        measure = measure_sla(item)
        if not await services.gate.record_sla(measure):
            continue  # another replica measured it
        measured.append(measure)
        if not measure.met:
            await _missed(services, item, measure)
    cutoff = services.context.clock() - timedelta(seconds=ROLLBACK_FINISH_SLA_S)
    overdue = []
    for running in await services.gate.rollbacks_running_since_before(cutoff):
        if await _overdue(services, running):
            overdue.append(running.run_id)
    return measured, overdue


async def _missed(services: Services, item: RollbackToMeasure, measure: SlaMeasure) -> bool:
    """A finished rollback that missed the SLA (unless it was reported while overdue)."""
    detail = (
        f"rollback SLA missed: began {measure.begin_s:.0f}s and finished "
        f"{measure.finish_s:.0f}s after its trigger (SLA: < "
        f"{ROLLBACK_BEGIN_SLA_S:.0f}s and < {ROLLBACK_FINISH_SLA_S:.0f}s)"
    )
    trigger = rollback_trigger(item.result.failure_at is not None)
    return await _breached(
        services, item.run_id, item.rollback_seq, trigger, detail, payload=item.result
    )


async def _overdue(services: Services, running: RunningRollback) -> bool:
    """A rollback still running after the finish SLA: someone should look now."""
    now = services.context.clock()
    detail = (
        f"rollback still running {(now - running.since).total_seconds():.0f}s after its "
        f"trigger (SLA: finished < {ROLLBACK_FINISH_SLA_S:.0f}s): look at it now"
    )
    trigger = rollback_trigger(running.after_failure)
    return await _breached(services, running.run_id, running.started_seq, trigger, detail)


async def _breached(
    services: Services,
    run_id: str,
    rollback_seq: int,
    trigger: RollbackTrigger,
    detail: str,
    payload: ApplyResult | None = None,
) -> bool:
    """Alert and count one rollback's breach; False when it was already (by any replica)."""
    fresh = await emit_alert(
        services,
        GateLogEntry(
            at=services.context.clock(),
            kind=EventType.ROLLBACK_SLA_BREACHED.value,
            run_id=run_id,
            actor=CONDUCTOR,
            action="rollback",
            detail=detail,
        ),
        payload=payload,
        dedup=breach_key(run_id, rollback_seq),
    )
    if fresh:
        services.metrics.rollback_sla_breached(trigger)
    return fresh


def breach_key(run_id: str, rollback_seq: int) -> str:
    """The dedup key of a rollback's SLA breach: one per rollback, whoever sees it."""
    return f"rollback.breach:{run_id}:{rollback_seq}"


async def run_gate_jobs(services: Services) -> GateJobReport:
    report = GateJobReport()
    report.expired = await expire_waiting_runs(services)
    report.measured, report.overdue = await check_rollback_slas(services)
    await services.gate.prune_requests(services.context.clock())
    return report


async def gate_loop(services: Services, stop: asyncio.Event) -> None:
    """`run_gate_jobs` every CREW_GATE_INTERVAL_S until `stop`; errors are logged and retried."""
    while not stop.is_set():
        try:
            report = await run_gate_jobs(services)
            if report.expired:
                logger.info("rejected %d run(s) whose approval expired", len(report.expired))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("gate jobs failed; will retry", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), services.settings.gate_interval_s)
