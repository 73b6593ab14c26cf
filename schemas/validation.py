"""ValidateRequest and ValidationReport: Sentinel's input and its PASS/FAIL verdict."""

from __future__ import annotations

from datetime import date, datetime
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
    required_tags: dict[str, str] = Field(default_factory=dict, max_length=200)
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
    waiver_expires: date | None = Field(
        default=None, description="The waiver's expiry date; after it the finding counts again."
    )
    blocking: bool = Field(
        default=False,
        description="True when this finding alone fails the run (severity at or above the "
        "policy threshold and not waived, or the budget brake).",
    )
    sources: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Where it was seen, e.g. ['hcl', 'plan'] for checkov on both inputs.",
    )


class ResourceCost(Contract):
    address: str
    type: str
    monthly_usd: float | None = Field(
        default=None, ge=0, description="None when the resource type is not priced."
    )
    basis: str = ""
    action: str | None = Field(
        default=None, description="What the plan does to it: create, update, delete, replace, ..."
    )
    previous_monthly_usd: float | None = Field(
        default=None,
        ge=0,
        description="Its cost as currently applied (the plan's `before`); 0 when it is new.",
    )
    component: str | None = Field(
        default=None, description="The PlanSpec component it belongs to, when known."
    )


class CostReport(Contract):
    monthly_usd: float = Field(ge=0)
    source: str = Field(description='"builtin" price table or "infracost".')
    per_resource: list[ResourceCost] = Field(default_factory=list, max_length=10_000)
    not_priced: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="Addresses with no price: never silently zero.",
    )
    previous_monthly_usd: float | None = Field(
        default=None,
        ge=0,
        description="Monthly cost of what is applied now (0 for a first revision).",
    )
    delta_monthly_usd: float | None = Field(
        default=None, description="Forecast minus previous: what this revision adds per month."
    )
    assumptions: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Usage assumed for usage-based prices (transfer, requests, storage).",
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
    top_resources: list[ResourceCost] = Field(default_factory=list, max_length=1000)


class ValidationReport(Artifact):
    artifact_name = "ValidationReport"

    plan_id: str
    verdict: Verdict
    reasons: list[str] = Field(
        default_factory=list, max_length=1000, description="Why FAIL (or notes on PASS)."
    )
    checks_run: list[str] = Field(
        max_length=100,
        description="Which checks this verdict rests on, so a reader knows what was not checked.",
    )
    findings: list[Finding] = Field(
        default_factory=list,
        max_length=10_000,
        description="Most severe first; blocking before waived.",
    )
    policy_file: str | None = Field(
        default=None, description="The org policy applied: a path, or None for the default."
    )
    cost: CostReport
    policy: list[PolicyResult] = Field(default_factory=list, max_length=1000)
    budget_brake: BudgetBrake | None = Field(
        default=None,
        description="The hard 80 % brake; None only when no budget was given "
        "(`crew validate` without --budget). Runs of the graph always have one.",
    )
    at: datetime
