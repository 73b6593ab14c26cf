"""ApprovalRequest (what the gate shows a human) and ApprovalDecision (what comes back)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Artifact, Contract
from schemas.build import ResourceChange


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    ROLLBACK = "rollback"
    CANCEL = "cancel"
    """Stop a run that is not applying yet, wherever it is (it ends REJECTED)."""


class Channel(StrEnum):
    REST = "rest"
    SLACK = "slack"
    CLI = "cli"
    SYSTEM = "system"
    """The Conductor itself, e.g. rejecting a run whose approval expired (CREW_APPROVAL_TTL)."""


class StatefulChange(Contract):
    """A resource holding data that the plan replaces or deletes: its data may be lost."""

    address: str
    type: str
    kind: str = Field(description="What it holds, e.g. 'database', 'table', 'bucket', 'volume'.")
    action: str = Field(description="'replace' or 'delete'.")


class ApprovalRequest(Artifact):
    """The interrupt payload at the gate: enough for a human to decide."""

    artifact_name = "ApprovalRequest"

    run_id: str
    plan_id: str
    plan_file_digest: str
    summary: str
    forecast_monthly_usd: float = Field(ge=0)
    budget_monthly_usd: float = Field(gt=0)
    create: int = Field(ge=0)
    update: int = Field(ge=0)
    delete: int = Field(ge=0)
    replace: int = Field(default=0, ge=0)
    top_findings: list[str] = Field(default_factory=list, max_length=100)
    revision: int = Field(default=1, ge=1, description="The stack revision this run would apply.")
    changes: list[ResourceChange] = Field(
        default_factory=list,
        max_length=500,
        description="The resource diff against the stack's current state (no-ops left out).",
    )
    stateful_changes: list[StatefulChange] = Field(
        default_factory=list,
        max_length=500,
        description="Data-holding resources the plan replaces or deletes.",
    )
    acknowledgement_required: bool = Field(
        default=False,
        description="True when `stateful_changes` is not empty: an approval must acknowledge "
        "the possible data loss (`acknowledge_stateful`).",
    )


class ApprovalDecision(Artifact):
    artifact_name = "ApprovalDecision"

    run_id: str
    decision: Decision
    actor: str = Field(min_length=1, max_length=200)
    channel: Channel
    reason: str | None = Field(default=None, max_length=2_000)
    at: datetime
    acknowledge_stateful: bool = Field(
        default=False,
        description="The approver acknowledged that stateful resources are replaced or deleted.",
    )


class GateLogEntry(Contract):
    """One row of the gate log: something at the gate that is not a state transition (a
    refused decision, an expired approval, a rollback SLA alert). Transitions are in the
    audit log; these say who tried what and why it did not happen, or what needs a human."""

    at: datetime
    kind: str = Field(description="The OpsEvent type, e.g. 'approval.refused'.")
    run_id: str | None = None
    channel: Channel | None = None
    actor: str | None = None
    action: str | None = Field(default=None, description="approve, reject, rollback or cancel.")
    detail: str
