"""PlanSpec validation shared by both planners: every PlanSpec passes here or is not made.

`validate_plan` runs, in order: the structural checks every design must pass
(catalog/structure.py: catalog types only, parameters in bounds, unique names, typed
references, one VPC when needed), the goal's own clashes (region allowed and priced,
contradictions), what the goal requires of the parameters (catalog/requirements.py:
prod and multi-AZ rules, compliance flags, coverage of the workload and data stores, capacity),
the required tags, and the 80 % budget brake. Problems are typed data (catalog/problems.py).
"""

from __future__ import annotations

from catalog.cost import brake_for, budget_needed
from catalog.goal_checks import check_goal
from catalog.problems import Problem, ProblemCode
from catalog.requirements import check_parameter_rules, check_requirements
from catalog.structure import parse_components, validate_components
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec

__all__ = [
    "Problem",
    "ProblemCode",
    "budget_problem",
    "check_goal",
    "check_parameter_rules",
    "parse_components",
    "validate_components",
    "validate_plan",
]


def validate_plan(plan: PlanSpec, goal: GoalStatement) -> list[Problem]:
    """Every problem of `plan` as a design for `goal`; an empty list means it may be built."""
    problems = validate_components(plan.components)
    if plan.region != goal.region or plan.environment is not goal.environment:
        problems.append(
            Problem(
                ProblemCode.MISMATCH,
                "region",
                f"the plan is for {plan.region}/{plan.environment.value}, the goal for "
                f"{goal.region}/{goal.environment.value}",
                "plan for the goal's region and environment",
            )
        )
    # A plan has components, so "nothing to build" (read by rules before planning) is moot.
    problems.extend(p for p in check_goal(goal) if p.code is not ProblemCode.NOTHING_TO_BUILD)
    parsed = parse_components(plan.components)
    problems.extend(check_requirements(plan.components, parsed, goal))
    required = goal.constraints.required_tags if goal.constraints else {}
    missing = sorted(k for k, v in required.items() if plan.tags.get(k) != v)
    if missing:
        problems.append(
            Problem(
                ProblemCode.TAGS,
                "constraints.required_tags",
                f"required tags missing or different on the plan: {', '.join(missing)}",
                "apply every required tag with its exact value",
            )
        )
    over = budget_problem(plan.budget.forecast_monthly_usd, goal.budget.monthly_usd)
    if over is not None:
        problems.append(over)
    return problems


def budget_problem(forecast: float, cap: float) -> Problem | None:
    """The brake: a forecast above 80 % of the budget (at cent precision) blocks the design."""
    brake = brake_for(cap)
    if round(forecast, 2) <= brake and brake > 0:
        return None
    needed = budget_needed(forecast)
    why = (
        f"the design costs ${forecast:,.2f}/month, above the brake of ${brake:,.2f} "
        f"(80 % of ${cap:,.2f})"
        if brake > 0
        else f"a budget of ${cap:g}/month puts the brake (80 % of it) below one cent"
    )
    return Problem(
        ProblemCode.OVER_BUDGET,
        "budget.monthly_usd",
        why,
        f"raise budget.monthly_usd to >= {needed:.2f}",
    )
