"""Sentinel: the validator between a plan and a human -> ValidationReport PASS/FAIL.

INTERIM (foundation): runs two checks and says so in `checks_run`: the resource allow-list
(every resource in the plan JSON must be a type Forge renders) and the hard 80 % budget brake
on Atlas's forecast. Static analysis (checkov), the org policy file and plan-based pricing
come with Sentinel v0, which replaces `evaluate_plan` behind the same node.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from graph.context import CrewContext
from graph.state import RunState, transition
from schemas.events import EventType
from schemas.plan import PlanSpec
from schemas.states import ConductorState
from schemas.validation import (
    BudgetBrake,
    CostReport,
    Finding,
    ResourceCost,
    Severity,
    ValidationReport,
    Verdict,
)
from tools.workspace import RENDERED_RESOURCE_TYPES, load_plan_json

ACTOR = "sentinel"
BRAKE_RATIO = 0.8
CHECKS = ["resource_allow_list", "budget_brake"]


def evaluate_plan(
    plan: PlanSpec, plan_json: dict[str, Any], budget_monthly_usd: float, at: datetime
) -> ValidationReport:
    findings: list[Finding] = []
    resources: list[ResourceCost] = []
    for rc in plan_json.get("resource_changes") or []:
        address, rtype = rc["address"], rc["type"]
        if rtype not in RENDERED_RESOURCE_TYPES:
            findings.append(
                Finding(
                    tool="sentinel",
                    rule_id="CREW_RESOURCE_ALLOW_LIST",
                    severity=Severity.CRITICAL,
                    resource=address,
                    message=f"resource type {rtype} is not in the catalog Forge renders",
                )
            )
        resources.append(ResourceCost(address=address, type=rtype, basis="see component forecast"))

    forecast = plan.budget.forecast_monthly_usd
    limit = round(budget_monthly_usd * BRAKE_RATIO, 2)
    by_component = sorted(plan.budget.breakdown, key=lambda line: line.monthly_usd, reverse=True)
    top = [
        ResourceCost(
            address=line.component, type="component", monthly_usd=line.monthly_usd, basis=line.basis
        )
        for line in by_component[:3]
    ]
    brake = BudgetBrake(
        forecast_monthly_usd=forecast,
        cap_monthly_usd=budget_monthly_usd,
        threshold_ratio=BRAKE_RATIO,
        limit_monthly_usd=limit,
        passed=forecast <= limit,
        top_resources=top,
    )
    reasons = []
    if not brake.passed:
        names = ", ".join(f"{r.address} ${r.monthly_usd:.2f}" for r in top)
        reasons.append(
            f"budget brake: forecast ${forecast:.2f}/month exceeds ${limit:.2f} (80 % of "
            f"${budget_monthly_usd:.2f}); most expensive: {names}"
        )
        findings.append(
            Finding(
                tool="budget",
                rule_id="CREW_BUDGET_BRAKE",
                severity=Severity.CRITICAL,
                message=reasons[-1],
            )
        )
    blocking = [f for f in findings if f.severity in (Severity.CRITICAL, Severity.HIGH)]
    if any(f.rule_id == "CREW_RESOURCE_ALLOW_LIST" for f in blocking):
        reasons.append("the plan contains resource types outside the catalog")
    verdict = Verdict.FAIL if blocking else Verdict.PASS
    if verdict is Verdict.PASS:
        reasons.append(
            "passed: " + ", ".join(CHECKS) + " (static analysis not yet part of this build)"
        )
    return ValidationReport(
        plan_id=plan.plan_id,
        verdict=verdict,
        reasons=reasons,
        checks_run=CHECKS,
        findings=findings,
        cost=CostReport(
            monthly_usd=forecast,
            source="atlas-forecast",
            per_resource=resources,
            not_priced=[r.address for r in resources],
        ),
        budget_brake=brake,
        at=at,
    )


async def validate(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """VALIDATING -> READY_FOR_APPLY on PASS, -> BLOCKED on FAIL."""
    ctx = runtime.context
    plan, build = state["plan"], state["build"]
    assert plan is not None
    assert build is not None
    now = ctx.clock()
    report = evaluate_plan(
        plan, load_plan_json(Path(build.workspace)), state["goal"].budget.monthly_usd, now
    )
    passed = report.verdict is Verdict.PASS
    to = ConductorState.READY_FOR_APPLY if passed else ConductorState.BLOCKED
    update: RunState = {
        "validation": report,
        "conductor_state": to,
        "transitions": [
            transition(
                state,
                to,
                event=EventType.VALIDATE_RESULT,
                actor=ACTOR,
                at=now,
                artifact="validation",
                note=None if passed else "; ".join(report.reasons),
            )
        ],
    }
    if not passed:
        update["error"] = "validation failed: " + "; ".join(report.reasons)
    return update
