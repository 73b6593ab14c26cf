"""The catalog planner: deterministic rules from a goal to a DesignProposal (no LLM, no I/O).

Inputs, in order of authority: the structured fields (workload kind, expected rps,
availability, data stores, environment, compliance), then the asks read from the description
(catalog/reading/, resolved by catalog/intent.py): kinds and data stores named in any words,
a domain, a schedule, multi-AZ, rps, retention and backups, "EC2".

It first designs the *recommended* variant (25 % capacity headroom, a NAT gateway per AZ and
a larger database in prod). If that forecast is above the 80 % brake it designs the *lean*
variant: the cheapest design that still satisfies the goal (no headroom, one NAT gateway,
the smallest database for the load). Whatever is returned, nodes/atlas.py validates it; a
lean design above the brake becomes a DesignBlocked that says which budget would do.
"""

from __future__ import annotations

from catalog.components import CATALOG
from catalog.cost import brake_for, forecast_lines
from catalog.design import DesignProposal
from catalog.intent import Intent, intent_of
from catalog.prices import load_prices
from catalog.reading import Reading, read_goal
from catalog.requirements import MIN_BACKUP_DAYS, MIN_LOG_RETENTION_DAYS
from catalog.rules import (
    Draft,
    network_and_alarms,
    store_components,
    workload_components,
)
from catalog.structure import validate_components
from schemas.goal import GoalStatement, WorkloadKind

K = WorkloadKind


def _variant(goal: GoalStatement, intent: Intent, *, lean: bool) -> Draft:
    d = Draft(goal, intent, lean=lean)
    store_components(d, workload_components(d))
    network_and_alarms(d)
    return d


def design_for(goal: GoalStatement, reading: Reading | None = None) -> DesignProposal | None:
    """The recommended design when it fits the brake, else the cheapest that satisfies the
    goal; None when the goal gives nothing to design. Never raises for a valid goal.

    `reading` is the goal's asks (read here, by rules only, when not given)."""
    intent = intent_of(goal, reading if reading is not None else read_goal(goal))
    design = _variant(goal, intent, lean=False)
    if load_prices().supports(goal.region) and not validate_components(design.components):
        rps = goal.workload.expected_rps if goal.workload else None
        forecast = sum(
            line.monthly_usd
            for line in forecast_lines(design.components, goal.region, expected_rps=rps)
        )
        if round(forecast, 2) > brake_for(goal.budget.monthly_usd):
            design = _variant(goal, intent, lean=True)
    return _proposal(design)


_KIND_PHRASE = {
    K.WEB_SERVICE: "Web service behind a load balancer",
    K.API: "API behind a load balancer",
    K.STATIC_SITE: "Static site on CloudFront",
    K.QUEUE_WORKER: "Queue worker",
    K.BATCH: "Scheduled batch job",
    K.DATA_PIPELINE: "Data pipeline",
}


def _proposal(d: Draft) -> DesignProposal | None:
    if not d.components:
        return None
    serverless = bool(d.of("lambda_function"))
    what = _KIND_PHRASE[d.kind] if d.kind else "Managed storage"
    if serverless:
        what = "Serverless API on an API Gateway HTTP API and Lambda"
    parts = ", ".join(f"{c.name} ({CATALOG[c.type].title})" for c in d.components)
    summary = f"{what} in {d.goal.region} ({d.goal.environment.value}): {parts}."
    reasons = [
        f"Workload read as {d.kind.value if d.kind else 'storage only'}"
        + (" (from the description)" if d.goal.workload is None or not d.goal.workload.kind else "")
        + ".",
        (
            "The goal asks for serverless functions: an HTTP API invokes one Lambda function "
            "outside any VPC, with reserved concurrency for twice the peak rate; it reaches "
            "only what its grants name."
            if serverless
            else "Compute runs on Fargate in private subnets (EC2 only when the description "
            f"asks for it), sized at 200 rps per vCPU{'' if d.lean else ' with 25 % headroom'}."
        ),
        "Data stores sit in private subnets, reachable only from the compute named in "
        "allow_from or grants; every store is encrypted at rest.",
    ]
    if d.multi_az:
        reasons.append(
            "Multi-AZ (" + ("prod" if d.prod else "availability multi_az") + "): data stores "
            "with a standby or replica in a second AZ, at least two tasks."
        )
    if d.lean:
        reasons.append(
            "The recommended variant was above the 80 % budget brake, so this is the cheapest "
            "design that satisfies the goal: no capacity headroom, one NAT gateway, the "
            "smallest database class for the load."
        )
    compliance = d.goal.constraints.compliance if d.goal.constraints else []
    if compliance:
        reasons.append(
            "Compliance honoured: " + ", ".join(c.value for c in compliance) + " (backups kept "
            f">= {MIN_BACKUP_DAYS} days, logs >= {MIN_LOG_RETENTION_DAYS} days, private "
            "subnets, encryption everywhere)."
        )
    return DesignProposal(
        summary=summary[:2_000],
        rationale=" ".join(reasons),
        components=d.components,
        assumptions=[
            "Capacity: one vCPU serves about 200 requests (or queue messages) per second.",
            *d.notes,
        ],
    )
