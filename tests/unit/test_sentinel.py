"""nodes/sentinel.evaluate_plan: the resource allow-list and the hard 80 % budget brake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from nodes.sentinel import CHECKS, evaluate_plan
from schemas.plan import CostLine, PlanSpec
from schemas.validation import Severity, Verdict
from tools.workspace import RENDERED_RESOURCE_TYPES

AT = datetime(2026, 11, 24, 18, 24, 54, tzinfo=UTC)


def change(address: str, actions: list[str] | None = None) -> dict[str, Any]:
    """One `resource_changes` entry as `terraform show -json` prints it."""
    rtype, name = address.split(".", 1)
    return {
        "address": address,
        "mode": "managed",
        "type": rtype,
        "name": name,
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": actions or ["create"], "before": None, "after": {}},
    }


def plan_json(*addresses: str) -> dict[str, Any]:
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "resource_changes": [change(a) for a in addresses],
    }


def with_forecast(plan: PlanSpec, *lines: tuple[str, float]) -> PlanSpec:
    """The plan with a breakdown of (component, USD) lines and their sum as forecast."""
    breakdown = [CostLine(component=c, monthly_usd=usd, basis=f"{c} basis") for c, usd in lines]
    total = round(sum(usd for _, usd in lines), 2)
    budget = plan.budget.model_copy(update={"forecast_monthly_usd": total, "breakdown": breakdown})
    return plan.model_copy(update={"budget": budget})


BUCKET = plan_json("aws_s3_bucket.objects", "aws_s3_bucket_versioning.objects")


def test_recorded_plan_of_the_example_passes(
    example_plan: PlanSpec, show_plan_json: dict[str, Any]
) -> None:
    report = evaluate_plan(example_plan, show_plan_json, 20, AT)
    assert report.verdict is Verdict.PASS
    assert report.findings == []
    assert report.checks_run == ["resource_allow_list", "budget_brake"]
    assert report.reasons == [
        "passed: resource_allow_list, budget_brake (static analysis not yet part of this build)"
    ]
    addresses = [r.address for r in report.cost.per_resource]
    assert len(addresses) == 5
    assert {r.type for r in report.cost.per_resource} == RENDERED_RESOURCE_TYPES
    # nothing is priced per resource yet, and the report says so instead of claiming $0
    assert report.cost.not_priced == addresses
    assert all(r.monthly_usd is None for r in report.cost.per_resource)
    assert report.cost.monthly_usd == example_plan.budget.forecast_monthly_usd == 2.3
    assert report.plan_id == example_plan.plan_id
    assert report.at == AT


def test_forecast_exactly_at_80_percent_passes(example_plan: PlanSpec) -> None:
    plan = with_forecast(example_plan, ("objects", 80.00))
    report = evaluate_plan(plan, BUCKET, 100, AT)
    assert report.verdict is Verdict.PASS
    brake = report.budget_brake
    assert brake.passed
    assert (brake.forecast_monthly_usd, brake.limit_monthly_usd) == (80.0, 80.0)
    assert (brake.cap_monthly_usd, brake.threshold_ratio) == (100, 0.8)


def test_a_cent_above_80_percent_fails_and_says_why(example_plan: PlanSpec) -> None:
    plan = with_forecast(
        example_plan, ("db", 50.00), ("objects", 20.00), ("cdn", 7.01), ("logs", 3.00)
    )
    report = evaluate_plan(plan, BUCKET, 100, AT)
    assert report.verdict is Verdict.FAIL
    assert not report.budget_brake.passed
    (finding,) = report.findings
    assert (finding.tool, finding.rule_id) == ("budget", "CREW_BUDGET_BRAKE")
    assert finding.severity is Severity.CRITICAL
    message = finding.message
    assert "$80.01/month" in message  # forecast
    assert "exceeds $80.00" in message  # limit
    assert "80 % of $100.00" in message  # cap
    assert "db $50.00, objects $20.00, cdn $7.01" in message  # top resources, most expensive first
    assert "logs" not in message
    assert [r.address for r in report.budget_brake.top_resources] == ["db", "objects", "cdn"]
    assert report.reasons == [message]


@pytest.mark.parametrize(
    ("budget", "verdict"),
    [(2.875, Verdict.PASS), (2.86, Verdict.FAIL), (1000, Verdict.PASS), (1, Verdict.FAIL)],
)
def test_brake_uses_the_budget_given(
    example_plan: PlanSpec, budget: float, verdict: Verdict
) -> None:
    # the example forecasts $2.30; 80 % of $2.875 is $2.30, of $2.86 is $2.29 (cent precision)
    report = evaluate_plan(example_plan, BUCKET, budget, AT)
    assert report.budget_brake.limit_monthly_usd == round(budget * 0.8, 2)
    assert report.verdict is verdict


def test_resource_outside_the_catalog_fails(example_plan: PlanSpec) -> None:
    doc = plan_json("aws_s3_bucket.objects", "aws_iam_user.admin", "aws_iam_access_key.admin")
    report = evaluate_plan(example_plan, doc, 20, AT)
    assert report.verdict is Verdict.FAIL
    assert report.budget_brake.passed  # cheap, but not allowed
    allow = [f for f in report.findings if f.rule_id == "CREW_RESOURCE_ALLOW_LIST"]
    assert [f.resource for f in allow] == ["aws_iam_user.admin", "aws_iam_access_key.admin"]
    assert all(f.severity is Severity.CRITICAL for f in allow)
    assert "aws_iam_user is not in the catalog" in allow[0].message
    assert report.reasons == ["the plan contains resource types outside the catalog"]


def test_both_checks_fail_together(example_plan: PlanSpec) -> None:
    plan = with_forecast(example_plan, ("objects", 90))
    report = evaluate_plan(plan, plan_json("aws_iam_user.admin"), 100, AT)
    assert report.verdict is Verdict.FAIL
    assert {f.rule_id for f in report.findings} == {"CREW_RESOURCE_ALLOW_LIST", "CREW_BUDGET_BRAKE"}
    assert len(report.reasons) == 2


@pytest.mark.parametrize("rtype", sorted(RENDERED_RESOURCE_TYPES))
def test_every_rendered_type_is_allowed(example_plan: PlanSpec, rtype: str) -> None:
    report = evaluate_plan(example_plan, plan_json(f"{rtype}.objects"), 20, AT)
    assert report.verdict is Verdict.PASS


@pytest.mark.parametrize("doc", [{}, {"resource_changes": None}, {"resource_changes": []}])
def test_a_plan_without_changes_is_judged_on_budget_only(
    example_plan: PlanSpec, doc: dict[str, Any]
) -> None:
    report = evaluate_plan(example_plan, doc, 20, AT)
    assert report.verdict is Verdict.PASS
    assert report.cost.per_resource == []


def test_checks_run_lists_what_ran(example_plan: PlanSpec) -> None:
    report = evaluate_plan(example_plan, BUCKET, 20, AT)
    assert report.checks_run == CHECKS == ["resource_allow_list", "budget_brake"]
    # static analysis is not part of this build: the report must not claim it ran
    assert "checkov" not in report.checks_run
