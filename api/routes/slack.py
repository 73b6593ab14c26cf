"""Slack: slash commands (`/approve`, `/reject`, `/rollback`, `/cancel`) and the gate message's
buttons.

Every request is checked in this order before anything runs: Slack is configured (404
otherwise), the signature verifies over the raw body (401: missing, stale or bad), the request
was not seen before (401 for a replay; Slack's own retry gets an empty 200), and only then is
the body parsed into a GateCommand, a Reply, an Ignore or a Malformed: a signed request that is
not what Slack sends (not UTF-8, a NUL character, a payload of the wrong shape) is a 400 naming
the field, before anything is looked up or written. No body, signed or not, reaches a 500.
A GateCommand goes through the same
path as REST and the CLI (`crew.gate.actions.act`), as the Slack user (who must be in
CREW_APPROVERS).

Slack needs an answer within 3 seconds of sending, so the budget (`ACK_BUDGET_S`) starts when
the request arrives: verifying it and remembering its signature (a database write) spend it
too. Recording a decision is one UPDATE, and the worker resumes the run on its own, so a slash
command normally answers with the outcome itself; if what is left of the budget runs out
first, the command is acknowledged and the outcome follows through the request's
`response_url`. Button clicks are acknowledged at once and always answered
through `response_url` (the message itself is updated by the notifier as the run moves).

`GET /slack/diagrams/{run_id}.png?sig=...` is the one route Slack calls without signing: it
fetches the gate message's diagram image from it, with no credentials. The `sig` in the URL
(an HMAC of the run id under the signing secret, `crew.gate.slack_message.diagram_url`) is
what keeps it from being guessed: a wrong or missing one is a 403, checked before the run is
looked up; an unknown run, or a plan without a rendered diagram, is a 404.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.errors import ErrorBody
from crew.container import Services
from crew.gate.actions import Identity, act
from crew.gate.slack_message import diagram_signature_ok
from crew.gate.slack_webhook import (
    MAX_AGE_S,
    GateCommand,
    Ignore,
    Malformed,
    NotVerified,
    Parsed,
    Reply,
    StackAction,
    StackCommand,
    parse_command,
    parse_interaction,
    verify_slack_request,
)
from crew.service import run_detail
from crew.stack_actions import accept_drift_as, reconcile_as
from schemas.approval import Channel, Decision
from schemas.errors import (
    AcknowledgementRequiredError,
    CrewError,
    GateRefusedError,
    RunConflictError,
    RunNotFoundError,
    StackConflictError,
    StackNotFoundError,
    StalePlanError,
)
from tools.diagram_png import DiagramPng, DiagramRenderError, svg_to_png
from tools.slack import respond

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/slack", tags=["slack"])

#: How long a slash command may take, from arrival to answer, before it is acknowledged with
#: the outcome to follow (Slack allows 3 s; the rest is margin for the network).
ACK_BUDGET_S = 2.0


class SlackRuntime:
    """What the Slack routes keep between requests, owned by the app (`app.state.slack`, made
    by `create_app`) rather than by this module: the outcomes still being worked on after the
    acknowledgement (held so they are not collected) and the last few diagram conversions
    (Slack's proxy may fetch an image more than once)."""

    def __init__(self) -> None:
        self.pending: set[asyncio.Task[None]] = set()
        self.to_png = functools.lru_cache(maxsize=16)(svg_to_png)


def get_slack_runtime(request: Request) -> SlackRuntime:
    runtime: SlackRuntime = request.app.state.slack
    return runtime


SlackRuntimeDep = Annotated[SlackRuntime, Depends(get_slack_runtime)]

_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {
        "model": ErrorBody,
        "description": "Signed, but not what Slack sends: not UTF-8 form data, a NUL "
        "character, a payload that is not Slack's JSON object, a field of the wrong type.",
    },
    401: {"model": ErrorBody, "description": "Not from Slack: bad or stale signature, replay."},
    404: {"model": ErrorBody, "description": "Slack is not configured on this server."},
}


#: How long Slack (and any cache between) may keep a diagram image before asking again.
DIAGRAM_MAX_AGE_S = 3600


def _error(code: int, error: str, message: str) -> JSONResponse:
    return JSONResponse(
        status_code=code, content=ErrorBody(error=error, message=message).model_dump()
    )


