"""Forge: PlanSpec -> Terraform workspace -> init/validate/plan; apply; rollback.

The apply node runs exactly the plan file Sentinel validated (its digest is checked) and
records that it started before terraform runs, so a crash mid-apply never leads to a second
apply: the resumed run rolls back instead.

INTERIM rollback (foundation): destroys what this run's workspace created, which restores the
previous state for a first revision. Forge v0 adds state snapshots and re-applying the last
good revision.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from langgraph.runtime import Runtime

from crew.errors import CrewError
from graph.context import CrewContext
from graph.state import RunState, transition
from nodes.progress import progress_reporter
from schemas.apply import ApplyResult, Operation, ResourceCounts
from schemas.build import (
    BuildStatus,
    Diagnostic,
    DiagnosticSeverity,
    PlanChangeSummary,
    ResourceChange,
)
from schemas.events import EventType
from schemas.states import ConductorState
from tools.terraform import ApplyOutcome
from tools.workspace import (
    PLAN_FILE,
    UnsupportedComponentError,
    file_digest,
    save_plan_json,
    write_workspace,
)

ACTOR = "forge"


def _error(summary: str, detail: str = "") -> Diagnostic:
    return Diagnostic(severity=DiagnosticSeverity.ERROR, summary=summary, detail=detail)


def summarize_plan(plan_json: dict[str, object]) -> PlanChangeSummary:
    """Counts of what the plan will do, from `terraform show -json`."""
    counts = {"create": 0, "update": 0, "delete": 0, "replace": 0}
    changes = []
    for rc in plan_json.get("resource_changes") or []:  # type: ignore[attr-defined]
        actions = list((rc.get("change") or {}).get("actions") or [])
        if actions == ["no-op"] or actions == ["read"]:
            continue
        if "create" in actions and "delete" in actions:
            counts["replace"] += 1
        elif "create" in actions:
            counts["create"] += 1
        elif "update" in actions:
            counts["update"] += 1
        elif "delete" in actions:
            counts["delete"] += 1
        changes.append(ResourceChange(address=rc["address"], type=rc["type"], actions=actions))
    return PlanChangeSummary(**counts, resource_changes=changes)


def workspace_dir(ctx: CrewContext, state: RunState) -> Path:
    return ctx.settings.workspaces_dir / state["run_id"] / f"r{state.get('revision', 1)}"


async def build(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """IN_PROGRESS -> VALIDATING with a plan file, or -> BLOCKED with Terraform's errors."""
    ctx = runtime.context
    plan = state["plan"]
    assert plan is not None, "build runs only after design produced a PlanSpec"
    report = progress_reporter("build", state["run_id"])
    attempts = state.get("attempts", {}).get("build", 0) + 1
    workspace = workspace_dir(ctx, state)
    started = time.monotonic()
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    summary = PlanChangeSummary()
    digest: str | None = None
    version: str | None = None
    try:
        report(f"rendering workspace {workspace}")
        write_workspace(plan, workspace)
        version = await ctx.terraform.version()
        report("terraform init")
        init = await ctx.terraform.init(workspace, report)
        warnings += init.warnings
        if not init.ok:
            errors += init.errors or [_error("terraform init failed")]
        else:
            checked = await ctx.terraform.validate(workspace)
            warnings += checked.warnings
            if not checked.ok:
                errors += checked.errors or [_error("terraform validate failed")]
        if not errors:
            report("terraform plan")
            outcome = await ctx.terraform.plan(workspace, PLAN_FILE, report)
            warnings += outcome.warnings
            if outcome.ok:
                plan_json = await ctx.terraform.show_plan(workspace, PLAN_FILE)
                save_plan_json(workspace, plan_json)
                summary = summarize_plan(plan_json)
                digest = file_digest(workspace / PLAN_FILE)
            else:
                errors += outcome.errors or [_error("terraform plan failed")]
    except UnsupportedComponentError as exc:
        errors.append(_error("cannot render the plan", str(exc)))
    except CrewError as exc:
        errors.append(_error(type(exc).__name__, str(exc)))

    status = BuildStatus(
        plan_id=plan.plan_id,
        ok=not errors,
        workspace=str(workspace),
        terraform_version=version,
        plan=summary,
        plan_file=PLAN_FILE if not errors else None,
        plan_file_digest=digest if not errors else None,
        errors=errors,
        warnings=warnings,
        duration_s=round(time.monotonic() - started, 3),
    )
    now = ctx.clock()
    if status.ok:
        counts = (summary.create, summary.update, summary.delete)
        report("plan: {} to add, {} to change, {} to destroy".format(*counts))
        return {
            "build": status,
            "attempts": {"build": attempts},
            "conductor_state": ConductorState.VALIDATING,
            "transitions": [
                transition(
                    state,
                    ConductorState.VALIDATING,
                    event=EventType.VALIDATE_PENDING,
                    actor=ACTOR,
                    at=now,
                    artifact="build",
                )
            ],
        }
    message = _describe(errors, "build failed")
    return {
        "build": status,
        "attempts": {"build": attempts},
        "conductor_state": ConductorState.BLOCKED,
        "error": f"build failed: {message}",
        "transitions": [
            transition(
                state,
                ConductorState.BLOCKED,
                event=EventType.BUILD_FAILED,
                actor=ACTOR,
                at=now,
                artifact="build",
                note=message,
            )
        ],
    }


