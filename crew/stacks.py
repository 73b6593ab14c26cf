"""Stacks as a first-class view: what each goal has deployed, across its runs.

Read-only application operations shared by the REST API, the CLI and the console. A stack's
status comes from its latest run that touched the cloud; its resources and outputs from its
Terraform state (tools/state.py), read where the state lives.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from crew.container import Services
from memory.runs import RunRecord
from nodes.forge.common import revision_dir, state_backend
from schemas.errors import CrewError, StackNotFoundError
from schemas.stack import (
    RunOutcome,
    StackDetail,
    StackResource,
    StackRevision,
    StackStatus,
    StackSummary,
)
from tools.backend import STATE_FILE, StateBackend
from tools.stack import StackKey
from tools.state import read_stack_state

logger = logging.getLogger(__name__)

_STATUS_OF = {
    RunOutcome.APPLIED: StackStatus.DEPLOYED,
    RunOutcome.ROLLED_BACK: StackStatus.ROLLED_BACK,
    RunOutcome.APPLY_FAILED: StackStatus.NEEDS_ATTENTION,
    RunOutcome.ROLLBACK_FAILED: StackStatus.NEEDS_ATTENTION,
    RunOutcome.DESTROYED: StackStatus.DESTROYED,
}


def outcome_of(record: RunRecord) -> RunOutcome:
    """The run's outcome as its last checkpoint recorded it (runs from before the field was
    recorded: from the state alone)."""
    recorded = record.summary.get("outcome")
    if isinstance(recorded, str) and recorded in RunOutcome._value2member_map_:
        return RunOutcome(recorded)
    return RunOutcome.NOT_APPLIED if record.state.is_terminal else RunOutcome.IN_PROGRESS


def stack_key(record: RunRecord) -> StackKey:
    return StackKey(goal_id=record.goal_id, region=record.goal.region)


def stack_status(runs: Sequence[RunRecord]) -> StackStatus:
    """From the newest run (runs are newest first) whose outcome touched the cloud. A revision
    rolled back to the applied revision it was planned against leaves that one standing."""
    for run in runs:
        outcome = outcome_of(run)
        if outcome is RunOutcome.ROLLED_BACK and run.base is not None:
            continue
        status = _STATUS_OF.get(outcome)
        if status is not None:
            return status
    return StackStatus.PLANNED


def _summary(key: StackKey, runs: Sequence[RunRecord]) -> StackSummary:
    latest = runs[0]
    applied = next((r for r in runs if outcome_of(r) is RunOutcome.APPLIED), latest)
    return StackSummary(
        stack_id=key.id,
        goal_id=key.goal_id,
        region=key.region,
        title=latest.title,
        status=stack_status(runs),
        latest_run_id=latest.run_id,
        latest_state=latest.state,
        runs=len(runs),
        forecast_monthly_usd=applied.summary.get("forecast_monthly_usd"),
        budget_monthly_usd=latest.summary.get("budget_monthly_usd"),
        updated_at=max(r.updated_at for r in runs),
    )


def group_stacks(records: Iterable[RunRecord]) -> dict[StackKey, list[RunRecord]]:
    """Runs by stack, each list newest first (the input's order is kept)."""
    stacks: dict[StackKey, list[RunRecord]] = defaultdict(list)
    for record in records:
        stacks[stack_key(record)].append(record)
    return dict(stacks)


def _location(backend: StateBackend, key: StackKey, workspace: Path) -> str:
    if backend.kind == "s3":
        return f"s3://{backend.bucket}/{backend.key_prefix.strip('/')}/{key.id}/{STATE_FILE}"
    return str((backend.local_dir / key.id if backend.local_dir else workspace) / STATE_FILE)


async def list_stacks(services: Services) -> list[StackSummary]:
    """Every stack that reached a plan, most recently changed first."""
    grouped = group_stacks(await services.stacks.planned_runs())
    summaries = [_summary(key, runs) for key, runs in grouped.items()]
    return sorted(summaries, key=lambda s: (s.updated_at, s.stack_id), reverse=True)


async def find_stack(services: Services, stack_id: str) -> tuple[StackKey, list[RunRecord]]:
    for key in group_stacks(await services.stacks.planned_runs()):
        if key.id == stack_id:
            # The list above is bounded; the stack's own runs are read in full.
            return key, await services.stacks.runs_of_goal(key.goal_id, key.region)
    raise StackNotFoundError(stack_id)


async def stack_detail(services: Services, stack_id: str) -> StackDetail:
    """The stack's runs, and its resources and outputs as its state holds them now."""
    key, runs = await find_stack(services, stack_id)
    backend = state_backend(services.context)
    workspace = revision_dir(services.settings.workspaces_dir, runs[0].run_id, runs[0].revision)
    resources: list[StackResource] | None = None
    outputs: dict[str, object] = {}
    state_error: str | None = None
    try:
        state = await read_stack_state(backend, key, services.context.terraform, workspace)
    except (OSError, ValueError, CrewError) as exc:
        state_error = f"the state could not be read: {exc}"
        logger.warning("stack %s: %s", key.id, state_error)
    else:
        resources = [
            StackResource(address=r.address, type=r.type, name=r.name) for r in state.resources
        ]
        outputs = dict(state.outputs)
    drift = await services.drift.latest(key.id)
    return StackDetail(
        **_summary(key, runs).model_dump(),
        last_drift_check=drift.report.checked_at if drift else None,
        last_drift=drift.report if drift else None,
        drift_accepted_by=drift.accepted_by if drift else None,
        revisions=[
            StackRevision(
                run_id=r.run_id,
                revision=r.revision,
                state=r.state,
                outcome=outcome_of(r),
                purpose=r.purpose,
                created_at=r.created_at,
                updated_at=r.updated_at,
                forecast_monthly_usd=r.summary.get("forecast_monthly_usd"),
            )
            for r in runs
        ],
        resources=resources,
        outputs=outputs,
        state_location=_location(backend, key, workspace),
        state_error=state_error,
    )
