"""The artifacts an OpsEvent may carry, by name: an event's payload is validated against the
artifact its `payload_type` names. Every exported artifact is here except the two that carry
the others (OpsEvent, AuditRecord): `schemas.registry` adds those."""

from __future__ import annotations

from schemas.apply import ApplyResult
from schemas.approval import ApprovalDecision, ApprovalRequest
from schemas.base import Artifact
from schemas.build import BuildStatus
from schemas.drift import DriftReport
from schemas.goal import GoalStatement
from schemas.heartbeat import Heartbeat
from schemas.plan import DesignBlocked, PlanSpec
from schemas.shield import ShieldMatch
from schemas.validation import ValidateRequest, ValidationReport

PAYLOADS: dict[str, type[Artifact]] = {
    model.artifact_name: model
    for model in (
        GoalStatement,
        PlanSpec,
        DesignBlocked,
        BuildStatus,
        ValidateRequest,
        ValidationReport,
        ApprovalRequest,
        ApprovalDecision,
        ApplyResult,
        Heartbeat,
        DriftReport,
        ShieldMatch,
    )
}
