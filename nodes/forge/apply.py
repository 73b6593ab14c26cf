"""Forge's apply: exactly the validated plan file, once, under the stack lock.

Before terraform runs, the node (1) checks the plan file's digest against the BuildStatus,
(2) pulls the stack's state into `snapshots/pre-apply.tfstate` (kept if an earlier attempt
wrote it: that one shows the state before anything was applied), and (3) records in Postgres
that the apply started. A crash after (3) never leads to a second apply: the resumed run
rolls back to the snapshot instead. A failure or a timeout records `failure_at`, from which
the rollback SLA is measured.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from langgraph.runtime import Runtime

from graph.context import CrewContext
from graph.state import RunState, transition
from nodes.forge.common import (
    ACTOR,
    PRE_APPLY_SNAPSHOT,
    describe,
    stack_lock,
)
from nodes.progress import progress_reporter, resource_reporter
from nodes.timing import StepTimer
from schemas.apply import ApplyResult, Operation, ResourceCounts
from schemas.errors import CrewError
from schemas.events import EventType
from schemas.states import ConductorState
from tools.stack import StackKey
from tools.terraform import ApplyOutcome
from tools.workspace import SNAPSHOT_DIR, file_digest, save_snapshot

INTERRUPTED = (
    "an earlier apply of this run was interrupted (worker stopped); it is never run twice, so "
    "the run rolls back what that attempt may have created"
)
TAMPERED = "the plan file changed after validation; refusing to apply it"


async def apply(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """APPLYING -> DONE, or -> ROLLBACK when terraform fails, times out, or cannot be trusted."""
    ctx = runtime.context
    plan, build_status = state["plan"], state["build"]
    assert plan is not None
    assert build_status is not None
    assert build_status.plan_file is not None
    run_id = state["run_id"]
    report = progress_reporter("apply", run_id)
    timer = StepTimer("apply", ctx.clock)
    workspace = Path(build_status.workspace)
    outcome: ApplyOutcome | None = None
    error: str | None = None
    snapshot: Path | None = None

    waited = time.monotonic()
    async with stack_lock(ctx, StackKey.of(plan), run_id, "apply"):
        timer.add("stack lock", waited, time.monotonic() - waited)
        started_at = ctx.clock()
        if file_digest(workspace / build_status.plan_file) != build_status.plan_file_digest:
            error = TAMPERED
        else:
            snapshot = workspace / SNAPSHOT_DIR / PRE_APPLY_SNAPSHOT
            if not snapshot.is_file():
                report("terraform state pull (snapshot before apply)")
                with timer.part("terraform state pull"):
                    pulled = await ctx.terraform.state_pull(workspace)
                save_snapshot(workspace, PRE_APPLY_SNAPSHOT, pulled)
            if not await ctx.ledger.mark_apply_started(run_id, started_at):
                error = INTERRUPTED
            else:
                report("terraform apply")
                try:
                    with timer.part("terraform apply"):
                        outcome = await ctx.terraform.apply(
                            workspace,
                            build_status.plan_file,
                            report,
                            resources=resource_reporter("apply", run_id),
                        )
                    if not outcome.ok:
                        error = describe(outcome.errors, "terraform apply failed")
                    elif not outcome.outputs:
                        with timer.part("terraform output"):
                            outputs = await ctx.terraform.outputs(workspace)
                        outcome = ApplyOutcome(
                            ok=True,
                            diagnostics=outcome.diagnostics,
                            duration_s=outcome.duration_s,
                            added=outcome.added,
                            changed=outcome.changed,
                            destroyed=outcome.destroyed,
                            outputs=outputs,
                        )
                except CrewError as exc:
                    error = f"{type(exc).__name__}: {exc}"

    now = ctx.clock()
    result = _result(state, outcome, started_at, now, error, snapshot)
    if result.ok:
        return {
            "apply_result": result,
            "timings": [timer.done()],
            "conductor_state": ConductorState.DONE,
            "transitions": [
                transition(
                    state,
                    ConductorState.DONE,
                    event=EventType.APPLY_DONE,
                    actor=ACTOR,
                    at=now,
                    artifact="apply_result",
                )
            ],
        }
    return {
        "apply_result": result,
        "timings": [timer.done()],
        "conductor_state": ConductorState.ROLLBACK,
        "error": f"apply failed: {error}",
        "transitions": [
            transition(
                state,
                ConductorState.ROLLBACK,
                event=EventType.ROLLBACK_STARTED,
                actor=ACTOR,
                at=now,
                artifact="apply_result",
                note=error,
            )
        ],
    }


def _result(
    state: RunState,
    outcome: ApplyOutcome | None,
    started_at: datetime,
    finished_at: datetime,
    error: str | None,
    snapshot: Path | None,
) -> ApplyResult:
    plan = state.get("plan")
    assert plan is not None
    return ApplyResult(
        run_id=state["run_id"],
        plan_id=plan.plan_id,
        operation=Operation.APPLY,
        ok=error is None and outcome is not None and outcome.ok,
        outputs=outcome.outputs if outcome else {},
        resources=ResourceCounts(
            added=outcome.added if outcome else 0,
            changed=outcome.changed if outcome else 0,
            destroyed=outcome.destroyed if outcome else 0,
        ),
        started_at=started_at,
        finished_at=finished_at,
        duration_s=round(outcome.duration_s, 3) if outcome else 0.0,
        error=error,
        diagnostics=outcome.errors if outcome else [],
        state_snapshot=str(snapshot) if snapshot and snapshot.is_file() else None,
        failure_at=finished_at if error is not None else None,
    )
