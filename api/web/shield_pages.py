"""The console's Shield-Lite pages: every advisory matched to a stack (with the feeds' health),
and one match with its Plan fix.

Everything shown from a feed is escaped by the templates (autoescape); links to an advisory
go only to http(s) URLs. The Plan fix is computed on view (it changes nothing): the stack's
applied PlanSpec with the catalog change, as `POST /v1/advisories/.../plan-fix` returns it.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from api.deps import ServicesDep
from api.web.deps import SignedIn
from api.web.render import ConsoleRoute, page
from crew.shield_fix import plan_fix
from crew.shield_views import feed_health, list_advisories
from crew.stacks import find_stack
from schemas.errors import AdvisoryNotFoundError, StackConflictError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/advisories")
async def advisories_page(request: Request, services: ServicesDep, visitor: SignedIn) -> Response:
    """Every advisory matched to a deployed stack, newest first, and each feed's last poll."""
    return page(
        request,
        visitor,
        "advisories.html",
        {
            "advisories": await list_advisories(services),
            "feeds": await feed_health(services),
            "interval_s": services.settings.shield_interval_s,
        },
    )


@router.get("/stacks/{stack_id}/advisories/{advisory_id:path}")
async def advisory_page(
    stack_id: str, advisory_id: str, request: Request, services: ServicesDep, visitor: SignedIn
) -> Response:
    """One advisory in one stack: why it matched, and the Plan fix when the catalog has one."""
    await find_stack(services, stack_id)
    found = await services.shield.get_match(stack_id, advisory_id)
    if found is None:
        raise AdvisoryNotFoundError(stack_id, advisory_id)
    proposal = None
    no_fix = None
    try:
        proposal = await plan_fix(services, stack_id, advisory_id)
    except StackConflictError as exc:
        no_fix = str(exc)
    return page(
        request,
        visitor,
        "advisory.html",
        {
            "m": found,
            "proposal": proposal,
            "proposal_json": json.dumps(proposal.plan, indent=2) if proposal else None,
            "no_fix": no_fix,
        },
    )
