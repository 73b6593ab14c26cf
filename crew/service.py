"""Application operations shared by the REST API and the CLI (same path, same rules)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from crew.container import Services
from graph.state import transition
from memory.runs import RunRecord
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.errors import RunConflictError
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec
from schemas.run import RunArtifacts, RunDetail
from schemas.stack import RunOutcome, RunPurpose
from schemas.states import ConductorState

_ARTIFACT_FIELDS = tuple(RunArtifacts.model_fields)
#: Outcomes of a later revision that leave the stack as this revision applied it.
_UNDONE = {RunOutcome.NOT_APPLIED.value, RunOutcome.ROLLED_BACK.value}


def new_run_id(at: datetime) -> str:
    """Sortable and readable: creation time (UTC) plus 32 random bits."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


async def submit_goal(
    services: Services,
    goal: GoalStatement,
    *,
    actor: str,
    revise: bool = False,
    purpose: RunPurpose = RunPurpose.GOAL,
    seed_plan: PlanSpec | None = None,
) -> tuple[RunRecord, bool]:
    """Create a PENDING run (a worker picks it up), or return the run of an earlier request
    with the same goal. A changed goal with a goal_id seen before (or `revise`) is the next
    revision of that goal's stack (memory/runs.py RunStore.create). `actor` is the
    authenticated submitter (the audit names them; the goal's `requested_by` is recorded as
    a claim)."""
    now = services.context.clock()
    return await services.runs.create(
        goal,
        run_id=new_run_id(now),
        at=now,
        actor=actor,
        revise=revise,
        purpose=purpose,
        seed_plan=seed_plan.model_dump(mode="json") if seed_plan is not None else None,
    )


async def decide(
    services: Services,
    run_id: str,
    decision: Decision,
    *,
    actor: str,
    channel: Channel,
    reason: str | None = None,
    acknowledge_stateful: bool = False,
) -> RunRecord:
    """Record a gate decision once; the worker holding the checkpoint resumes the run."""
    record = ApprovalDecision(
        run_id=run_id,
        decision=decision,
        actor=actor,
        channel=channel,
        reason=reason,
        at=services.context.clock(),
        acknowledge_stateful=acknowledge_stateful,
    )
    return await services.runs.record_decision(record)


async def request_rollback(
    services: Services,
    run_id: str,
    *,
    actor: str,
    channel: Channel,
    reason: str | None = None,
) -> RunRecord:
    """Roll back a DONE run: record the request once, then move the run DONE -> ROLLBACK.

    The transition is written as an update of the `apply` node (graph/graph.py declares it
    there), through the auditing checkpointer like every other step, so the audit row, the
    checkpoint and the run row change together; a worker then drives the `rollback` node,
    which restores the stack to its state before the run's apply (for a first revision:
    destroys what it created).
    """
    record = await services.runs.get(run_id)
    if record.state is not ConductorState.DONE:
        raise RunConflictError(
            run_id, f"run {run_id} is {record.state.value}; only a DONE run can be rolled back"
        )
    config: Any = {"configurable": {"thread_id": run_id}}
    values: dict[str, Any] = dict((await services.graph.aget_state(config)).values or {})
    applied, undone = values.get("apply_result"), values.get("rollback_result")
    if undone is not None and undone.ok:
        raise RunConflictError(
            run_id, f"run {run_id} was already rolled back at {undone.finished_at.isoformat()}"
        )
    if applied is None or not applied.ok:
        raise RunConflictError(run_id, f"run {run_id} applied nothing that could be rolled back")
    newer = await services.runs.newer_revisions(record.goal_id, record.revision)
    standing = [r for r in newer if r.summary.get("outcome") not in _UNDONE]
    if standing:
        raise RunConflictError(
            run_id,
            f"revision {standing[0].revision} of this stack (run {standing[0].run_id}) came "
            f"after revision {record.revision}; only the latest applied revision can be "
            "rolled back (revise the goal instead)",
        )
    request = ApprovalDecision(
        run_id=run_id,
        decision=Decision.ROLLBACK,
        actor=actor,
        channel=channel,
        reason=reason,
        at=services.context.clock(),
    )
    await services.runs.record_rollback_request(request)
    update = {
        "rollback_request": request,
        "conductor_state": ConductorState.ROLLBACK,
        "error": None,
        "transitions": [
            transition(
                values,  # type: ignore[arg-type]
                ConductorState.ROLLBACK,
                event=EventType.ROLLBACK_STARTED,
                actor=actor,
                at=request.at,
                artifact="rollback_request",
                note=reason or f"rollback requested via {channel.value}",
            )
        ],
    }
    try:
        await services.graph.aupdate_state(config, update, as_node="apply")
    except BaseException:
        await services.runs.clear_rollback_request(run_id)
        raise
    return await services.runs.get(run_id)


async def run_detail(services: Services, run_id: str, *, with_audit: bool = True) -> RunDetail:
    record = await services.runs.get(run_id)
    snapshot = await services.graph.aget_state({"configurable": {"thread_id": run_id}})
    values: dict[str, Any] = dict(snapshot.values or {})
    artifacts = RunArtifacts(**{k: values.get(k) for k in _ARTIFACT_FIELDS})
    plan = artifacts.plan
    return RunDetail(
        **record.to_summary().model_dump(),
        goal=record.goal,
        artifacts=artifacts,
        diagram=plan.diagram if plan else None,
        waiting_for_approval=bool(snapshot.interrupts) and record.decision is None,
        error=values.get("error"),
        timings=values.get("timings") or [],
        audit=await services.runs.audit(run_id) if with_audit else [],
    )
