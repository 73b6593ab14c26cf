"""Shield-Lite: advisories matched to deployed stacks, a poll on demand, and the Plan fix."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ServicesDep, Submitter, Viewer
from api.errors import ErrorBody
from crew.shield import poll_feeds
from crew.shield_fix import plan_fix
from crew.shield_views import list_advisories
from schemas.shield import OpenAdvisory, PlanFixProposal, ShieldPollReport

router = APIRouter(tags=["shield"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or unknown bearer token."},
    403: {"model": ErrorBody, "description": "The token's role may not do this."},
}


@router.get(
    "/v1/advisories",
    response_model=list[OpenAdvisory],
    responses={**_ERRORS, 404: {"model": ErrorBody, "description": "No stack with this id."}},
)
async def get_advisories(
    services: ServicesDep,
    _viewer: Viewer,
    stack_id: Annotated[
        str | None,
        Query(max_length=300, description="Only this stack's advisories (crew stacks lists ids)."),
    ] = None,
) -> list[OpenAdvisory]:
    """Advisories matched to deployed stacks, newest first, each with the affected resource,
    why it matched, the catalog fix (if any) and whether Slack was told."""
    return await list_advisories(services, stack_id)


@router.post(
    "/v1/shield/poll",
    response_model=ShieldPollReport,
    responses={
        **_ERRORS,
        409: {"model": ErrorBody, "description": "Another poll is running (try again soon)."},
    },
)
async def post_poll(services: ServicesDep, submitter: Submitter) -> ShieldPollReport:
    """Poll every advisory feed now (submitter role) and match against every deployed stack.

    A feed that fails is reported in `feeds` (and backs off); it never fails the poll. New
    matches are announced (OpsEvent `shield.advisory`, gate log, Slack)."""
    return await poll_feeds(services, trigger=f"rest:{submitter.name}")


@router.post(
    "/v1/advisories/{stack_id}/{advisory_id:path}/plan-fix",
    response_model=PlanFixProposal,
    responses={
        **_ERRORS,
        404: {"model": ErrorBody, "description": "No such stack, or no such advisory for it."},
        409: {
            "model": ErrorBody,
            "description": "The catalog cannot fix this advisory (a human plans it).",
        },
    },
)
async def post_plan_fix(
    stack_id: str, advisory_id: str, services: ServicesDep, _submitter: Submitter
) -> PlanFixProposal:
    """The Plan fix for one advisory (submitter role): the stack's applied PlanSpec with the
    catalog change made (an engine minor-version pin), validated by the catalog, and what
    changes. Nothing is applied: the proposal is the next revision to submit."""
    return await plan_fix(services, stack_id, advisory_id)
