"""Audit queries: the filter, a page of audit rows, and the rows of the canned reports.

API views (like `schemas/run.py`), not versioned artifacts: what `GET /v1/audit`, its reports
and `crew audit` return. Parsing text into an `AuditFilter` (relative times, field names in
messages) is `crew/audit.py`'s job; these models only validate.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, Field, model_validator

from schemas.audit import AuditRecord
from schemas.base import Contract
from schemas.events import EventType
from schemas.states import ConductorState

#: Events that are state transitions, i.e. the only ones an audit row can carry. The others
#: (heartbeats, gate alerts, `run.ready`) travel on the bus and in the gate log.
AUDIT_EVENTS: tuple[EventType, ...] = (
    EventType.RUN_CREATED,
    EventType.DESIGN_STARTED,
    EventType.PLAN_PENDING,
    EventType.DESIGN_BLOCKED,
    EventType.VALIDATE_PENDING,
    EventType.BUILD_FAILED,
    EventType.VALIDATE_RESULT,
    EventType.APPROVAL_REQUESTED,
    EventType.APPLY_REQUEST,
    EventType.RUN_REJECTED,
    EventType.APPLY_DONE,
    EventType.ROLLBACK_STARTED,
    EventType.ROLLBACK_DONE,
    EventType.ROLLBACK_FAILED,
    EventType.RUN_CANCELLED,
    EventType.RUN_GAVE_UP,
)


class AuditOrder(StrEnum):
    """Oldest first (`asc`, the default) or newest first (`desc`)."""

    ASC = "asc"
    DESC = "desc"


class AuditFilter(Contract):
    """Which audit rows: every given condition must hold; a list matches any of its values."""

    run_id: str | None = Field(default=None, min_length=1, max_length=200)
    actor: str | None = Field(
        default=None, min_length=1, max_length=200, description="Exactly as recorded."
    )
    events: tuple[EventType, ...] = ()
    states: tuple[ConductorState, ...] = Field(
        default=(), description="Rows that moved a run INTO one of these states (to_state)."
    )
    from_states: tuple[ConductorState, ...] = Field(
        default=(), description="Rows that moved a run OUT of one of these states."
    )
    since: AwareDatetime | None = Field(default=None, description="`at` >= since (inclusive).")
    until: AwareDatetime | None = Field(default=None, description="`at` < until (exclusive).")
    order: AuditOrder = AuditOrder.ASC

    @model_validator(mode="after")
    def _consistent(self) -> AuditFilter:
        for event in self.events:
            if event not in AUDIT_EVENTS:
                raise ValueError(f"'{event.value}' is not an audit event")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self


class AuditPage(Contract):
    """One page, oldest first (or newest first with order=desc). `next_cursor` is None on the
    last page; pass it back (with the same filters) for the next one."""

    items: list[AuditRecord]
    next_cursor: str | None = None


class ReportName(StrEnum):
    APPROVALS_BY_APPROVER = "approvals-by-approver"
    RUNS_BY_STATE = "runs-by-state"
    ROLLBACKS = "rollbacks"
    COST_VS_BUDGET = "cost-vs-budget"


#: The AuditFilter fields each report honours.
REPORT_FILTERS: dict[ReportName, frozenset[str]] = {
    ReportName.APPROVALS_BY_APPROVER: frozenset({"actor", "since", "until"}),
    ReportName.RUNS_BY_STATE: frozenset({"since", "until"}),
    ReportName.ROLLBACKS: frozenset({"run_id", "since", "until"}),
    ReportName.COST_VS_BUDGET: frozenset({"run_id", "states", "since", "until"}),
}

#: What each report's time range applies to.
REPORT_TIME: dict[ReportName, str] = {
    ReportName.APPROVALS_BY_APPROVER: "when the decision was recorded",
    ReportName.RUNS_BY_STATE: "when the run was created",
    ReportName.ROLLBACKS: "when the rollback started",
    ReportName.COST_VS_BUDGET: "when the run was created",
}


class ApproverStats(Contract):
    """Decisions taken by one actor at the gate (and rollbacks they asked for)."""

    actor: str
    approved: int
    rejected: int
    rollbacks_requested: int
    first_at: datetime
    last_at: datetime


class StateStats(Contract):
    """Runs currently in one state (for a terminal state: their final state)."""

    state: ConductorState
    terminal: bool
    runs: int
    oldest_update: datetime
    newest_update: datetime
    median_age_s: float | None = Field(
        default=None, description="Median of updated_at - created_at: how long runs took."
    )


class RollbackTiming(Contract):
    """One rollback: who or what started it, how it ended, and its SLA measure when taken."""

    run_id: str
    started_seq: int
    requested_at: datetime
    requested_by: str
    outcome: str = Field(description="rollback.done, rollback.failed, or running.")
    finished_at: datetime | None = None
    begin_s: float | None = Field(default=None, description="Trigger to rollback start.")
    finish_s: float | None = Field(default=None, description="Trigger to rollback end.")
    sla_met: bool | None = Field(default=None, description="None until the gate measured it.")


class RunCost(Contract):
    """A run's monthly cost forecast against its goal's budget and the 80 % brake."""

    run_id: str
    title: str
    state: ConductorState
    created_at: datetime
    budget_monthly_usd: float
    brake_monthly_usd: float
    plan_forecast_monthly_usd: float | None = Field(
        default=None, description="Atlas's design estimate in the PlanSpec."
    )
    validated_monthly_usd: float | None = Field(
        default=None, description="Sentinel's forecast in the ValidationReport."
    )
    forecast_to_budget: float | None = Field(
        default=None, description="The latest forecast (validated, else planned) / budget."
    )
    within_brake: bool | None = None


REPORT_ROWS: dict[ReportName, type[Contract]] = {
    ReportName.APPROVALS_BY_APPROVER: ApproverStats,
    ReportName.RUNS_BY_STATE: StateStats,
    ReportName.ROLLBACKS: RollbackTiming,
    ReportName.COST_VS_BUDGET: RunCost,
}
