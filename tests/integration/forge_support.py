"""Driving Forge's nodes outside the graph against moto: real terraform, real Postgres (run
rows, apply ledger, stack locks), boto3 to look at what exists."""

from __future__ import annotations

import operator
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from langgraph.runtime import Runtime

from crew.container import Services
from fixtures.plans import plan_of
from graph.context import CrewContext
from graph.state import RunState
from schemas.goal import GoalStatement
from schemas.plan import Component, PlanSpec
from schemas.states import ConductorState
from tests.conftest import example_goal

Node = Callable[[RunState, Runtime[CrewContext]], Awaitable[RunState]]


def aws(service: str, moto_endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


async def new_run(services: Services) -> str:
    """A run row (the apply ledger lives on it); its goal is the example's."""
    goal_id = f"forge-it-{secrets.token_hex(4)}"
    goal = GoalStatement.model_validate(example_goal(goal_id=goal_id))
    record, _ = await services.runs.create(goal, run_id=goal_id, at=datetime.now(UTC))
    return record.run_id


def stack_plan(
    components: list[Component], *, goal_id: str, revision: int = 1, test_tag: str = ""
) -> PlanSpec:
    return plan_of(
        components,
        goal_id=goal_id,
        revision=revision,
        tags={"crew-test": test_tag or goal_id},
    )


def initial(run_id: str, plan: PlanSpec) -> RunState:
    return {
        "run_id": run_id,
        "goal_id": plan.goal_id,
        "revision": plan.revision,
        "plan": plan,
        "conductor_state": ConductorState.IN_PROGRESS,
        "transitions": [],
        "attempts": {},
    }


async def step(node: Node, state: RunState, ctx: CrewContext) -> RunState:
    """Run one node and fold its update into the state (transitions append, the rest
    replaces), as the graph would."""
    update = await node(state, Runtime(context=ctx))
    merged: dict[str, Any] = dict(state)
    for key, value in update.items():
        if key == "transitions":
            merged[key] = operator.add(list(state.get("transitions") or []), list(value))
        else:
            merged[key] = value
    return merged  # type: ignore[return-value]


def approved(state: RunState) -> RunState:
    """Skip validation and the gate (their own tests cover them): straight to APPLYING."""
    assert state["conductor_state"] is ConductorState.VALIDATING, state.get("error")
    return {**state, "conductor_state": ConductorState.APPLYING}
