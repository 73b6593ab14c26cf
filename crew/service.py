"""Application operations shared by the REST API and the CLI (same path, same rules)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from crew.container import Services
from memory.runs import RunRecord
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.goal import GoalStatement
from schemas.run import RunArtifacts, RunDetail

_ARTIFACT_FIELDS = tuple(RunArtifacts.model_fields)


def new_run_id(at: datetime) -> str:
    """Sortable and readable: creation time (UTC) plus 32 random bits."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


async def submit_goal(services: Services, goal: GoalStatement) -> tuple[RunRecord, bool]:
    """Create a PENDING run (a worker picks it up), or return the run of an earlier request
    with the same goal_id."""
    now = services.context.clock()
    return await services.runs.create(goal, run_id=new_run_id(now), at=now)


async def decide(
    services: Services,
    run_id: str,
    decision: Decision,
    *,
    actor: str,
    channel: Channel,
    reason: str | None = None,
) -> RunRecord:
    """Record a gate decision once; the worker holding the checkpoint resumes the run."""
    record = ApprovalDecision(
        run_id=run_id,
        decision=decision,
        actor=actor,
        channel=channel,
        reason=reason,
        at=services.context.clock(),
    )
    return await services.runs.record_decision(record)


async def run_detail(services: Services, run_id: str, *, with_audit: bool = True) -> RunDetail:
    record = await services.runs.get(run_id)
    snapshot = await services.graph.aget_state({"configurable": {"thread_id": run_id}})
    values: dict[str, Any] = dict(snapshot.values or {})
    artifacts = RunArtifacts(**{k: values.get(k) for k in _ARTIFACT_FIELDS})
    plan = artifacts.plan
    return RunDetail(
        **record.to_summary().model_dump(),
        goal=record.goal,
        artifacts=artifacts,
        diagram=plan.diagram if plan else None,
        waiting_for_approval=bool(snapshot.interrupts) and record.decision is None,
        error=values.get("error"),
        audit=await services.runs.audit(run_id) if with_audit else [],
    )
