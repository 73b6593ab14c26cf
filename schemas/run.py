"""API views of a run: what `GET /v1/runs` and `GET /v1/runs/{id}` return."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from schemas.apply import ApplyResult
from schemas.approval import ApprovalDecision, ApprovalRequest
from schemas.audit import AuditRecord
from schemas.base import Contract
from schemas.build import BuildStatus
from schemas.goal import GoalStatement
from schemas.plan import DesignBlocked, PlanSpec
from schemas.progress import StepProgress
from schemas.stack import RevisionBase, RunPurpose
from schemas.states import ConductorState
from schemas.timing import StepTiming
from schemas.validation import ValidationReport


class RunSummary(Contract):
    run_id: str
    goal_id: str
    revision: int
    title: str
    requested_by: str | None
    state: ConductorState
    created_at: datetime
    updated_at: datetime
    summary: dict[str, Any] = Field(
        default_factory=dict,
        description="Forecast, budget, plan counts, verdict, as known. `forecast_monthly_usd` "
        "is the run's one cost figure: the terraform plan's as Sentinel priced it once "
        'validated (`forecast_source` "validated", also `validated_monthly_usd`), else Atlas\'s '
        'design estimate (`forecast_source` "design"); `design_estimate_monthly_usd` keeps '
        "Atlas's.",
    )
    decision: ApprovalDecision | None = None
    last_error: str | None = Field(
        default=None, description="An unexpected error the worker is backing off from."
    )
    progress: StepProgress | None = Field(
        default=None,
        description="The last terraform step's progress, resource by resource (plan, apply, "
        "rollback); updated while it runs, kept when it ends.",
    )
    purpose: RunPurpose = RunPurpose.GOAL
    base: RevisionBase | None = Field(
        default=None,
        description="The applied revision this run plans against (null: none applied yet).",
    )


class RunArtifacts(Contract):
    plan: PlanSpec | None = None
    design_blocked: DesignBlocked | None = None
    build: BuildStatus | None = None
    validation: ValidationReport | None = None
    approval_request: ApprovalRequest | None = None
    decision: ApprovalDecision | None = None
    apply_result: ApplyResult | None = None
    rollback_result: ApplyResult | None = None
    rollback_request: ApprovalDecision | None = None


class RunDetail(RunSummary):
    goal: GoalStatement
    artifacts: RunArtifacts = Field(default_factory=RunArtifacts)
    diagram: str | None = Field(default=None, description="Mermaid source of the architecture.")
    waiting_for_approval: bool = False
    error: str | None = None
    timings: list[StepTiming] = Field(
        default_factory=list, description="How long each step took, and its parts."
    )
    audit: list[AuditRecord] = Field(default_factory=list)


class RunCreated(Contract):
    run_id: str
    goal_id: str
    state: ConductorState
    revision: int = Field(default=1, ge=1, description="The stack revision this run is.")
    created: bool = Field(
        description="False when an earlier request with this goal_id and the same goal made it."
    )
