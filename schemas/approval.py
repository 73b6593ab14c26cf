"""ApprovalRequest (what the gate shows a human) and ApprovalDecision (what comes back)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Artifact, Contract


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
    top_findings: list[str] = Field(default_factory=list, max_length=100)


class ApprovalDecision(Artifact):
    artifact_name = "ApprovalDecision"

    run_id: str
    decision: Decision
    actor: str = Field(min_length=1, max_length=200)
    channel: Channel
    reason: str | None = Field(default=None, max_length=2_000)
    at: datetime


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
