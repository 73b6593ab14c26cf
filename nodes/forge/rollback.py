"""Forge's rollback: bring the stack back to the state before this run's apply.

Used after a failed or timed-out apply (SLA: begin < 5 min and finish < 15 min after the
failure, recorded on the result) and when a human rolls back a DONE run (`crew rollback`).
Breaches are alerted on and counted by the gate job (crew/gate/timers.py), not here: it also
sees a rollback still running, or one whose worker died.

- A revision planned against an applied one (its `base`, another run of the stack) whose
  workspace is kept: re-plan and apply that revision's configuration against the shared state
  (that removes what this one added and reverts what it changed, a replaced database
  included: it comes back empty, from the configuration). The same for revision N-1 kept in
  the run's own directory.
- Otherwise: destroy the resources the state holds now but the pre-apply snapshot did not
  (all of them for a first revision), then check the state holds exactly the snapshot's.

Either way it first waits for a terraform that a crashed worker left running in the workspace
(TerraformRunner.wait_for_orphans): until that apply has written the state, the state does not
show what it created.

The post-failure state is kept beside the snapshot for whoever investigates. A rollback that
fails ends FAILED with `page_human` set: a person must look at the stack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from langgraph.runtime import Runtime

from graph.context import CrewContext
from graph.state import RunState, transition
from nodes.forge.common import (
    ACTOR,
    POST_FAILURE_SNAPSHOT,
    PRE_APPLY_SNAPSHOT,
    ROLLBACK_BEGIN_SLA_S,
    ROLLBACK_FINISH_SLA_S,
    describe,
    revision_dir,
    seconds,
    stack_lock,
    state_backend,
)
from nodes.progress import progress_reporter, resource_reporter
from nodes.timing import StepTimer, timed
from schemas.apply import ApplyResult, Operation, ResourceCounts
from schemas.build import Diagnostic
from schemas.errors import CrewError
from schemas.events import EventType
from schemas.plan import PlanSpec
from schemas.stack import RevisionBase
from schemas.states import ConductorState
from tools.stack import StackKey
from tools.terraform import Progress, ResourceProgress, managed_addresses
from tools.workspace import load_snapshot, save_snapshot

ROLLBACK_PLAN = "rollback.tfplan"


@dataclass
class Restore:
    ok: bool = True
    restored: str = "nothing to undo"
    error: str | None = None
    counts: ResourceCounts = field(default_factory=ResourceCounts)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    duration_s: float = 0.0
    remaining: list[str] | None = None
    """When it failed: what the apply added that the state still holds (None: unknown)."""


async def restore_previous_state(
    ctx: CrewContext,
    plan: PlanSpec,
    workspace: Path,
    progress: Progress | None = None,
    *,
    timer: StepTimer | None = None,
    resources: ResourceProgress | None = None,
    base: RevisionBase | None = None,
) -> Restore:
    """Undo the last apply of `workspace`'s revision (see the module docstring); `timer`
    records each terraform command as a part, `resources` is told their progress. `base` is
    the applied revision the run planned against (another run of the stack): its
    configuration is applied again."""
    terraform = ctx.terraform
    pre = load_snapshot(workspace, PRE_APPLY_SNAPSHOT)
    if pre is None:
        return Restore(restored="nothing to undo: the apply never started")
    # An apply orphaned by a crash may still be creating resources; read the state after it.
    with timed(timer, "wait for orphaned terraform"):
        await terraform.wait_for_orphans(workspace, progress)
    with timed(timer, "terraform state pull"):
        post = await terraform.state_pull(workspace)
    save_snapshot(workspace, POST_FAILURE_SNAPSHOT, post)
    before, now = managed_addresses(pre), managed_addresses(post)
    if base is not None:
        previous = revision_dir(ctx.config.workspaces_dir, base.run_id, base.revision)
        label = f"revision {base.revision}"
    else:  # an earlier revision kept in this run's own directory
        previous = revision_dir(ctx.config.workspaces_dir, workspace.parent.name, plan.revision - 1)
        label = f"revision {plan.revision - 1}"
    if (base is not None or plan.revision > 1) and (previous / "main.tf").is_file():
        restore = await _reapply(ctx, plan, previous, label, progress, timer, resources)
        if not restore.ok:
            restore.remaining = await _left_over(ctx, workspace, before)
        return restore
    created = sorted(now - before)
    if not created:
        return Restore(restored="nothing to undo: the apply created nothing")
    if progress:
        progress(f"terraform destroy of {len(created)} resources this apply created")
    with timed(timer, "terraform destroy"):
        outcome = await terraform.destroy(
            workspace, progress, targets=created if before else (), resources=resources
        )
    result = Restore(
        ok=outcome.ok,
        restored="empty stack" if not before else "the state before the apply",
        counts=ResourceCounts(destroyed=outcome.destroyed),
        diagnostics=outcome.errors,
        duration_s=outcome.duration_s,
    )
    if not outcome.ok:
        result.error = describe(outcome.errors, "terraform destroy failed")
        result.remaining = await _left_over(ctx, workspace, before)
        return result
    with timed(timer, "terraform state pull (check)"):
        left = managed_addresses(await terraform.state_pull(workspace))
    leftover = sorted(left - before)
    if leftover:
        result.ok = False
        result.remaining = leftover
        result.error = "still in the state after the rollback: " + ", ".join(leftover[:20])
    return result


async def _left_over(ctx: CrewContext, workspace: Path, before: set[str]) -> list[str] | None:
    """What the state holds now that it did not before the apply: what a human must clean
    up after a failed rollback (None when the state cannot be read either)."""
    try:
        return sorted(managed_addresses(await ctx.terraform.state_pull(workspace)) - before)[:1000]
    except CrewError:
        return None


async def _reapply(
    ctx: CrewContext,
    plan: PlanSpec,
    previous: Path,
    label: str,
    report: Progress | None,
    timer: StepTimer | None,
    resources: ResourceProgress | None,
) -> Restore:
    terraform = ctx.terraform
    with timed(timer, "terraform init (previous revision)"):
        init = await terraform.init(
            previous, report, backend_config=state_backend(ctx).init_config(StackKey.of(plan))
        )
    if not init.ok:
        return Restore(ok=False, error=describe(init.errors, "init of the previous revision"))
    with timed(timer, "terraform plan (previous revision)"):
        planned = await terraform.plan(previous, ROLLBACK_PLAN, report, resources=resources)
    if not planned.ok:
        return Restore(ok=False, error=describe(planned.errors, "plan of the previous revision"))
    with timed(timer, "terraform apply (previous revision)"):
        outcome = await terraform.apply(previous, ROLLBACK_PLAN, report, resources=resources)
    return Restore(
        ok=outcome.ok,
        restored=label,
        error=None if outcome.ok else describe(outcome.errors, "apply of the previous revision"),
        counts=ResourceCounts(
            added=outcome.added, changed=outcome.changed, destroyed=outcome.destroyed
        ),
        diagnostics=outcome.errors,
        duration_s=outcome.duration_s,
    )


async def rollback(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """ROLLBACK -> DONE when the stack is back where it was, else -> FAILED (page a human)."""
    ctx = runtime.context
    plan, build_status = state["plan"], state["build"]
    assert plan is not None
    assert build_status is not None
    run_id = state["run_id"]
    report = progress_reporter("rollback", run_id)
    timer = StepTimer("rollback", ctx.clock)
    workspace = Path(build_status.workspace)
    applied = state.get("apply_result")
    failure_at = applied.failure_at if applied is not None and not applied.ok else None

    waited = time.monotonic()
    async with stack_lock(ctx, StackKey.of(plan), run_id, "rollback"):
        timer.add("stack lock", waited, time.monotonic() - waited)
        started_at = ctx.clock()
        try:
            restore = await restore_previous_state(
                ctx,
                plan,
                workspace,
                report,
                timer=timer,
                resources=resource_reporter("rollback", run_id),
                base=state.get("base"),
            )
        except CrewError as exc:
            restore = Restore(ok=False, error=f"{type(exc).__name__}: {exc}")
    finished_at = ctx.clock()

    sla_met: bool | None = None
    sla_note = ""
    if failure_at is not None:
        began, done = seconds(failure_at, started_at), seconds(failure_at, finished_at)
        sla_met = began <= ROLLBACK_BEGIN_SLA_S and done <= ROLLBACK_FINISH_SLA_S
        sla_note = f"rollback began {began:.0f}s and finished {done:.0f}s after the failure" + (
            "" if sla_met else " (SLA: < 300s and < 900s): MISSED"
        )
    result = ApplyResult(
        run_id=run_id,
        plan_id=plan.plan_id,
        operation=Operation.ROLLBACK,
        ok=restore.ok,
        resources=restore.counts,
        started_at=started_at,
        finished_at=finished_at,
        duration_s=round(restore.duration_s, 3),
        error=restore.error,
        diagnostics=restore.diagnostics,
        state_snapshot=applied.state_snapshot if applied else None,
        failure_at=failure_at,
        rollback_started_at=started_at,
        rollback_finished_at=finished_at,
        sla_met=sla_met,
        restored=restore.restored if restore.ok else None,
        page_human=not restore.ok,
        remaining=None if restore.ok else restore.remaining,
    )
    if result.ok:
        return {
            "rollback_result": result,
            "timings": [timer.done()],
            "conductor_state": ConductorState.DONE,
            "transitions": [
                transition(
                    state,
                    ConductorState.DONE,
                    event=EventType.ROLLBACK_DONE,
                    actor=ACTOR,
                    at=finished_at,
                    artifact="rollback_result",
                    note="; ".join(filter(None, [f"restored {restore.restored}", sla_note])),
                )
            ],
        }
    note = f"page a human: {restore.error}" + (f"; {sla_note}" if sla_note else "")
    return {
        "rollback_result": result,
        "timings": [timer.done()],
        "conductor_state": ConductorState.FAILED,
        "error": f"rollback failed, page a human: {restore.error}",
        "transitions": [
            transition(
                state,
                ConductorState.FAILED,
                event=EventType.ROLLBACK_FAILED,
                actor=ACTOR,
                at=finished_at,
                artifact="rollback_result",
                note=note,
            )
        ],
    }
