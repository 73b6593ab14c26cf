"""Stacks: what a goal deploys, seen across its runs (`GET /v1/stacks`, `crew stacks`).

A stack is a goal in a region (tools/stack.py): every revision of the goal updates the same
Terraform state. These views are read models over the runs and the stack's state; nothing in
them is written by a client.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from schemas.base import Contract
from schemas.drift import DriftReport
from schemas.states import ConductorState
from schemas.validation import Finding, ValidationReport


class RunOutcome(StrEnum):
    """What a run did to the cloud: the word a run list shows beside its state.

    `DONE` alone does not say it: a run that applied and one rolled back afterwards both end
    DONE.
    """

    NOT_APPLIED = "not applied"
    """Ended before an apply (blocked, rejected, expired, failed to build)."""
    IN_PROGRESS = "in progress"
    APPLIED = "applied"
    APPLY_FAILED = "apply failed"
    ROLLED_BACK = "rolled back"
    ROLLBACK_FAILED = "rollback failed"
    DESTROYED = "destroyed"
    """A decommission run applied its destroy plan: the stack is gone."""


class RunPurpose(StrEnum):
    """Why a run of a stack exists."""

    GOAL = "goal"
    """A goal as submitted: the first revision, or a revised goal."""
    RECONCILE = "reconcile"
    """Re-apply the declared configuration of the applied revision (after a drift)."""
    DECOMMISSION = "decommission"
    """Destroy the stack: a destroy plan of the applied revision, through the same gate."""


class RevisionBase(Contract):
    """The applied revision a run plans against: what its failed apply rolls back to."""

    run_id: str
    revision: int = Field(ge=1)


class StackStatus(StrEnum):
    """Where the stack stands now, from its latest run that touched the cloud."""

    PLANNED = "planned"
    """No run has applied yet (the first run is in progress, waiting, or ended unapplied)."""
    DEPLOYED = "deployed"
    ROLLED_BACK = "rolled back"
    """The last apply was undone: what it created is gone (for a first revision: empty)."""
    NEEDS_ATTENTION = "needs attention"
    """An apply or its rollback failed: what is in the cloud is not what any plan says."""
    DESTROYED = "destroyed"
    """Decommissioned: everything the stack had is destroyed (a new revision may rebuild it)."""


class StackRevision(Contract):
    """One run of the stack's goal."""

    run_id: str
    revision: int
    state: ConductorState
    outcome: RunOutcome
    purpose: RunPurpose = RunPurpose.GOAL
    created_at: datetime
    updated_at: datetime
    forecast_monthly_usd: float | None = None


class StackResource(Contract):
    """One resource in the stack's Terraform state."""

    address: str = Field(description="e.g. aws_s3_bucket.logs")
    type: str
    name: str


class StackSummary(Contract):
    stack_id: str = Field(description="`<goal slug>.<region>.<8 hex>`, as in the state's path.")
    goal_id: str
    region: str
    title: str
    status: StackStatus
    latest_run_id: str
    latest_state: ConductorState
    runs: int = Field(ge=1)
    forecast_monthly_usd: float | None = Field(
        default=None, description="Sentinel's forecast for the plan that is (or was) applied."
    )
    budget_monthly_usd: float | None = None
    updated_at: datetime


class StackDetail(StackSummary):
    revisions: list[StackRevision] = Field(description="Newest first.")
    resources: list[StackResource] | None = Field(
        default=None,
        description="From the stack's state; null when the state could not be read (the "
        "reason is in `state_error`).",
    )
    outputs: dict[str, Any] = Field(default_factory=dict, description="Terraform outputs.")
    state_location: str = Field(description="Where the state lives (a path or s3:// URL).")
    state_error: str | None = None
    last_drift_check: datetime | None = Field(
        default=None, description="When drift was last checked (null: never)."
    )
    last_drift: DriftReport | None = Field(
        default=None, description="What the last drift check found."
    )
    drift_accepted_by: str | None = Field(
        default=None, description="Who accepted the last drift found, if anyone did."
    )


class StackRevalidation(Contract):
    """A deployed stack validated again with today's policy and scanners (crew/revalidate.py)."""

    stack_id: str
    run_id: str = Field(description="The applied run whose configuration was validated.")
    report: ValidationReport = Field(description="Today's verdict on the applied configuration.")
    new_findings: list[Finding] = Field(
        default_factory=list,
        max_length=1000,
        description="Findings the applied run's own validation did not have (waived ones left "
        "out): what changed in the policy or the scanners since.",
    )
    announced: bool = Field(
        default=False, description="True when these new findings were announced just now."
    )
