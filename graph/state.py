"""The run state of the Conductor graph, and how a checkpoint projects onto runs and audit.

Every field is an artifact (schemas/) or a plain value. Nodes return partial updates; the only
reducers are explicit: `transitions` appends, `attempts` merges counters. Everything else is
last-write-wins.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from pydantic import TypeAdapter

# pydantic (Python < 3.12) validates and describes only typing_extensions' TypedDict: the
# LangGraph API server shows RunState's JSON schema as the input form of LangGraph Studio.
from typing_extensions import TypedDict

from memory.runs import Projection, RunRecord
from schemas.apply import ApplyResult
from schemas.approval import ApprovalDecision, ApprovalRequest
from schemas.audit import AuditRecord, Transition
from schemas.base import Artifact
from schemas.build import BuildStatus
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.plan import DesignBlocked, PlanSpec
from schemas.stack import RevisionBase, RunOutcome, RunPurpose
from schemas.states import ConductorState
from schemas.timing import StepTiming
from schemas.validation import ValidationReport
from sentinel.forecast import forecast_summary
from tools.stack import StackKey


def merge_counts(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    """Attempt counters: a node reports its own counter; others are kept."""
    return {**(left or {}), **(right or {})}


class RunState(TypedDict, total=False):
    """One run of the Conductor. `run_id` is also the LangGraph thread id."""

    run_id: str
    goal_id: str
    revision: int
    """The stack revision this run is (1: the goal's first run)."""
    base: RevisionBase | None
    """The applied revision it plans against: what a failed apply restores."""
    purpose: RunPurpose
    seed_plan: PlanSpec | None
    """A reconcile's declared configuration: design adopts it instead of designing again."""
    goal: GoalStatement
    started_at: datetime
    conductor_state: ConductorState
    """Where the run is now (docs/architecture.md, The run)."""
    transitions: Annotated[list[Transition], operator.add]
    """Every state change so far, in order; each becomes one audit row."""
    attempts: Annotated[dict[str, int], merge_counts]
    """How many times each step ran (design retries, build attempts, ...)."""
    timings: Annotated[list[StepTiming], operator.add]
    """How long each node took and the parts inside it, in the order they ran."""
    plan: PlanSpec | None
    design_blocked: DesignBlocked | None
    build: BuildStatus | None
    validation: ValidationReport | None
    approval_request: ApprovalRequest | None
    decision: ApprovalDecision | None
    apply_result: ApplyResult | None
    rollback_result: ApplyResult | None
    rollback_request: ApprovalDecision | None
    """A human's request to roll back a DONE run (decision `rollback`), if any."""
    error: str | None
    """Why the run stopped, for a human, when it ended anywhere but DONE."""


def initial_state(
    run_id: str,
    goal_id: str,
    goal: GoalStatement,
    at: datetime,
    *,
    revision: int = 1,
    base: RevisionBase | None = None,
    purpose: RunPurpose = RunPurpose.GOAL,
    seed_plan: PlanSpec | None = None,
) -> RunState:
    state: RunState = {
        "run_id": run_id,
        "goal_id": goal_id,
        "revision": revision,
        "goal": goal,
        "started_at": at,
        "conductor_state": ConductorState.PENDING,
        "transitions": [],
        "attempts": {},
    }
    if base is not None:
        state["base"] = base
    if purpose is not RunPurpose.GOAL:
        state["purpose"] = purpose
    if seed_plan is not None:
        state["seed_plan"] = seed_plan
    return state


def start_of(record: RunRecord) -> RunState:
    """The first state of a run as its row describes it (revision, base, reconcile seed)."""
    return initial_state(
        record.run_id,
        record.goal_id,
        record.goal,
        record.created_at,
        revision=record.revision,
        base=record.base,
        purpose=record.purpose,
        seed_plan=PlanSpec.model_validate(record.seed_plan) if record.seed_plan else None,
    )


@cache
def _state_adapter() -> TypeAdapter[RunState]:
    return TypeAdapter(RunState)


def coerce_state(values: Mapping[str, Any]) -> RunState:
    """The state with every field as its type: JSON values (a run started through the
    LangGraph API server, graph/studio.py) become artifacts, enums and datetimes; typed
    values pass unchanged."""
    return _state_adapter().validate_python(values)


def transition(
    state: RunState,
    to: ConductorState,
    *,
    event: EventType,
    actor: str,
    at: datetime,
    artifact: str | None = None,
    note: str | None = None,
    offset: int = 0,
) -> Transition:
    """The next transition of this run. `offset` numbers a second transition made by the
    same node update (e.g. APPLYING -> ROLLBACK right after VALIDATING -> ...)."""
    previous = state.get("transitions") or []
    from_state = state.get("conductor_state")
    return Transition(
        seq=len(previous) + 1 + offset,
        at=at,
        actor=actor,
        event=event,
        from_state=from_state,
        to_state=to,
        artifact=artifact,
        note=note,
    )


def summarize(values: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers a run list shows, derived from the state."""
    summary: dict[str, Any] = {}
    goal = values.get("goal")
    if isinstance(goal, GoalStatement):
        summary["budget_monthly_usd"] = goal.budget.monthly_usd
        summary["region"] = goal.region
        summary["environment"] = goal.environment.value
    plan = values.get("plan")
    if isinstance(plan, PlanSpec):
        summary["plan_id"] = plan.plan_id
        summary["components"] = len(plan.components)
        summary["stack_id"] = StackKey.of(plan).id
    build = values.get("build")
    if isinstance(build, BuildStatus):
        summary["plan_changes"] = {
            "create": build.plan.create,
            "update": build.plan.update,
            "delete": build.plan.delete,
        }
    validation = values.get("validation")
    if isinstance(validation, ValidationReport):
        summary["verdict"] = validation.verdict.value
    summary.update(
        forecast_summary(
            plan if isinstance(plan, PlanSpec) else None,
            validation if isinstance(validation, ValidationReport) else None,
        )
    )
    if values.get("error"):
        summary["error"] = values["error"]
    if "conductor_state" in values:
        summary["outcome"] = run_outcome(values).value
    return summary


def run_outcome(values: Mapping[str, Any]) -> RunOutcome:
    """What the run did to the cloud, from its apply and rollback results and its state."""
    state = ConductorState(values.get("conductor_state", ConductorState.PENDING))
    applied, undone = values.get("apply_result"), values.get("rollback_result")
    if isinstance(undone, ApplyResult) and state is not ConductorState.ROLLBACK:
        return RunOutcome.ROLLED_BACK if undone.ok else RunOutcome.ROLLBACK_FAILED
    if isinstance(applied, ApplyResult) and state is not ConductorState.ROLLBACK:
        if applied.ok:
            if values.get("purpose") == RunPurpose.DECOMMISSION:
                return RunOutcome.DESTROYED
            return RunOutcome.APPLIED
        if state is ConductorState.FAILED:
            return RunOutcome.ROLLBACK_FAILED
        return RunOutcome.APPLY_FAILED
    if state.is_terminal:
        return RunOutcome.NOT_APPLIED
    return RunOutcome.IN_PROGRESS


def project_run(thread_id: str, values: Mapping[str, Any]) -> Projection | None:
    """The run row and audit rows a checkpoint implies (see memory/checkpointer.py)."""
    if "run_id" not in values:
        return None
    transitions: list[Transition] = list(values.get("transitions") or [])

    def records_after(seq: int) -> list[AuditRecord]:
        return [_audit_record(thread_id, t, values) for t in transitions if t.seq > seq]

    return Projection(
        # A StrEnum is a str, so the saver stores it inline in the checkpoint's JSON and it
        # comes back as a plain str when a checkpoint is written from loaded values
        # (update_state, a replay): coerce it.
        state=ConductorState(values.get("conductor_state", ConductorState.PENDING)),
        last_seq=transitions[-1].seq if transitions else 0,
        summary=summarize(values),
        records_after=records_after,
    )


def _audit_record(run_id: str, t: Transition, values: Mapping[str, Any]) -> AuditRecord:
    payload = values.get(t.artifact) if t.artifact else None
    artifact = payload if isinstance(payload, Artifact) else None
    return AuditRecord(
        run_id=run_id,
        seq=t.seq,
        at=t.at,
        actor=t.actor,
        event=t.event,
        from_state=t.from_state,
        to_state=t.to_state,
        artifact_type=artifact.artifact_name if artifact else None,
        artifact=artifact.model_dump(mode="json") if artifact else None,
        note=t.note,
    )
