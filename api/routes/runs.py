"""Runs: list, inspect, decide at the gate, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import Field, field_validator

from api.deps import PrincipalDep, ServicesDep
from api.errors import ErrorBody
from crew.access import Principal
from crew.gate.actions import Identity, act
from crew.service import run_detail
from schemas.approval import Channel, Decision
from schemas.base import Contract
from schemas.run import RunDetail, RunSummary
from schemas.states import ConductorState

router = APIRouter(prefix="/v1/runs", tags=["runs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or unknown bearer token."},
    403: {
        "model": ErrorBody,
        "description": "The caller may not decide (not the approver role, or not in "
        "CREW_APPROVERS); the refusal is logged.",
    },
    404: {"model": ErrorBody, "description": "No run with this id."},
    409: {
        "model": ErrorBody,
        "description": "The run is not waiting, was already decided (the message names who "
        "decided first), or its plan went stale since validation.",
    },
}


#: The deepest page `GET /v1/runs` serves (keyset paging is the audit's; runs are few).
MAX_OFFSET = 1_000_000


class DecisionBody(Contract):
    """Why (optional). Who decides is the authenticated principal, never a body field.

    A Contract: strict, and only text the audit can store."""

    reason: str | None = Field(default=None, max_length=2000, description="Recorded in the audit.")
    acknowledge_stateful: bool = Field(
        default=False,
        description="Approve only: acknowledge that the plan replaces or deletes stateful "
        "resources (databases, tables, buckets, volumes). Required when the gate's "
        "`acknowledgement_required` is true; without it the approval is refused (409).",
    )
    actor: str | None = Field(
        default=None,
        description="Not accepted: the actor is the principal of your bearer token.",
        json_schema_extra={"deprecated": True},
    )

    @field_validator("actor")
    @classmethod
    def _no_actor(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "the actor is not taken from the body: it is the principal your bearer token "
                "names; remove this field"
            )


def _identity(principal: Principal) -> Identity:
    return Identity(
        actor=principal.name, channel=Channel.REST, actor_id=principal.name, role=principal.role
    )


@router.get("", response_model=list[RunSummary])
async def list_runs(
    services: ServicesDep,
    state: ConductorState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[RunSummary]:
    """Newest first; filter by Conductor state."""
    records = await services.runs.list_runs(state=state, limit=limit, offset=offset)
    return [r.to_summary() for r in records]


@router.get("/{run_id}", response_model=RunDetail, responses={404: _ERRORS[404]})
async def get_run(run_id: str, services: ServicesDep) -> RunDetail:
    """State, artifacts so far, the architecture diagram and the audit trail."""
    return await run_detail(services, run_id)


async def _act(
    services: ServicesDep,
    principal: Principal,
    run_id: str,
    action: Decision,
    body: DecisionBody | None,
) -> RunSummary:
    reason = body.reason if body else None
    record = await act(
        services,
        run_id,
        action,
        _identity(principal),
        reason=reason,
        acknowledge_stateful=bool(body and body.acknowledge_stateful),
    )
    return record.to_summary()


@router.post(
    "/{run_id}/approve",
    response_model=RunSummary,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
)
async def approve(
    run_id: str, services: ServicesDep, principal: PrincipalDep, body: DecisionBody | None = None
) -> RunSummary:
    """Approve the validated plan (approver role); the run applies exactly that plan file.

    Recorded once: a second decision from any channel is a 409 naming who decided first. A
    plan that replaces or deletes a stateful resource needs `acknowledge_stateful: true`
    (else 409 `acknowledgement_required`, logged as a refusal)."""
    return await _act(services, principal, run_id, Decision.APPROVE, body)


@router.post(
    "/{run_id}/reject",
    response_model=RunSummary,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
)
async def reject(
    run_id: str, services: ServicesDep, principal: PrincipalDep, body: DecisionBody | None = None
) -> RunSummary:
    """Reject the plan (approver role); the run ends REJECTED and nothing is applied."""
    return await _act(services, principal, run_id, Decision.REJECT, body)


@router.post(
    "/{run_id}/rollback",
    response_model=RunSummary,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **{code: _ERRORS[code] for code in (401, 403, 404)},
        409: {"model": ErrorBody, "description": "The run is not DONE, or was rolled back."},
    },
)
async def rollback(
    run_id: str, services: ServicesDep, principal: PrincipalDep, body: DecisionBody | None = None
) -> RunSummary:
    """Roll back a DONE run (approver role): a worker restores the stack to its state before
    the apply."""
    return await _act(services, principal, run_id, Decision.ROLLBACK, body)


@router.post(
    "/{run_id}/cancel",
    response_model=RunSummary,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **{code: _ERRORS[code] for code in (401, 403, 404)},
        409: {
            "model": ErrorBody,
            "description": "The run is being applied or rolled back (it cannot be stopped "
            "half-way), was approved, or already ended; the message says which.",
        },
    },
)
async def cancel(
    run_id: str, services: ServicesDep, principal: PrincipalDep, body: DecisionBody | None = None
) -> RunSummary:
    """Cancel a run that is not applying yet (approver role), wherever it is: queued, backing
    off from an unreachable LLM, building, validating or waiting at the gate.

    It ends REJECTED with the decision `cancel` (who, why) recorded and audited; a worker
    driving it stops."""
    return await _act(services, principal, run_id, Decision.CANCEL, body)
