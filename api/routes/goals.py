"""POST /v1/goals: submit a GoalStatement, get a run."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import ServicesDep, Submitter
from api.errors import ErrorBody
from crew.service import submit_goal
from schemas.goal import GoalStatement
from schemas.run import RunCreated

router = APIRouter(prefix="/v1", tags=["goals"])


@router.post(
    "/goals",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunCreated,
    responses={
        200: {
            "model": RunCreated,
            "description": "This goal (same goal_id, same content) was submitted before.",
        },
        401: {"model": ErrorBody, "description": "No or unknown bearer token."},
        403: {"model": ErrorBody, "description": "The token's role is viewer (submitter needed)."},
        409: {
            "model": ErrorBody,
            "description": "A revision of this goal_id is still running, or the revision "
            "moves the stack to another region.",
        },
        422: {"model": ErrorBody, "description": "The goal does not match GoalStatement v0.1."},
    },
)
async def create_goal(
    goal: GoalStatement, services: ServicesDep, response: Response, principal: Submitter
) -> RunCreated:
    """Accept a goal; a worker designs, builds and validates it, then waits at the gate.

    Sending the same goal again returns the same run (200) instead of a new one. A changed
    goal with a `goal_id` used before is the next revision of that goal's stack: planned
    against what is deployed, the gate shows the diff (409 while an earlier revision is still
    running). The audit names the token's principal as the submitter; `requested_by` is kept
    as a claim."""
    record, created = await submit_goal(services, goal, actor=principal.name)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/runs/{record.run_id}"
    return RunCreated(
        run_id=record.run_id,
        goal_id=record.goal_id,
        revision=record.revision,
        state=record.state,
        created=created,
    )
