"""Drift detection: has anything in a deployed stack changed behind the crew's back?

A drift check plans the applied run's configuration again, in that run's workspace and under
the stack's lock (a check never runs beside an apply or a rollback of the same stack): what
the plan would change is what changed behind the crew's back (attributes that differ from
the declared configuration, and resources deleted outside Terraform, which it would create
again). The plan file is never applied by the check. Every check is recorded (the stack view
shows the last one); a drift is announced once (OpsEvent `drift.detected` on the gate log and
the bus, a metric, a warning, a Slack message with Reconcile and Accept buttons:
crew/gate/drift_message.py), keyed by its fingerprint, so a daily check of an unchanged drift
stays quiet, and a drift a human accepted (`drift.accepted`) is not announced again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from datetime import timedelta

from crew.container import Services
from crew.gate.alerts import emit_alert
from crew.gate.drift_message import announce_drift
from crew.stacks import find_stack, list_stacks, outcome_of, stack_status
from memory.locks import StackLockedError
from nodes.forge.common import describe, revision_dir, state_backend
from schemas.approval import GateLogEntry
from schemas.drift import DriftedResource, DriftReport
from schemas.errors import StackConflictError, ToolError
from schemas.events import EventType
from schemas.stack import RunOutcome, StackStatus
from tools.terraform_output import drifted_resources

logger = logging.getLogger(__name__)

DRIFT_PLAN = "drift.tfplan"
#: How long a manual check waits for a stack held by a run before answering 409.
LOCK_WAIT_S = 10.0


def fingerprint(resources: list[DriftedResource]) -> str:
    """The same drift (same resources, actions and attributes) has the same fingerprint."""
    canonical = json.dumps(
        sorted([r.address, r.action.value, r.attributes] for r in resources), sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def describe_drift(report: DriftReport) -> str:
    parts = [
        f"{r.address} {'deleted' if r.action.value == 'delete' else 'changed'}"
        + (f" ({', '.join(r.attributes[:5])})" if r.attributes else "")
        for r in report.resources[:10]
    ]
    more = len(report.resources) - 10
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


async def check_drift(services: Services, stack_id: str, *, trigger: str) -> DriftReport:
    """One plan of a deployed stack's applied configuration (never applied); the report is recorded
    and, when new, announced. Raises StackNotFoundError, StackConflictError (nothing deployed, or
    the stack is held by a run), ToolError (terraform failed)."""
    key, runs = await find_stack(services, stack_id)
    if stack_status(runs) is not StackStatus.DEPLOYED:
        raise StackConflictError(
            stack_id, f"stack {stack_id} is {stack_status(runs).value}: nothing deployed to check"
        )
    applied = next(r for r in runs if outcome_of(r) is RunOutcome.APPLIED)
    ctx = services.context
    workspace = revision_dir(services.settings.workspaces_dir, applied.run_id, applied.revision)
    backend = state_backend(ctx)
    if ctx.stack_locks is None:  # only a bare test context has none
        raise StackConflictError(stack_id, "no stack locks configured: drift check refused")
    started = ctx.clock()
    try:
        async with ctx.stack_locks.hold(
            key.id,
            run_id=applied.run_id,
            worker_id=services.worker_id,
            operation="drift-check",
            wait_s=LOCK_WAIT_S,
        ):
            init = await ctx.terraform.init(workspace, backend_config=backend.init_config(key))
            if not init.ok:
                raise ToolError(describe(init.errors, "terraform init failed"))
            planned = await ctx.terraform.plan(workspace, DRIFT_PLAN)
            if not planned.ok:
                raise ToolError(describe(planned.errors, "terraform plan failed"))
            doc = await ctx.terraform.show_plan(workspace, DRIFT_PLAN)
    except StackLockedError as exc:
        raise StackConflictError(stack_id, f"drift check not started: {exc}") from exc
    resources = drifted_resources(doc)
    finished = ctx.clock()
    report = DriftReport(
        stack_id=key.id,
        run_id=applied.run_id,
        checked_at=finished,
        duration_s=max(0.0, (finished - started).total_seconds()),
        drifted=bool(resources),
        resources=resources,
        fingerprint=fingerprint(resources),
        trigger=trigger,
    )
    await services.drift.record(report)
    services.metrics.drift_checked(report.drifted)
    if report.drifted and not await services.drift.accepted(key.id, report.fingerprint):
        fresh = await emit_alert(
            services,
            GateLogEntry(
                at=finished,
                kind=EventType.DRIFT_DETECTED.value,
                run_id=applied.run_id,
                actor=trigger,
                detail=f"stack {key.id} drifted: {describe_drift(report)}",
            ),
            payload=report,
            dedup=f"drift:{key.id}:{report.fingerprint}",
        )
        if fresh:
            await announce_drift(services, report)
    return report


async def accept_drift(services: Services, stack_id: str, *, actor: str) -> DriftReport:
    """Record the stack's last detected drift as accepted by `actor` (audited on the gate log);
    later checks that find the same drift do not announce it again."""
    key, _ = await find_stack(services, stack_id)
    last = await services.drift.latest(key.id)
    if last is None or not last.report.drifted:
        raise StackConflictError(stack_id, f"stack {stack_id} has no detected drift to accept")
    now = services.context.clock()
    await services.drift.accept(key.id, last.report.fingerprint, actor, now)
    await emit_alert(
        services,
        GateLogEntry(
            at=now,
            kind=EventType.DRIFT_ACCEPTED.value,
            run_id=last.report.run_id,
            actor=actor,
            detail=f"drift of stack {key.id} accepted by {actor}: {describe_drift(last.report)}",
        ),
        payload=last.report,
        dedup=f"drift.accepted:{key.id}:{last.report.fingerprint}",
    )
    return last.report


async def check_due_stacks(services: Services) -> list[DriftReport]:
    """Check every deployed stack whose last check is older than CREW_DRIFT_INTERVAL_S.

    A stack held by a run is skipped (the next round finds it); a check that fails is logged
    and the others go on."""
    interval = timedelta(seconds=services.settings.drift_interval_s)
    now = services.context.clock()
    reports: list[DriftReport] = []
    for stack in await list_stacks(services):
        if stack.status is not StackStatus.DEPLOYED:
            continue
        last = await services.drift.latest(stack.stack_id)
        if last is not None and now - last.report.checked_at < interval:
            continue
        try:
            reports.append(await check_drift(services, stack.stack_id, trigger="schedule"))
        except StackConflictError as exc:
            logger.info("drift check of %s skipped: %s", stack.stack_id, exc)
        except ToolError as exc:
            logger.warning("drift check of %s failed: %s", stack.stack_id, exc)
    return reports


async def drift_loop(services: Services, stop: asyncio.Event) -> None:
    """The scheduled drift check: looks for due stacks every hour at most (sooner for a short
    interval), until `stop`."""
    poll_s = min(3600.0, max(1.0, services.settings.drift_interval_s / 4))
    while not stop.is_set():
        try:
            reports = await check_due_stacks(services)
            drifted = [r.stack_id for r in reports if r.drifted]
            if reports:
                logger.info("drift: %d stack(s) checked, drifted: %s", len(reports), drifted)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("scheduled drift check failed; will retry", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)
