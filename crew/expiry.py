"""Stacks with a time to live: a goal's `ttl_hours` (non-prod only) decommissions its stack.

When the applied revision has been in place for `ttl_hours`, a decommission revision is
started (crew.revisions.decommission_stack): a destroy plan that waits at the approval gate
like any run, so a human still decides. `CREW_TTL_WARNING_S` before that, a `stack.expiring`
warning is logged (gate log, bus); the expiry itself is `stack.expired`. Both are announced
once per applied revision (a new revision starts the clock again), and a stack whose
decommission was rejected is not asked again until it is revised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from crew.container import Services
from crew.gate.alerts import emit_alert
from crew.revisions import decommission_stack
from crew.stacks import find_stack, list_stacks, outcome_of
from memory.runs import RunRecord
from schemas.approval import GateLogEntry
from schemas.errors import RunConflictError, StackConflictError
from schemas.events import EventType
from schemas.stack import RunOutcome, RunPurpose, StackStatus

logger = logging.getLogger(__name__)

ACTOR = "ttl"


def expires_at(applied: RunRecord) -> datetime | None:
    """When the stack applied by `applied` expires (None: its goal has no TTL)."""
    ttl = applied.goal.ttl_hours
    return applied.updated_at + timedelta(hours=ttl) if ttl is not None else None


async def expire_due_stacks(services: Services) -> list[RunRecord]:
    """Warn about stacks expiring soon, start a decommission of the expired ones; returns the
    decommission runs started."""
    now = services.context.clock()
    warning = timedelta(seconds=services.settings.ttl_warning_s)
    started: list[RunRecord] = []
    for summary in await list_stacks(services):
        if summary.status is not StackStatus.DEPLOYED:
            continue
        key, runs = await find_stack(services, summary.stack_id)
        applied = next(r for r in runs if outcome_of(r) is RunOutcome.APPLIED)
        when = expires_at(applied)
        if when is None:
            continue
        if any(
            r.revision > applied.revision and r.purpose is RunPurpose.DECOMMISSION for r in runs
        ):
            continue  # asked already: at the gate, or a human rejected it
        if now < when - warning:
            continue
        if now < when:
            await emit_alert(
                services,
                GateLogEntry(
                    at=now,
                    kind=EventType.STACK_EXPIRING.value,
                    run_id=applied.run_id,
                    actor=ACTOR,
                    detail=f"stack {key.id} expires at {when.isoformat()} (ttl_hours "
                    f"{applied.goal.ttl_hours}); it will then be decommissioned through the gate",
                ),
                dedup=f"ttl-warning:{key.id}:{applied.run_id}",
            )
            continue
        try:
            record = await decommission_stack(services, key.id, actor=ACTOR)
        except (RunConflictError, StackConflictError) as exc:
            logger.info("stack %s expired but is busy: %s", key.id, exc)
            continue
        started.append(record)
        await emit_alert(
            services,
            GateLogEntry(
                at=now,
                kind=EventType.STACK_EXPIRED.value,
                run_id=record.run_id,
                actor=ACTOR,
                detail=f"stack {key.id} expired at {when.isoformat()}: decommission run "
                f"{record.run_id} waits for approval",
            ),
            dedup=f"ttl:{key.id}:{applied.run_id}",
        )
    return started


async def expiry_loop(services: Services, stop: asyncio.Event) -> None:
    """Checks stacks with a TTL every CREW_TTL_CHECK_INTERVAL_S until `stop`."""
    while not stop.is_set():
        try:
            started = await expire_due_stacks(services)
            if started:
                logger.info("ttl: decommission started for %s", [r.run_id for r in started])
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("stack expiry check failed; will retry", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), services.settings.ttl_check_interval_s)
