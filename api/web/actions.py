"""The console's POSTs: log in and out, submit a goal, approve / reject / roll back / cancel.

Each handler declares `CheckedForm` first, so the CSRF check runs before anything else looks
at the request. The work itself is the REST API's: `submit_goal` for goals, and for decisions
`crew.gate.act` with the REST identity of the logged-in principal (channel `rest`, role from
the token), so the approver list, the stale-plan check, the gate log of refusals and the
once-only recording of a decision are the same whichever of REST, Slack, CLI or this console
is used. After success the browser is redirected (303) to the page that shows the result.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from api.deps import ServicesDep
from api.routes.runs import DecisionBody
from api.web.deps import CheckedForm, SignedIn, Visitor, VisitorDep, signer
from api.web.goal_form import CHOICES, STORE_FIELDS, TEXT_FIELDS, GoalForm, parse_goal_form
from api.web.pages import run_context
from api.web.render import ConsoleRoute, error_page, page, redirect
from api.web.session import safe_next
from crew.access import authenticate
from crew.gate.actions import Identity, act
from crew.service import submit_goal
from schemas.approval import Channel, Decision
from schemas.errors import (
    AcknowledgementRequiredError,
    ForbiddenError,
    GateRefusedError,
    RunConflictError,
    RunNotFoundError,
    StalePlanError,
)
from schemas.inputs import InputError, Problem, problems_from_errors

logger = logging.getLogger(__name__)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

_DONE = {
    Decision.APPROVE: "approved",
    Decision.REJECT: "rejected",
    Decision.ROLLBACK: "rollback",
    Decision.CANCEL: "cancelled",
}


# -- login -----------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, visitor: VisitorDep, next: str | None = None) -> Response:
    return page(request, visitor, "login.html", {"next": safe_next(next)})


@router.post("/login")
async def login(
    request: Request, form: CheckedForm, services: ServicesDep, visitor: VisitorDep
) -> Response:
    """Exchange an API token for a session. The token is checked like a bearer token and then
    forgotten: the session names the principal and the token entry, not the token."""
    target = safe_next(str(form.get("next") or "/"))
    tokens = services.settings.api_tokens
    presented = str(form.get("token") or "").strip()
    principal = authenticate(tokens, presented) if tokens and presented else None
    if principal is None:
        message = (
            "Paste an API token (`crew token new NAME --role ROLE` makes one)."
            if not presented
            else "That token is not one of the configured API tokens (CREW_API_TOKENS)."
        )
        if tokens:
            logger.info("console login refused", extra={"client": _client(request)})
        return page(request, visitor, "login.html", {"next": target, "error": message}, status=401)
    keys = signer(request)
    entry = next(t for t in tokens if t.principal == principal.name)
    session = keys.new(services.context.clock().timestamp(), principal, keys.token_id(entry))
    logger.info("console login: %s (%s)", principal.name, principal.role.value)
    return redirect(request, visitor.with_session(session, principal), target)


@router.post("/logout")
async def logout(
    request: Request, form: CheckedForm, services: ServicesDep, visitor: VisitorDep
) -> Response:
    """End the session: the browser keeps a fresh anonymous one (new CSRF token)."""
    session = signer(request).new(services.context.clock().timestamp())
    return redirect(request, visitor.with_session(session, None), "/login")


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


# -- goals -----------------------------------------------------------------------------------


def _require_submitter(visitor: Visitor) -> None:
    principal = visitor.principal
    if principal is not None and not visitor.may_submit:
        raise ForbiddenError(
            f"'{principal.name}' has the {principal.role.value} role; submitting a goal needs "
            "submitter or approver"
        )


def _goal_page(request: Request, visitor: Visitor, form: GoalForm, status: int = 200) -> Response:
    context = {"form": form, "choices": CHOICES, "fields": (*TEXT_FIELDS, *STORE_FIELDS)}
    return page(request, visitor, "goal_new.html", context, status=status)


@router.get("/goals/new")
async def new_goal_page(request: Request, visitor: SignedIn) -> Response:
    _require_submitter(visitor)
    name = visitor.principal.name if visitor.principal else None
    return _goal_page(request, visitor, GoalForm.defaults(name))


@router.post("/goals/new")
async def submit_goal_form(
    request: Request, form: CheckedForm, services: ServicesDep, visitor: SignedIn
) -> Response:
    """Validate like `POST /v1/goals` (same model, same messages), then submit the same way;
    a goal_id submitted before leads to its run, as REST's 200 does."""
    _require_submitter(visitor)
    compliance = [c for c in form.getlist("constraints.compliance") if isinstance(c, str)]
    goal_form = GoalForm.from_form(form, compliance)
    try:
        goal = parse_goal_form(goal_form)
    except InputError as exc:
        goal_form.problems = exc.problems
        return _goal_page(request, visitor, goal_form, status=422)
    try:
        assert visitor.principal is not None  # SignedIn
        record, created = await submit_goal(services, goal, actor=visitor.principal.name)
    except RunConflictError as exc:
        fix = "wait for the running revision to end, or use a new goal_id"
        goal_form.problems = [Problem("goal_id", str(exc), fix)]
        return _goal_page(request, visitor, goal_form, status=409)
    notice = "submitted" if created else "existing"
    return redirect(request, visitor, f"/runs/{record.run_id}?notice={notice}")


