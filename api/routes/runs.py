"""Runs: list, inspect, and decide at the gate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServicesDep
from api.errors import ErrorBody
from crew.service import decide, run_detail
from schemas.approval import Channel, Decision
from schemas.run import RunDetail, RunSummary
from schemas.states import ConductorState

router = APIRouter(prefix="/v1/runs", tags=["runs"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No run with this id."},
    409: {"model": ErrorBody, "description": "The run is not waiting, or was already decided."},
}


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str = Field(default="rest", min_length=1, max_length=200, description="Who decides.")
    reason: str | None = Field(default=None, max_length=2000)


@router.get("", response_model=list[RunSummary])
async def list_runs(
    services: ServicesDep,
    state: ConductorState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[RunSummary]:
    """Newest first; filter by Conductor state."""
    records = await services.runs.list_runs(state=state, limit=limit, offset=offset)
    return [r.to_summary() for r in records]


@router.get("/{run_id}", response_model=RunDetail, responses={404: _ERRORS[404]})
async def get_run(run_id: str, services: ServicesDep) -> RunDetail:
    """State, artifacts so far, the architecture diagram and the audit trail."""
    return await run_detail(services, run_id)


async def _decide(
    services: ServicesDep, run_id: str, decision: Decision, body: DecisionBody | None
) -> RunSummary:
    body = body or DecisionBody()
    record = await decide(
        services, run_id, decision, actor=body.actor, channel=Channel.REST, reason=body.reason
    )
    return record.to_summary()


@router.post(
    "/{run_id}/approve",
    response_model=RunSummary,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
)
async def approve(
    run_id: str, services: ServicesDep, body: DecisionBody | None = None
) -> RunSummary:
    """Approve the validated plan; the run applies exactly that plan file."""
    return await _decide(services, run_id, Decision.APPROVE, body)


@router.post(
    "/{run_id}/reject",
    response_model=RunSummary,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
)
async def reject(
    run_id: str, services: ServicesDep, body: DecisionBody | None = None
) -> RunSummary:
    """Reject the plan; the run ends REJECTED and nothing is applied."""
    return await _decide(services, run_id, Decision.REJECT, body)
