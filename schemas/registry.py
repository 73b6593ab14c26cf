"""Every exported artifact by name: the JSON Schema export and OpsEvent payloads use it."""

from __future__ import annotations

from schemas.apply import ApplyResult
from schemas.approval import ApprovalDecision, ApprovalRequest
from schemas.audit import AuditRecord
from schemas.base import Artifact
from schemas.build import BuildStatus
from schemas.drift import DriftReport
from schemas.events import Heartbeat, OpsEvent
from schemas.goal import GoalStatement
from schemas.plan import DesignBlocked, PlanSpec
from schemas.shield import ShieldMatch
from schemas.validation import ValidateRequest, ValidationReport

ARTIFACTS: dict[str, type[Artifact]] = {
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
        OpsEvent,
        Heartbeat,
        AuditRecord,
        DriftReport,
        ShieldMatch,
    )
}