# -- the gate --------------------------------------------------------------------------------


async def _decide(
    request: Request,
    services: ServicesDep,
    visitor: Visitor,
    form: CheckedForm,
    run_id: str,
    action: Decision,
) -> Response:
    assert visitor.principal is not None  # SignedIn
    principal = visitor.principal
    try:
        body = DecisionBody(
            reason=str(form.get("reason") or "").strip() or None,
            acknowledge_stateful=form.get("acknowledge_stateful") == "true",
        )
    except ValidationError as exc:
        raise InputError(problems_from_errors(exc.errors(), DecisionBody), "decision") from exc
    who = Identity(
        actor=principal.name, channel=Channel.REST, actor_id=principal.name, role=principal.role
    )
    try:
        await act(
            services,
            run_id,
            action,
            who,
            reason=body.reason,
            acknowledge_stateful=body.acknowledge_stateful,
        )
    except (
        GateRefusedError,
        RunConflictError,
        StalePlanError,
        AcknowledgementRequiredError,
    ) as exc:
        status = 403 if isinstance(exc, GateRefusedError) else 409
        try:
            context = await run_context(services, visitor, run_id)
        except RunNotFoundError:  # refused before the run was looked up
            return error_page(request, status, "Not allowed", str(exc))
        return page(request, visitor, "run.html", {**context, "error": str(exc)}, status=status)
    return redirect(request, visitor, f"/runs/{run_id}?notice={_DONE[action]}")


@router.post("/runs/{run_id}/approve")
async def approve(
    run_id: str, request: Request, form: CheckedForm, services: ServicesDep, visitor: SignedIn
) -> Response:
    """Approve the validated plan: `POST /v1/runs/{id}/approve` as the logged-in principal."""
    return await _decide(request, services, visitor, form, run_id, Decision.APPROVE)


@router.post("/runs/{run_id}/reject")
async def reject(
    run_id: str, request: Request, form: CheckedForm, services: ServicesDep, visitor: SignedIn
) -> Response:
    return await _decide(request, services, visitor, form, run_id, Decision.REJECT)


@router.post("/runs/{run_id}/rollback")
async def rollback(
    run_id: str, request: Request, form: CheckedForm, services: ServicesDep, visitor: SignedIn
) -> Response:
    return await _decide(request, services, visitor, form, run_id, Decision.ROLLBACK)


@router.post("/runs/{run_id}/cancel")
async def cancel(
    run_id: str, request: Request, form: CheckedForm, services: ServicesDep, visitor: SignedIn
) -> Response:
    """Cancel a run not applying yet: `POST /v1/runs/{id}/cancel` as the logged-in principal."""
    return await _decide(request, services, visitor, form, run_id, Decision.CANCEL)