def _ephemeral(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _malformed(parsed: Malformed) -> JSONResponse:
    logger.warning("refused a malformed Slack request: %s", parsed.reason)
    return _error(status.HTTP_400_BAD_REQUEST, "malformed_slack_request", parsed.reason)


async def _check(request: Request, services: Services) -> bytes | JSONResponse:
    """The raw body of a genuine, first-seen Slack request, or the refusal to send back."""
    secret = services.settings.slack_signing_secret
    if secret is None:
        return JSONResponse(
            status_code=status.HTTP_404_NOT_FOUND,
            content=ErrorBody(
                error="slack_disabled",
                message="Slack is not configured here: set CREW_SLACK_SIGNING_SECRET",
            ).model_dump(),
        )
    body = await request.body()
    now = services.context.clock()
    verdict = verify_slack_request(
        secret.get_secret_value(), body, request.headers, now.timestamp()
    )
    if isinstance(verdict, NotVerified):
        logger.warning("refused a Slack request: %s", verdict.reason)
        return JSONResponse(
            status_code=status.HTTP_401_UNAUTHORIZED,
            content=ErrorBody(error="invalid_slack_request", message=verdict.reason).model_dump(),
        )
    key = hashlib.sha256(verdict.signature.encode()).hexdigest()
    expires = now + timedelta(seconds=2 * MAX_AGE_S)
    if not await services.gate.remember_request(key, expires):
        if request.headers.get("x-slack-retry-num"):
            return JSONResponse({})  # Slack retrying what we already handled: stop it.
        logger.warning("refused a replayed Slack request")
        return JSONResponse(
            status_code=status.HTTP_401_UNAUTHORIZED,
            content=ErrorBody(
                error="replayed_slack_request",
                message="this request was already handled; a replay is refused",
            ).model_dump(),
        )
    return body


_DONE = {
    Decision.APPROVE: ":white_check_mark: Approved run `{run}`; it applies exactly the "
    "validated plan now.",
    Decision.REJECT: ":no_entry: Rejected run `{run}`; nothing is applied.",
    Decision.ROLLBACK: ":rewind: Rolling back run `{run}` to its state before the apply.",
    Decision.CANCEL: ":octagonal_sign: Cancelled run `{run}`; it ends REJECTED and nothing is "
    "applied.",
}


async def outcome(services: Services, command: GateCommand) -> str:
    """Take the decision as the Slack user; the answer to show them."""
    who = Identity(actor=command.actor, channel=Channel.SLACK, actor_id=command.user_id)
    try:
        await act(
            services,
            command.run_id,
            command.action,
            who,
            reason=command.reason,
            plan_digest=command.plan_digest,
            acknowledge_stateful=command.acknowledge_stateful,
        )
    except GateRefusedError as exc:
        return f":lock: {exc}"
    except RunNotFoundError as exc:
        return f":grey_question: {exc}"
    except (RunConflictError, StalePlanError, AcknowledgementRequiredError) as exc:
        return f":warning: {exc}"
    except CrewError as exc:
        logger.error("Slack %s of run %s failed: %s", command.action.value, command.run_id, exc)
        return f":x: could not {command.action.value} run `{command.run_id}`: {exc}"
    return _DONE[command.action].format(run=command.run_id)


async def stack_outcome(services: Services, command: StackCommand) -> str:
    """Reconcile a stack or accept its drift as the Slack user; the answer to show them."""
    who = Identity(actor=command.actor, channel=Channel.SLACK, actor_id=command.user_id)
    stack = command.stack_id
    try:
        if command.action is StackAction.RECONCILE:
            run_id = await reconcile_as(services, stack, who)
            return (
                f":arrows_counterclockwise: Reconciling stack `{stack}`: run `{run_id}` "
                "re-applies the declared configuration once approved (its gate message follows)."
            )
        await accept_drift_as(services, stack, who, command.fingerprint)
    except GateRefusedError as exc:
        return f":lock: {exc}"
    except StackNotFoundError as exc:
        return f":grey_question: {exc}"
    except (StackConflictError, RunConflictError) as exc:
        return f":warning: {exc}"
    except CrewError as exc:
        logger.error("Slack %s of stack %s failed: %s", command.action.value, stack, exc)
        return f":x: could not {command.action.value} stack `{stack}`: {exc}"
    return f":ok_hand: Drift of stack `{stack}` accepted; the same drift is not announced again."


async def _answer_later(
    services: Services, command: GateCommand | StackCommand, work: asyncio.Task[str]
) -> None:
    text = await work
    if command.response_url is None:
        return
    try:
        await respond(command.response_url, text)
    except CrewError as exc:
        logger.warning("could not answer Slack user %s: %s", command.user_id, exc)


def _in_background(
    runtime: SlackRuntime,
    services: Services,
    command: GateCommand | StackCommand,
    work: asyncio.Task[str],
) -> None:
    task = asyncio.create_task(_answer_later(services, command, work))
    runtime.pending.add(task)
    task.add_done_callback(runtime.pending.discard)


@router.post("/commands", responses=_RESPONSES)
async def slash_command(
    request: Request, services: ServicesDep, runtime: SlackRuntimeDep
) -> Response:
    """`/approve RUN_ID`, `/reject RUN_ID [reason]`, `/rollback RUN_ID [reason]`,
    `/cancel RUN_ID [reason]`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ACK_BUDGET_S  # before the checks: they spend Slack's 3 s too
    checked = await _check(request, services)
    if isinstance(checked, Response):
        return checked
    parsed: Parsed = parse_command(checked)
    if isinstance(parsed, Malformed):
        return _malformed(parsed)
    if isinstance(parsed, Ignore):
        return Response(status_code=status.HTTP_200_OK)
    if isinstance(parsed, Reply):
        return _ephemeral(parsed.text)
    if isinstance(parsed, StackCommand):  # buttons only: a slash command never parses to one
        return Response(status_code=status.HTTP_200_OK)
    work = asyncio.create_task(outcome(services, parsed))
    done, _ = await asyncio.wait({work}, timeout=max(0.0, deadline - loop.time()))
    if work in done:
        return _ephemeral(work.result())
    _in_background(runtime, services, parsed, work)
    return _ephemeral(f"Working on `{parsed.action.value} {parsed.run_id}`; the outcome follows.")


@router.post("/interactions", responses=_RESPONSES)
async def interaction(
    request: Request, services: ServicesDep, runtime: SlackRuntimeDep
) -> Response:
    """The Approve / Reject buttons of a run's gate message, and the Reconcile / Accept
    buttons of a drift message."""
    checked = await _check(request, services)
    if isinstance(checked, Response):
        return checked
    parsed = parse_interaction(checked)
    if isinstance(parsed, Malformed):
        return _malformed(parsed)
    if isinstance(parsed, GateCommand):
        _in_background(runtime, services, parsed, asyncio.create_task(outcome(services, parsed)))
    elif isinstance(parsed, StackCommand):
        _in_background(
            runtime, services, parsed, asyncio.create_task(stack_outcome(services, parsed))
        )
    return Response(status_code=status.HTTP_200_OK)


@router.get(
    "/diagrams/{run_id}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The plan's diagram as a PNG."},
        403: {"model": ErrorBody, "description": "Missing or wrong `sig` for this run."},
        404: {
            "model": ErrorBody,
            "description": "Slack is not configured, no such run, or its plan has no rendered "
            "diagram.",
        },
    },
)
async def diagram(
    run_id: str,
    services: ServicesDep,
    runtime: SlackRuntimeDep,
    request: Request,
    sig: str = "",
) -> Response:
    """The run's architecture diagram as a PNG, for the image in its gate message.

    No credentials (Slack fetches it as is); `sig` is the HMAC that came in the message."""
    secret = services.settings.slack_signing_secret
    if secret is None:
        return _error(
            status.HTTP_404_NOT_FOUND,
            "slack_disabled",
            "Slack is not configured here: set CREW_SLACK_SIGNING_SECRET",
        )
    if not diagram_signature_ok(secret.get_secret_value(), run_id, sig):
        return _error(
            status.HTTP_403_FORBIDDEN, "bad_signature", "this diagram URL is not signed for it"
        )
    try:
        detail = await run_detail(services, run_id, with_audit=False)
    except RunNotFoundError:
        return _error(status.HTTP_404_NOT_FOUND, "run_not_found", f"no run {run_id}")
    plan = detail.artifacts.plan
    if plan is None or not plan.diagram_svg:
        return _error(
            status.HTTP_404_NOT_FOUND,
            "no_diagram",
            f"run {run_id} has no rendered diagram (the Mermaid CLI renders it when installed)",
        )
    etag = '"' + hashlib.sha256(plan.diagram_svg.encode()).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": f"public, max-age={DIAGRAM_MAX_AGE_S}",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    try:
        png: DiagramPng = await asyncio.to_thread(runtime.to_png, plan.diagram_svg)
    except DiagramRenderError as exc:
        logger.warning("diagram of run %s not converted: %s", run_id, exc)
        return _error(
            status.HTTP_404_NOT_FOUND, "no_diagram", f"run {run_id} has no usable diagram: {exc}"
        )
    return Response(content=png.data, media_type="image/png", headers=headers)
