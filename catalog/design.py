"""What a planner proposes (`DesignProposal`) and how a proposal becomes a PlanSpec.

Both planners produce a DesignProposal: the LLM through structured output (this model's JSON
Schema and field descriptions are what it is shown), the catalog planner by rules. Everything
else on a PlanSpec is computed here, never taken from a planner: parameters with every
secure default written out, the cost forecast and budget, the tags, the diagram, and the
risks any reviewer must see (no TLS without a domain, single NAT, out-of-catalog requests).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from catalog import parse_params
from catalog.components import (
    AlbParams,
    CloudFrontParams,
    ElastiCacheRedisParams,
    NatMode,
    Params,
    RdsParams,
    VpcParams,
)
from catalog.cost import AVERAGE_TO_PEAK, forecast_lines, plan_budget
from catalog.diagram import flowchart
from catalog.prices import load_prices
from catalog.signals import read_signals
from catalog.structure import COMPUTE_TYPES
from schemas.goal import Environment, GoalStatement
from schemas.plan import Component, PlanSpec, Provenance, Risk, RiskSeverity

#: Tags every resource carries; a goal's required tags are added (and win on a clash).
MANAGED_BY = "infra-crew"


class DesignProposal(BaseModel):
    """An architecture made only of catalog components, as a planner proposes it.

    Cost, budget, tags and the diagram are computed by infra-crew from the components; do not
    include them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str = Field(
        min_length=1, max_length=2_000, description="One or two sentences for the reviewer."
    )
    rationale: str = Field(
        min_length=1,
        max_length=20_000,
        description="Why these components and sizes satisfy the goal at the lowest cost.",
    )
    components: list[Component] = Field(
        min_length=1,
        max_length=200,
        description="Catalog components: type (a catalog type), name (lower_snake_case, "
        "unique), params (only that type's parameters), depends_on (names).",
    )
    risks: list[Risk] = Field(default_factory=list, max_length=20)
    assumptions: list[str] = Field(default_factory=list, max_length=30)


def plan_tags(goal: GoalStatement, goal_id: str) -> dict[str, str]:
    required = goal.constraints.required_tags if goal.constraints else {}
    # infra-crew's own tags last: the contract refuses them in required_tags, and even a goal
    # built around the contract could not relabel a stack.
    return {
        **required,
        "managed-by": MANAGED_BY,
        "crew-goal": goal_id[:256],
        "environment": goal.environment.value,
    }


def assemble_plan(
    goal: GoalStatement,
    proposal: DesignProposal,
    *,
    goal_id: str,
    plan_id: str,
    revision: int,
    provenance: Provenance,
) -> PlanSpec:
    """The PlanSpec for a proposal whose components are structurally valid (validate first)."""
    parsed = [(c, parse_params(c)) for c in proposal.components]
    components = [c.model_copy(update={"params": p.model_dump(mode="json")}) for c, p in parsed]
    workload = goal.workload
    rps = workload.expected_rps if workload else None
    lines = forecast_lines(components, goal.region, expected_rps=rps)
    return PlanSpec(
        plan_id=plan_id,
        goal_id=goal_id,
        revision=revision,
        summary=proposal.summary,
        rationale=proposal.rationale,
        region=goal.region,
        environment=goal.environment,
        components=components,
        budget=plan_budget(goal, lines),
        risks=[*proposal.risks, *derived_risks(goal, parsed)],
        assumptions=[*proposal.assumptions, *derived_assumptions(goal)],
        tags=plan_tags(goal, goal_id),
        diagram=flowchart(components),
        provenance=provenance,
    )


def derived_risks(goal: GoalStatement, parsed: list[tuple[Component, Params]]) -> list[Risk]:
    """Risks that follow from the components themselves, whoever planned them."""
    prod = goal.environment is Environment.PROD
    risks: list[Risk] = []
    names = {c.name for c, _ in parsed}
    compute = [c.name for c, _ in parsed if c.type in COMPUTE_TYPES]
    for c, p in parsed:
        if isinstance(p, AlbParams) and p.domain_name is None:
            risks.append(
                Risk(
                    severity=RiskSeverity.HIGH if prod else RiskSeverity.MEDIUM,
                    description=f"{c.name} listens on plain HTTP: the goal names no domain, so "
                    "there is no ACM certificate and traffic is not encrypted in transit.",
                    mitigation="Name the domain in the goal (e.g. 'served at api.example.com') "
                    "and re-plan: HTTPS with an ACM certificate and an HTTP->HTTPS redirect.",
                )
            )
        if isinstance(p, CloudFrontParams) and p.domain_name is None:
            risks.append(
                Risk(
                    severity=RiskSeverity.LOW,
                    description=f"{c.name} serves on its *.cloudfront.net name (no domain given).",
                    mitigation="Name the domain in the goal to get an ACM certificate for it.",
                )
            )
        if isinstance(p, RdsParams) and not p.multi_az:
            risks.append(
                Risk(
                    severity=RiskSeverity.LOW,
                    description=f"{c.name} is a single-AZ database: an AZ outage stops it.",
                    mitigation="Acceptable outside prod; set availability multi_az otherwise.",
                )
            )
        allow: list[str] = getattr(p, "allow_from", [])
        if isinstance(p, RdsParams | ElastiCacheRedisParams) and not [
            a for a in allow if a in names
        ]:
            risks.append(
                Risk(
                    severity=RiskSeverity.MEDIUM,
                    description=f"Nothing in this design may connect to {c.name} (empty "
                    "allow_from): it is reachable by no workload yet.",
                    mitigation="Add the workload that uses it to the goal and re-plan.",
                )
            )
        if isinstance(p, VpcParams) and p.nat is NatMode.SINGLE and prod and compute:
            risks.append(
                Risk(
                    severity=RiskSeverity.MEDIUM,
                    description="One NAT gateway: if its AZ fails, the other AZ loses egress.",
                    mitigation="Raise the budget so the planner can afford a NAT per AZ.",
                )
            )
    for what in read_signals(goal.description).refused:
        risks.append(
            Risk(
                severity=RiskSeverity.HIGH,
                description=f"The description asks for {what}. The component catalog cannot "
                "express that, so it is not part of this design.",
                mitigation="If it is truly needed, a human adds it outside infra-crew after "
                "a security review.",
            )
        )
    return risks


def derived_assumptions(goal: GoalStatement) -> list[str]:
    prices = load_prices()
    notes = [
        f"Prices: {prices.how_priced(goal.region)}; free tiers not deducted; internet "
        "data transfer out not included.",
    ]
    if goal.workload and goal.workload.expected_rps:
        notes.append(
            f"expected_rps ({goal.workload.expected_rps:g}) is a peak; traffic averages "
            f"{AVERAGE_TO_PEAK:.0%} of it over the month."
        )
    return notes
