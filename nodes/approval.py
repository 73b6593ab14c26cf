"""The human gate. `request_approval` announces it; `await_approval` only interrupts.

LangGraph re-runs an interrupted node from its top on resume, so the gate node has no side
effects: anything that notifies humans happens in `request_approval`, which runs once.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graph.context import CrewContext
from graph.state import RunState, transition
from nodes.timing import StepTimer
from schemas.approval import ApprovalDecision, ApprovalRequest, Decision
from schemas.events import EventType
from schemas.states import ConductorState
from sentinel.stateful import describe_stateful, stateful_changes

ACTOR = "conductor"


async def request_approval(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """READY_FOR_APPLY -> WAIT_FOR_APPROVE with what a human needs to decide."""
    timer = StepTimer("request_approval", runtime.context.clock)
    plan, build, validation = state["plan"], state["build"], state["validation"]
    assert plan is not None
    assert build is not None
    assert validation is not None
    assert build.plan_file_digest is not None
    flagged = stateful_changes(build.plan.resource_changes)
    request = ApprovalRequest(
        run_id=state["run_id"],
        plan_id=plan.plan_id,
        plan_file_digest=build.plan_file_digest,
        summary=plan.summary,
        # Sentinel's forecast prices the real plan (stack overhead included), not the design
        forecast_monthly_usd=validation.cost.monthly_usd,
        budget_monthly_usd=plan.budget.cap_monthly_usd,
        create=build.plan.create,
        update=build.plan.update,
        delete=build.plan.delete,
        replace=build.plan.replace,
        top_findings=[
            f"{f.severity.value} {f.rule_id}: {f.message}" for f in validation.findings[:5]
        ],
        revision=state.get("revision", plan.revision),
        changes=build.plan.resource_changes[:500],
        stateful_changes=flagged[:500],
        acknowledgement_required=bool(flagged),
    )
    return {
        "approval_request": request,
        "timings": [timer.done()],
        "conductor_state": ConductorState.WAIT_FOR_APPROVE,
        "transitions": [
            transition(
                state,
                ConductorState.WAIT_FOR_APPROVE,
                event=EventType.APPROVAL_REQUESTED,
                actor=ACTOR,
                at=timer.started_at,
                artifact="approval_request",
                note=(
                    f"acknowledgement required: {describe_stateful(flagged)}"[:2000]
                    if flagged
                    else None
                ),
            )
        ],
    }


async def await_approval(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """WAIT_FOR_APPROVE -> APPLYING on approve, -> REJECTED otherwise (reject, or a cancel:
    crew/lifecycle.py)."""
    request = state["approval_request"]
    assert request is not None
    raw: Any = interrupt(request.model_dump(mode="json"))
    decision = ApprovalDecision.model_validate(raw)
    approved = decision.decision is Decision.APPROVE
    cancelled = decision.decision is Decision.CANCEL
    to = ConductorState.APPLYING if approved else ConductorState.REJECTED
    event = (
        EventType.APPLY_REQUEST
        if approved
        else EventType.RUN_CANCELLED
        if cancelled
        else EventType.RUN_REJECTED
    )
    why = f": {decision.reason}" if decision.reason else ""
    # A cancel reads the same wherever it stopped the run (crew/lifecycle.py cancel_note).
    error = (
        f"cancelled by {decision.actor} via {decision.channel.value}{why}"
        if cancelled
        else f"{decision.decision.value} by {decision.actor}{why}"
    )
    update: RunState = {
        "decision": decision,
        "conductor_state": to,
        "transitions": [
            transition(
                state,
                to,
                event=event,
                actor=decision.actor,
                at=decision.at,
                artifact="decision",
                note=error if cancelled else decision.reason,
            )
        ],
    }
    if not approved:
        update["error"] = error
    return update
