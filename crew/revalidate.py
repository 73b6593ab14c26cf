"""Nightly re-validation: does what is deployed still pass today's policy and scanners?

A stack applied months ago passed the policy of that day. Policies tighten and scanners learn
new rules, so each deployed stack's applied configuration is planned again (under the stack's
lock, never applied, like a drift check) and Sentinel judges it as it would a new run. A
finding the applied run's own validation did not have is new: it is announced once per set
of new findings (OpsEvent `stack.findings` on the gate log and the bus, a warning), with the
fix a revision of the goal (`crew revise`) or a reconcile when the catalog already fixes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from crew.container import Services, build_sentinel
from crew.gate.alerts import emit_alert
from crew.stacks import find_stack, list_stacks, outcome_of, stack_status
from memory.locks import StackLockedError
from nodes.forge.common import describe, revision_dir, state_backend
from schemas.approval import GateLogEntry
from schemas.errors import StackConflictError, ToolError
from schemas.events import EventType
from schemas.plan import PlanSpec
from schemas.stack import RunOutcome, StackRevalidation, StackStatus
from schemas.validation import Finding, ValidationReport
from sentinel.engine import Subject

logger = logging.getLogger(__name__)

REVALIDATE_PLAN = "revalidate.tfplan"
REVALIDATE_JSON = "revalidate-plan.json"
LOCK_WAIT_S = 10.0


def finding_key(finding: Finding) -> tuple[str, str, str]:
    return (finding.tool, finding.rule_id, finding.resource or "")


def new_findings(applied: ValidationReport | None, today: ValidationReport) -> list[Finding]:
    """Findings of `today` (not waived) that the applied run's validation did not have."""
    known = {finding_key(f) for f in applied.findings} if applied else set()
    return [f for f in today.findings if not f.waived and finding_key(f) not in known]


async def revalidate_stack(services: Services, stack_id: str, *, trigger: str) -> StackRevalidation:
    """Plan the deployed stack's applied configuration and validate it with today's Sentinel.
    Raises StackNotFoundError, StackConflictError (nothing deployed, or held by a run),
    ToolError (terraform failed)."""
    key, runs = await find_stack(services, stack_id)
    if stack_status(runs) is not StackStatus.DEPLOYED:
        raise StackConflictError(
            stack_id, f"stack {stack_id} is {stack_status(runs).value}: nothing to re-validate"
        )
    applied = next(r for r in runs if outcome_of(r) is RunOutcome.APPLIED)
    ctx = services.context
    config: Any = {"configurable": {"thread_id": applied.run_id}}
    values: dict[str, Any] = dict((await services.graph.aget_state(config)).values or {})
    plan, validation = values.get("plan"), values.get("validation")
    if not isinstance(plan, PlanSpec):
        raise StackConflictError(stack_id, f"the applied run {applied.run_id} has no PlanSpec")
    workspace = revision_dir(services.settings.workspaces_dir, applied.run_id, applied.revision)
    if ctx.stack_locks is None:
        raise StackConflictError(stack_id, "no stack locks configured: re-validation refused")
    try:
        async with ctx.stack_locks.hold(
            key.id,
            run_id=applied.run_id,
            worker_id=services.worker_id,
            operation="revalidate",
            wait_s=LOCK_WAIT_S,
        ):
            init = await ctx.terraform.init(
                workspace, backend_config=state_backend(ctx).init_config(key)
            )
            if not init.ok:
                raise ToolError(describe(init.errors, "terraform init failed"))
            planned = await ctx.terraform.plan(workspace, REVALIDATE_PLAN)
            if not planned.ok:
                raise ToolError(describe(planned.errors, "terraform plan failed"))
            doc = await ctx.terraform.show_plan(workspace, REVALIDATE_PLAN)
    except StackLockedError as exc:
        raise StackConflictError(stack_id, f"re-validation not started: {exc}") from exc
    # Beside the workspace, not in it: scanners that read the .tf directory would take a
    # second plan JSON there for part of the configuration.
    plan_path = workspace.parent / f"{workspace.name}-{REVALIDATE_JSON}"
    await asyncio.to_thread(plan_path.write_text, json.dumps(doc), "utf-8")
    goal = applied.goal
    sentinel = ctx.sentinel or build_sentinel(services.settings)
    report = await sentinel.validate(
        Subject(
            plan_id=plan.plan_id,
            plan_json=doc,
            plan_json_path=plan_path,
            hcl_dir=workspace,
            budget_monthly_usd=goal.budget.monthly_usd,
            region=plan.region,
            required_tags=dict(goal.constraints.required_tags) if goal.constraints else {},
            plan=plan,
            forge_render=True,
        ),
        ctx.clock(),
    )
    fresh = new_findings(validation if isinstance(validation, ValidationReport) else None, report)
    announced = False
    if fresh:
        digest = hashlib.sha256(
            json.dumps(sorted(finding_key(f) for f in fresh)).encode()
        ).hexdigest()[:16]
        listed = "; ".join(f"{f.severity.value} {f.rule_id} on {f.resource}" for f in fresh[:10])
        announced = await emit_alert(
            services,
            GateLogEntry(
                at=ctx.clock(),
                kind=EventType.STACK_FINDINGS.value,
                run_id=applied.run_id,
                actor=trigger,
                detail=f"stack {key.id} no longer passes today's checks as applied: "
                f"{len(fresh)} new finding(s): {listed} (verdict today: "
                f"{report.verdict.value}); fix with a revision of the goal (crew revise)",
            ),
            payload=report,
            dedup=f"findings:{key.id}:{applied.run_id}:{digest}",
        )
    return StackRevalidation(
        stack_id=key.id,
        run_id=applied.run_id,
        report=report,
        new_findings=fresh[:1000],
        announced=announced,
    )


async def revalidate_due_stacks(services: Services) -> list[StackRevalidation]:
    """Re-validate every deployed stack (the nightly job); a busy or failing stack is logged
    and skipped."""
    results: list[StackRevalidation] = []
    for stack in await list_stacks(services):
        if stack.status is not StackStatus.DEPLOYED:
            continue
        try:
            results.append(await revalidate_stack(services, stack.stack_id, trigger="nightly"))
        except StackConflictError as exc:
            logger.info("re-validation of %s skipped: %s", stack.stack_id, exc)
        except ToolError as exc:
            logger.warning("re-validation of %s failed: %s", stack.stack_id, exc)
    return results


async def revalidate_loop(services: Services, stop: asyncio.Event) -> None:
    """Re-validates the deployed stacks every CREW_REVALIDATE_INTERVAL_S until `stop`."""
    interval = timedelta(seconds=services.settings.revalidate_interval_s)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval.total_seconds())
        if stop.is_set():
            return
        try:
            results = await revalidate_due_stacks(services)
            flagged = [r.stack_id for r in results if r.new_findings]
            logger.info("re-validated %d stack(s); new findings: %s", len(results), flagged)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("nightly re-validation failed; will retry", exc_info=True)
