"""Stacks: what each goal has deployed, its runs, resources and outputs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from api.deps import Approver, ServicesDep, Submitter, Viewer
from api.errors import ErrorBody
from crew.drift import accept_drift, check_drift
from crew.revalidate import revalidate_stack
from crew.revisions import decommission_stack, reconcile_stack, revise_stack
from crew.stacks import list_stacks, stack_detail
from memory.runs import RunRecord
from schemas.drift import DriftReport
from schemas.goal import GoalStatement
from schemas.run import RunCreated
from schemas.stack import StackDetail, StackRevalidation, StackSummary

router = APIRouter(prefix="/v1/stacks", tags=["stacks"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or unknown bearer token."},
    403: {"model": ErrorBody, "description": "The token's role may not view."},
}


@router.get("", response_model=list[StackSummary], responses=_ERRORS)
async def get_stacks(services: ServicesDep, _viewer: Viewer) -> list[StackSummary]:
    """Every stack a goal reached a plan for, most recently changed first, with its status
    (planned, deployed, rolled back, needs attention)."""
    return await list_stacks(services)


@router.get(
    "/{stack_id}",
    response_model=StackDetail,
    responses={**_ERRORS, 404: {"model": ErrorBody, "description": "No stack with this id."}},
)
async def get_stack(stack_id: str, services: ServicesDep, _viewer: Viewer) -> StackDetail:
    """The stack's runs (newest first) and what its Terraform state holds now."""
    return await stack_detail(services, stack_id)


_DRIFT_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorBody, "description": "No stack with this id."},
    409: {
        "model": ErrorBody,
        "description": "Nothing deployed to check (or no drift to accept), or a run holds the "
        "stack (the message names it).",
    },
}


@router.post("/{stack_id}/drift", response_model=DriftReport, responses=_DRIFT_ERRORS)
async def post_drift_check(
    stack_id: str, services: ServicesDep, submitter: Submitter
) -> DriftReport:
    """Check the deployed stack for drift now (submitter role): a plan of its applied
    configuration under the stack's lock, never applied.

    A drift found for the first time is announced (OpsEvent `drift.detected`, gate log)."""
    return await check_drift(services, stack_id, trigger=f"rest:{submitter.name}")


@router.post("/{stack_id}/drift/accept", response_model=DriftReport, responses=_DRIFT_ERRORS)
async def post_drift_accept(
    stack_id: str, services: ServicesDep, approver: Approver
) -> DriftReport:
    """Accept the stack's last detected drift (approver role): recorded with who accepted it,
    and the same drift is not announced again."""
    return await accept_drift(services, stack_id, actor=approver.name)


_REVISION_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorBody, "description": "No stack with this id."},
    409: {
        "model": ErrorBody,
        "description": "A revision of the stack is still running (the message names it), "
        "nothing is deployed (reconcile), or the goal belongs to another stack.",
    },
}


def _created(record: RunRecord, response: Response) -> RunCreated:
    response.headers["Location"] = f"/v1/runs/{record.run_id}"
    return RunCreated(
        run_id=record.run_id,
        goal_id=record.goal_id,
        revision=record.revision,
        state=record.state,
        created=True,
    )


@router.post(
    "/{stack_id}/revisions",
    response_model=RunCreated,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_REVISION_ERRORS,
)
async def post_revision(
    stack_id: str,
    goal: GoalStatement,
    services: ServicesDep,
    response: Response,
    submitter: Submitter,
) -> RunCreated:
    """Revise the stack (submitter role): a new run of its goal with this GoalStatement,
    planned against what is deployed. The gate shows create/update/replace/destroy and the
    resource diff; replacing or deleting a stateful resource needs an acknowledged approval;
    a failed apply restores the applied revision."""
    record = await revise_stack(services, stack_id, goal, actor=submitter.name)
    return _created(record, response)


@router.post(
    "/{stack_id}/drift/reconcile",
    response_model=RunCreated,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_REVISION_ERRORS,
)
async def post_drift_reconcile(
    stack_id: str, services: ServicesDep, response: Response, submitter: Submitter
) -> RunCreated:
    """Reconcile a drifted stack (submitter role): a new revision re-applying the applied
    revision's declared configuration, through the normal validate + approve gate."""
    record = await reconcile_stack(services, stack_id, actor=submitter.name)
    return _created(record, response)


@router.post(
    "/{stack_id}/decommission",
    response_model=RunCreated,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_REVISION_ERRORS,
)
async def post_decommission(
    stack_id: str, services: ServicesDep, response: Response, submitter: Submitter
) -> RunCreated:
    """Decommission the stack (submitter role): a revision whose destroy plan is validated
    by Sentinel and waits at the approval gate (deleting a database, table or bucket needs
    the acknowledged approval); once applied the stack is `destroyed`."""
    record = await decommission_stack(services, stack_id, actor=submitter.name)
    return _created(record, response)


@router.post("/{stack_id}/revalidate", response_model=StackRevalidation, responses=_DRIFT_ERRORS)
async def post_revalidate(
    stack_id: str, services: ServicesDep, submitter: Submitter
) -> StackRevalidation:
    """Validate the deployed stack again now with today's policy and scanners (submitter
    role), as the nightly job does: its applied configuration is planned under the stack's
    lock (never applied) and judged by Sentinel. Findings its own validation did not have are
    new, and announced once (OpsEvent `stack.findings`, gate log)."""
    return await revalidate_stack(services, stack_id, trigger=f"rest:{submitter.name}")