def _apply_result(
    state: RunState,
    operation: Operation,
    outcome: ApplyOutcome | None,
    started_at: datetime,
    finished_at: datetime,
    error: str | None,
) -> ApplyResult:
    plan = state.get("plan")
    assert plan is not None
    return ApplyResult(
        run_id=state["run_id"],
        plan_id=plan.plan_id,
        operation=operation,
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
    )


def _describe(diagnostics: list[Diagnostic], fallback: str) -> str:
    text = "; ".join(f"{d.summary}: {d.detail}".strip(": ") for d in diagnostics)
    return text[:2000] or fallback


async def apply(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """APPLYING -> DONE, or -> ROLLBACK when terraform fails, times out, or cannot be trusted."""
    ctx = runtime.context
    build_status = state["build"]
    assert build_status is not None
    assert build_status.plan_file is not None
    report = progress_reporter("apply", state["run_id"])
    workspace = Path(build_status.workspace)
    started_at = ctx.clock()
    outcome: ApplyOutcome | None = None
    error: str | None = None

    if not await ctx.ledger.mark_apply_started(state["run_id"], started_at):
        error = (
            "an earlier apply of this run was interrupted (worker stopped); it is never run "
            "twice, so the run rolls back what that attempt may have created"
        )
    elif file_digest(workspace / build_status.plan_file) != build_status.plan_file_digest:
        error = "the plan file changed after validation; refusing to apply it"
    else:
        report("terraform apply")
        try:
            outcome = await ctx.terraform.apply(workspace, build_status.plan_file, report)
            if not outcome.ok:
                error = _describe(outcome.errors, "terraform apply failed")
            else:
                outcome = ApplyOutcome(
                    ok=True,
                    diagnostics=outcome.diagnostics,
                    duration_s=outcome.duration_s,
                    added=outcome.added,
                    changed=outcome.changed,
                    destroyed=outcome.destroyed,
                    outputs=outcome.outputs or await ctx.terraform.outputs(workspace),
                )
        except CrewError as exc:
            error = f"{type(exc).__name__}: {exc}"

    now = ctx.clock()
    result = _apply_result(state, Operation.APPLY, outcome, started_at, now, error)
    if result.ok:
        return {
            "apply_result": result,
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


async def rollback(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """ROLLBACK -> DONE when the workspace's resources are destroyed, else -> FAILED."""
    ctx = runtime.context
    build_status = state["build"]
    assert build_status is not None
    report = progress_reporter("rollback", state["run_id"])
    workspace = Path(build_status.workspace)
    started_at = ctx.clock()
    outcome: ApplyOutcome | None = None
    error: str | None = None
    report("terraform destroy (rolling back this run's resources)")
    try:
        outcome = await ctx.terraform.destroy(workspace, report)
        if not outcome.ok:
            error = _describe(outcome.errors, "terraform destroy failed")
    except CrewError as exc:
        error = f"{type(exc).__name__}: {exc}"
    now = ctx.clock()
    result = _apply_result(state, Operation.ROLLBACK, outcome, started_at, now, error)
    if result.ok:
        return {
            "rollback_result": result,
            "conductor_state": ConductorState.DONE,
            "transitions": [
                transition(
                    state,
                    ConductorState.DONE,
                    event=EventType.ROLLBACK_DONE,
                    actor=ACTOR,
                    at=now,
                    artifact="rollback_result",
                )
            ],
        }
    return {
        "rollback_result": result,
        "conductor_state": ConductorState.FAILED,
        "error": f"rollback failed, page a human: {error}",
        "transitions": [
            transition(
                state,
                ConductorState.FAILED,
                event=EventType.ROLLBACK_FAILED,
                actor=ACTOR,
                at=now,
                artifact="rollback_result",
                note=error,
            )
        ],
    }
