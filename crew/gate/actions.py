"""Deciding at the gate: the one path REST, Slack and the CLI take to approve, reject, roll back
or cancel.

`act` checks who is asking (`crew.access.refusal_reason`; a refusal is logged with who,
what and why), refuses an approval of a plan that went stale, and then records the decision
once (`crew.service.decide`: a second decision of any channel is a conflict naming the first)
or starts a rollback (`crew.service.request_rollback`, Forge's path). The worker holding the
run's checkpoint resumes it with `Command(resume=decision)`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crew.access import Role, refusal_reason
from crew.container import Services
from crew.gate.alerts import emit_alert
from crew.lifecycle import cancel_run
from crew.service import decide, request_rollback
from memory.runs import RunRecord
from schemas.approval import ApprovalDecision, ApprovalRequest, Channel, Decision, GateLogEntry
from schemas.errors import AcknowledgementRequiredError, GateRefusedError, StalePlanError
from schemas.events import EventType
from schemas.states import ConductorState
from sentinel.stateful import describe_stateful
from tools.workspace import file_digest


@dataclass(frozen=True)
class Identity:
    """Who asks, as the channel authenticated them."""

    actor: str
    """What the audit log records (a principal name, `alice (U012AB)`, a CLI --actor)."""
    channel: Channel
    actor_id: str
    """What the approver list is matched against (principal, Slack user id, CLI actor)."""
    role: Role | None = None
    """The token's role (REST only)."""


async def act(
    services: Services,
    run_id: str,
    action: Decision,
    who: Identity,
    *,
    reason: str | None = None,
    plan_digest: str | None = None,
    acknowledge_stateful: bool = False,
) -> RunRecord:
    """Approve, reject, roll back or cancel `run_id` as `who`.

    Raises GateRefusedError (not an approver), RunNotFoundError, StalePlanError, or
    RunConflictError (not waiting / not DONE / already decided, naming who decided first).
    `plan_digest` is the digest a Slack button carries: an old message cannot approve a
    newer plan. An approval of a plan that replaces or deletes a stateful resource needs
    `acknowledge_stateful` (else AcknowledgementRequiredError, logged as a refusal).
    """
    refusal = refusal_reason(services.settings.approvers, who.channel, who.actor_id, who.role)
    if refusal is not None:
        await _refuse(services, run_id, action, who, refusal)
        raise GateRefusedError(who.actor, f"refused: {refusal}")
    if action is Decision.ROLLBACK:
        return await request_rollback(
            services, run_id, actor=who.actor, channel=who.channel, reason=reason
        )
    if action is Decision.CANCEL:
        return await cancel_run(
            services, run_id, actor=who.actor, channel=who.channel, reason=reason
        )
    if action is Decision.APPROVE:
        stale = await stale_reason(services, run_id, plan_digest)
        if stale is not None:
            await _refuse(services, run_id, action, who, stale)
            raise StalePlanError(run_id, f"refused: {stale}")
        missing = await missing_acknowledgement(services, run_id, acknowledge_stateful)
        if missing is not None:
            await _refuse(services, run_id, action, who, missing)
            raise AcknowledgementRequiredError(run_id, f"refused: {missing}")
    return await decide(
        services,
        run_id,
        action,
        actor=who.actor,
        channel=who.channel,
        reason=reason,
        acknowledge_stateful=acknowledge_stateful and action is Decision.APPROVE,
    )


async def missing_acknowledgement(
    services: Services, run_id: str, acknowledged: bool
) -> str | None:
    """Why approving `run_id` needs the data-loss acknowledgement it lacks, or None."""
    if acknowledged:
        return None
    config: Any = {"configurable": {"thread_id": run_id}}
    values: dict[str, Any] = dict((await services.graph.aget_state(config)).values or {})
    request = values.get("approval_request")
    if not isinstance(request, ApprovalRequest) or not request.acknowledgement_required:
        return None
    return (
        f"the plan of run {run_id} {describe_stateful(request.stateful_changes)}: data may be "
        "lost. Approve with the acknowledgement (REST: acknowledge_stateful true; CLI: "
        "--acknowledge-stateful; Slack: the 'Approve, data loss acknowledged' button; "
        "console: the checkbox)"
    )


async def stale_reason(services: Services, run_id: str, plan_digest: str | None) -> str | None:
    """Why approving `run_id` now would apply something other than what was validated, or
    None. Only a run undecided at the gate is checked; any other is refused by `decide` with
    the conflict that names its state or who decided first."""
    record = await services.runs.get(run_id)
    if record.state is not ConductorState.WAIT_FOR_APPROVE or record.decision is not None:
        return None
    latest = await services.runs.latest_of_goal(record.goal_id)
    if latest is not None and latest.revision > record.revision:
        return (
            f"revision {latest.revision} of this stack (run {latest.run_id}) exists; "
            f"revision {record.revision} is stale"
        )
    config: Any = {"configurable": {"thread_id": run_id}}
    values: dict[str, Any] = dict((await services.graph.aget_state(config)).values or {})
    request, build, plan = values.get("approval_request"), values.get("build"), values.get("plan")
    if request is None or build is None or plan is None:
        return f"run {run_id} has no validated plan to approve"
    if plan_digest is not None and plan_digest != request.plan_file_digest:
        return (
            f"this approval is for an older plan of run {run_id} (plan file "
            f"{plan_digest[:12]}, now {request.plan_file_digest[:12]}); review the current one"
        )
    if request.plan_id != plan.plan_id or request.plan_file_digest != build.plan_file_digest:
        return f"the plan of run {run_id} changed after it was validated; it must be re-validated"
    if build.plan_file is None:
        return f"run {run_id} has no plan file to apply"
    revision = values.get("revision", plan.revision)
    newer = services.settings.workspaces_dir / run_id / f"r{revision + 1}"
    return await asyncio.to_thread(
        _on_disk, run_id, revision, newer, Path(build.workspace) / build.plan_file, request
    )


def _on_disk(
    run_id: str, revision: int, newer: Path, plan_file: Path, request: ApprovalRequest
) -> str | None:
    """The file system half of `stale_reason` (blocking, so it runs in a thread)."""
    if newer.exists():
        return f"revision {revision + 1} of run {run_id} exists; revision {revision} is stale"
    if not plan_file.parent.is_dir():
        # Another host's worker built it (scale-out without a shared volume): the apply
        # node checks the digest there before terraform runs.
        return None
    actual = _digest_or_none(plan_file)
    if actual != request.plan_file_digest:
        return (
            f"the plan file of run {run_id} changed since it was validated "
            f"({'missing' if actual is None else actual[:12]} instead of "
            f"{request.plan_file_digest[:12]}); it must be planned and validated again"
        )
    return None


def _digest_or_none(path: Path) -> str | None:
    try:
        return file_digest(path)
    except FileNotFoundError:
        return None


async def _refuse(
    services: Services, run_id: str, action: Decision, who: Identity, why: str
) -> None:
    at = services.context.clock()
    attempt = ApprovalDecision(
        run_id=run_id[:200],
        decision=action,
        actor=who.actor,
        channel=who.channel,
        reason=why[:2000],
        at=at,
    )
    await emit_alert(
        services,
        GateLogEntry(
            at=at,
            kind=EventType.APPROVAL_REFUSED.value,
            run_id=run_id[:200],
            channel=who.channel,
            actor=who.actor,
            action=action.value,
            detail=why,
        ),
        payload=attempt,
    )
