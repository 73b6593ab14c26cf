"""Plan fix: the stack's next revision that removes an advisory's vulnerable version.

What exists now: the proposal — the applied PlanSpec with the catalog change made (an RDS
engine minor-version pin), checked by the catalog's parameter model, and what changes, shown
to the user (REST, CLI, the console's advisory page). Running it as a revision of the live
stack (build -> validate -> approve gate -> apply on the same state) is the stack-revision
work; until it lands the proposal is what a human submits.
"""

from __future__ import annotations

from pydantic import ValidationError

from crew.container import Services
from crew.shield_inventory import applied_plan
from crew.stacks import find_stack
from schemas.errors import AdvisoryNotFoundError, StackConflictError
from schemas.shield import PlanFixProposal
from shield.fix import describe_fix, propose_fix


async def plan_fix(services: Services, stack_id: str, advisory_id: str) -> PlanFixProposal:
    """The proposed revision for one recorded match. Raises StackNotFoundError,
    AdvisoryNotFoundError, or StackConflictError when the catalog cannot fix it."""
    await find_stack(services, stack_id)
    found = await services.shield.get_match(stack_id, advisory_id)
    if found is None:
        raise AdvisoryNotFoundError(stack_id, advisory_id)
    if found.fix is None:
        raise StackConflictError(
            stack_id,
            f"the catalog cannot fix {advisory_id} in stack {stack_id} ({found.item.product} "
            f"at {found.item.address}): a human plans this change",
        )
    plan = await applied_plan(services, found.run_id)
    if plan is None:
        raise StackConflictError(stack_id, f"run {found.run_id} recorded no PlanSpec to revise")
    try:
        proposed = propose_fix(plan, found.fix)
    except (ValidationError, ValueError) as exc:
        raise StackConflictError(stack_id, f"the catalog refuses the fix: {exc}") from exc
    return PlanFixProposal(
        stack_id=stack_id,
        advisory_id=advisory_id,
        fix=found.fix,
        base_run_id=found.run_id,
        plan=proposed.model_dump(mode="json"),
        diff=[f"revision {plan.revision} -> {proposed.revision}", *describe_fix(found.fix)],
    )
