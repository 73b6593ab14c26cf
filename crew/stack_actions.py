"""The drift message's buttons: Reconcile or Accept a stack's drift, as a Slack user.

The same approver check as the gate's buttons (`crew.access.refusal_reason`; a refusal is
logged on the gate log with who and why), then the same operations as the CLI and REST:
`crew.revisions.reconcile_stack` (a revision that stops at the approval gate) and
`crew.drift.accept_drift`. An Accept from a message about an older drift than the stack's last
one is refused: the clicker did not see what they would accept.
"""

from __future__ import annotations

from crew.access import refusal_reason
from crew.container import Services
from crew.drift import accept_drift
from crew.gate.actions import Identity
from crew.gate.alerts import emit_alert
from crew.revisions import reconcile_stack
from crew.stacks import find_stack
from schemas.approval import GateLogEntry
from schemas.errors import GateRefusedError, StackConflictError
from schemas.events import EventType


async def reconcile_as(services: Services, stack_id: str, who: Identity) -> str:
    """Start the reconcile revision; returns its run id."""
    await _allowed(services, stack_id, "reconcile", who)
    record = await reconcile_stack(services, stack_id, actor=who.actor)
    return record.run_id


async def accept_drift_as(
    services: Services, stack_id: str, who: Identity, fingerprint: str | None
) -> None:
    """Accept the stack's last drift, if it is the one the message showed."""
    await _allowed(services, stack_id, "accept drift", who)
    key, _ = await find_stack(services, stack_id)
    last = await services.drift.latest(key.id)
    if fingerprint is not None and (last is None or last.report.fingerprint != fingerprint):
        raise StackConflictError(
            stack_id,
            f"stack {stack_id} drifted differently since this message; check it again "
            f"(crew drift {stack_id}) and accept what it shows",
        )
    await accept_drift(services, stack_id, actor=who.actor)


async def _allowed(services: Services, stack_id: str, action: str, who: Identity) -> None:
    refusal = refusal_reason(services.settings.approvers, who.channel, who.actor_id, who.role)
    if refusal is None:
        return
    await emit_alert(
        services,
        GateLogEntry(
            at=services.context.clock(),
            kind=EventType.APPROVAL_REFUSED.value,
            channel=who.channel,
            actor=who.actor,
            action=action,
            detail=f"{action} of stack {stack_id} refused: {refusal}",
        ),
    )
    raise GateRefusedError(who.actor, f"refused: {refusal}")
