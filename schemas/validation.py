"""ValidateRequest and ValidationReport: Sentinel's input and its PASS/FAIL verdict."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Artifact, Contract


class Verdict(StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    INFO = "INFO"


class ValidateRequest(Artifact):
    """What Sentinel needs to judge one built plan."""

    artifact_name = "ValidateRequest"

    plan_id: str
    workspace: str
    plan_file_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    region: str
    budget_monthly_usd: float = Field(gt=0)
    required_tags: dict[str, str] = Field(default_factory=dict)
    policy_file: str | None = None


class Finding(Contract):
    tool: str = Field(description="Which check produced it: checkov, tfsec, policy, budget, ...")
    rule_id: str
    severity: Severity
    resource: str | None = Field(default=None, description="Terraform resource address.")
    message: str
    guideline: str | None = None
    waived: bool = False
    waiver_reason: str | None = None


class ResourceCost(Contract):
    address: str
    type: str
    monthly_usd: float | None = Field(
        default=None, ge=0, description="None when the resource type is not priced."
    )
    basis: str = ""


class CostReport(Contract):
    monthly_usd: float = Field(ge=0)
    source: str = Field(description='"builtin" price table or "infracost".')
    per_resource: list[ResourceCost] = Field(default_factory=list)
    not_priced: list[str] = Field(
        default_factory=list, description="Addresses with no price: never silently zero."
    )


class PolicyResult(Contract):
    rule: str
    passed: bool
    message: str


class BudgetBrake(Contract):
    forecast_monthly_usd: float = Field(ge=0)
    cap_monthly_usd: float = Field(gt=0)
    threshold_ratio: float = Field(default=0.8, gt=0, le=1)
    limit_monthly_usd: float = Field(gt=0)
    passed: bool
    top_resources: list[ResourceCost] = Field(default_factory=list)


class ValidationReport(Artifact):
    artifact_name = "ValidationReport"

    plan_id: str
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list, description="Why FAIL (or notes on PASS).")
    checks_run: list[str] = Field(
        description="Which checks this verdict rests on, so a reader knows what was not checked."
    )
    findings: list[Finding] = Field(default_factory=list)
    cost: CostReport
    policy: list[PolicyResult] = Field(default_factory=list)
    budget_brake: BudgetBrake
    at: datetime
