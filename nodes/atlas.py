"""Atlas, the architect: GoalStatement -> PlanSpec or DesignBlocked.

INTERIM (foundation): this planner knows exactly one catalog component, a private encrypted
S3 bucket, and accepts only goals that ask for object storage and nothing else. Every other
goal gets an honest DesignBlocked that says so. Atlas v0 (the next issue) replaces `plan_goal`
with the full catalog and the LLM planner behind the same node.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import CrewContext
from graph.state import RunState, transition
from schemas.events import EventType
from schemas.goal import DataStoreKind, Environment, GoalStatement
from schemas.plan import (
    BlockReason,
    Component,
    CostLine,
    DesignBlocked,
    PerfTargets,
    PlanBudget,
    PlanSpec,
    Provenance,
    Risk,
    RiskSeverity,
)
from schemas.states import ConductorState

ACTOR = "atlas"
BRAKE_RATIO = 0.8

#: S3 Standard storage, first 50 TB, us-east-1 list price (aws.amazon.com/s3/pricing, 2025).
#: The interim planner ignores regional differences; Atlas v0 brings the regional table.
S3_STANDARD_USD_PER_GB_MONTH = 0.023
DEFAULT_OBJECT_STORAGE_GB = 50.0


def plan_goal(
    goal: GoalStatement, *, goal_id: str, plan_id: str, revision: int = 1
) -> PlanSpec | DesignBlocked:
    """Design for `goal`, deterministically. Never raises for a valid GoalStatement."""
    reasons: list[BlockReason] = []
    constraints = goal.constraints
    if (
        constraints
        and constraints.allowed_regions
        and goal.region not in constraints.allowed_regions
    ):
        reasons.append(
            BlockReason(
                constraint="constraints.allowed_regions",
                why=f"region {goal.region} is not in the allowed regions "
                f"{', '.join(constraints.allowed_regions)}",
                suggestion=f"use region {constraints.allowed_regions[0]}",
            )
        )
    workload = goal.workload
    stores = workload.data_stores if workload else []
    object_only = bool(stores) and all(s.kind is DataStoreKind.OBJECT_STORAGE for s in stores)
    if not object_only or (workload is not None and workload.kind is not None):
        reasons.append(
            BlockReason(
                constraint="workload",
                why="this build carries only the interim single-component planner: it can "
                "design one private, encrypted S3 bucket for goals that ask for object "
                "storage and nothing else",
                suggestion="ask for object storage only (workload.data_stores = "
                "[{kind: object_storage}], no workload.kind), or use a build with Atlas v0",
            )
        )
    if reasons:
        return DesignBlocked(goal_id=goal_id, reasons=reasons, attempts=1)

    size_gb = sum(s.size_gb or DEFAULT_OBJECT_STORAGE_GB for s in stores)
    forecast = round(size_gb * S3_STANDARD_USD_PER_GB_MONTH, 2)
    cap = goal.budget.monthly_usd
    brake = round(cap * BRAKE_RATIO, 2)
    if forecast > brake or brake <= 0:
        # A budget under $0.00625 puts the brake below one cent: nothing can be approved.
        needed = max(round(forecast / BRAKE_RATIO + 0.005, 2), 0.01)
        why = (
            f"the cheapest design costs ${forecast:.2f}/month, above the brake of "
            f"${brake:.2f} (80 % of ${cap:.2f})"
            if forecast > brake
            else f"a budget of ${cap:g}/month puts the brake (80 % of it) below one cent"
        )
        return DesignBlocked(
            goal_id=goal_id,
            reasons=[
                BlockReason(
                    constraint="budget.monthly_usd",
                    why=why,
                    suggestion=f"raise budget.monthly_usd to >= {needed:.2f}",
                )
            ],
            attempts=1,
        )

    prod = goal.environment is Environment.PROD
    tags = {
        "managed-by": "infra-crew",
        "crew-goal": goal_id[:256],
        "environment": goal.environment.value,
        **(constraints.required_tags if constraints else {}),
    }
    bucket = Component(
        type="s3_bucket",
        name="objects",
        params={
            "versioning": True,
            "force_destroy": not prod,
            "size_gb": size_gb,
        },
    )
    return PlanSpec(
        plan_id=plan_id,
        goal_id=goal_id,
        revision=revision,
        summary=f"One private, encrypted, versioned S3 bucket ({size_gb:g} GB expected).",
        rationale="The goal asks for object storage only; a single S3 bucket with public access "
        "blocked, server-side encryption and versioning meets it at the lowest cost.",
        region=goal.region,
        environment=goal.environment,
        components=[bucket],
        budget=PlanBudget(
            forecast_monthly_usd=forecast,
            cap_monthly_usd=cap,
            brake_monthly_usd=brake,
            breakdown=[
                CostLine(
                    component="objects",
                    monthly_usd=forecast,
                    basis=f"{size_gb:g} GB S3 Standard at ${S3_STANDARD_USD_PER_GB_MONTH}/GB-month "
                    "(us-east-1 list price; requests and transfer not included)",
                )
            ],
            perf=PerfTargets(),
        ),
        risks=[
            Risk(
                severity=RiskSeverity.LOW,
                description="Request and data-transfer charges are not in the forecast.",
                mitigation="Watch the bill for the first month; Atlas v0 prices usage.",
            )
        ],
        assumptions=[f"{size_gb:g} GB stored on average over the month"],
        tags=tags,
        diagram=_diagram(bucket),
        provenance=Provenance(planner="catalog"),
    )


def _diagram(bucket: Component) -> str:
    return "\n".join(
        [
            "flowchart LR",
            "    client([Client]) -->|HTTPS, IAM auth| "
            + f"{bucket.name}[(S3 bucket {bucket.name})]",
        ]
    )


async def design(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """PENDING -> IN_PROGRESS with a PlanSpec, or -> BLOCKED with a DesignBlocked."""
    ctx = runtime.context
    now = ctx.clock()
    attempts = state.get("attempts", {}).get("design", 0) + 1
    result = plan_goal(
        state["goal"],
        goal_id=state["goal_id"],
        plan_id=f"{state['run_id']}-r{state.get('revision', 1)}",
        revision=state.get("revision", 1),
    )
    if isinstance(result, PlanSpec):
        return {
            "plan": result,
            "attempts": {"design": attempts},
            "conductor_state": ConductorState.IN_PROGRESS,
            "transitions": [
                transition(
                    state,
                    ConductorState.IN_PROGRESS,
                    event=EventType.PLAN_PENDING,
                    actor=ACTOR,
                    at=now,
                    artifact="plan",
                )
            ],
        }
    started = transition(
        state, ConductorState.IN_PROGRESS, event=EventType.DESIGN_STARTED, actor=ACTOR, at=now
    )
    blocked = transition(
        {**state, "conductor_state": ConductorState.IN_PROGRESS},
        ConductorState.BLOCKED,
        event=EventType.DESIGN_BLOCKED,
        actor=ACTOR,
        at=now,
        artifact="design_blocked",
        note="; ".join(r.why for r in result.reasons),
        offset=1,
    )
    return {
        "design_blocked": result,
        "attempts": {"design": attempts},
        "conductor_state": ConductorState.BLOCKED,
        "error": "design blocked: " + "; ".join(r.why for r in result.reasons),
        "transitions": [started, blocked],
    }
