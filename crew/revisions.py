"""Revising a live stack: a new run of its goal planned against what is deployed.

Every run of a goal_id after the first is the next revision of the goal's stack (the same
Terraform state and names, tools/stack.py). Three ways in, one path (crew.service.submit_goal
-> RunStore.create): the goal submitted again with changes (`crew run`, `POST /v1/goals`),
`crew revise STACK goal.json` / `POST /v1/stacks/{id}/revisions`, and a reconcile after a
drift (`crew drift STACK --reconcile`, `POST /v1/stacks/{id}/drift/reconcile`), which
re-applies the applied revision's own PlanSpec. A decommission (`crew decommission STACK`,
`POST /v1/stacks/{id}/decommission`, a goal's TTL running out) is a revision too: a destroy
plan of that PlanSpec. Each goes through the normal build/validate/approve gate; a failed
apply restores the applied revision.
"""

from __future__ import annotations

from typing import Any

from crew.container import Services
from crew.service import submit_goal
from crew.stacks import find_stack, outcome_of, stack_status
from memory.runs import RunRecord
from schemas.errors import StackConflictError
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec
from schemas.stack import RunOutcome, RunPurpose, StackStatus


async def revise_stack(
    services: Services, stack_id: str, goal: GoalStatement, *, actor: str
) -> RunRecord:
    """Start the next revision of `stack_id` with `goal` (its goal_id is the stack's; a goal
    without one takes it). Raises StackNotFoundError, StackConflictError (another goal's
    id), RunConflictError (a revision still running, or another region)."""
    key, _ = await find_stack(services, stack_id)
    if goal.goal_id is not None and goal.goal_id != key.goal_id:
        raise StackConflictError(
            stack_id,
            f"the goal's goal_id '{goal.goal_id}' is not this stack's ('{key.goal_id}'); "
            "leave goal_id out or use the stack's",
        )
    revised = goal.model_copy(update={"goal_id": key.goal_id})
    record, _ = await submit_goal(services, revised, actor=actor, revise=True)
    return record


async def reconcile_stack(services: Services, stack_id: str, *, actor: str) -> RunRecord:
    """Start a revision that restores the declared configuration of the deployed stack (its
    applied revision's PlanSpec, not a new design), through the normal validate + approve
    gate. Raises StackNotFoundError, StackConflictError (nothing deployed), RunConflictError
    (a revision still running)."""
    return await _from_applied(services, stack_id, actor, RunPurpose.RECONCILE)


async def decommission_stack(services: Services, stack_id: str, *, actor: str) -> RunRecord:
    """Start a revision that destroys the deployed stack: a destroy plan of the applied
    revision's configuration, validated by Sentinel (deleting a database, table or bucket
    needs the acknowledged approval) and applied only once approved. Raises like
    `reconcile_stack`."""
    return await _from_applied(services, stack_id, actor, RunPurpose.DECOMMISSION)


async def _from_applied(
    services: Services, stack_id: str, actor: str, purpose: RunPurpose
) -> RunRecord:
    key, runs = await find_stack(services, stack_id)
    status = stack_status(runs)
    if status is not StackStatus.DEPLOYED:
        raise StackConflictError(
            stack_id, f"stack {stack_id} is {status.value}: nothing deployed to {purpose.value}"
        )
    applied = next(r for r in runs if outcome_of(r) is RunOutcome.APPLIED)
    config: Any = {"configurable": {"thread_id": applied.run_id}}
    values: dict[str, Any] = dict((await services.graph.aget_state(config)).values or {})
    plan = values.get("plan")
    if not isinstance(plan, PlanSpec):
        raise StackConflictError(
            stack_id, f"the applied run {applied.run_id} has no PlanSpec to {purpose.value}"
        )
    record, _ = await submit_goal(
        services,
        applied.goal.model_copy(update={"goal_id": key.goal_id}),
        actor=actor,
        revise=True,
        purpose=purpose,
        seed_plan=plan,
    )
    return record
