"""Stacks: what each goal has deployed, its runs, resources and outputs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Approver, ServicesDep, Submitter, Viewer
from api.errors import ErrorBody
from crew.drift import accept_drift, check_drift
from crew.stacks import list_stacks, stack_detail
from schemas.drift import DriftReport
from schemas.stack import StackDetail, StackSummary

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
