"""Ending a run from outside its graph's flow: a human's cancel, and giving up on a run whose
step keeps failing with an unexpected error.

Both end the run in an existing terminal state (the names in schemas/states.py are locked): a
cancel ends it REJECTED with the decision `cancel` recorded (who, channel, why; audit event
`run.cancelled`); giving up ends it BLOCKED with the error (audit event `run.gave_up`). Either is
written like every other transition: a checkpoint through the auditing saver, fenced by the
run's lease, so the audit row, the checkpoint and the run row change together or not at all.

A cancel is for a run not yet applying. The UPDATE that records it also takes the run's lease
from whoever holds it (`RunStore.request_cancel`): a worker driving the run (waiting on the
LLM, or on terraform plan) finds its lease gone at its next renewal (every
CREW_POLL_INTERVAL_S at most) and stops, killing its subprocesses; any checkpoint it still
tries to write is refused, so the run is never left half-way. The canceller then writes the
transition under the lease it took. If it dies in between, the lease expires, and the worker
that claims the run next finds the cancel recorded and finishes it (`Worker.drive`).
"""

from __future__ import annotations

import logging
from typing import Any

from langgraph.types import Command, StateSnapshot

from crew.container import Services
from graph.state import RunState, start_of, transition
from memory.checkpointer import LEASE_OWNER_KEY
from memory.runs import RunRecord
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.events import EventType
from schemas.states import ConductorState

logger = logging.getLogger(__name__)

#: States a cancel may end: everything before the apply. A run approved at the gate is
#: committed to its apply (roll it back once DONE); APPLYING and ROLLBACK change the cloud.
CANCELLABLE = frozenset(
    {
        ConductorState.PENDING,
        ConductorState.IN_PROGRESS,
        ConductorState.VALIDATING,
        ConductorState.READY_FOR_APPLY,
        ConductorState.WAIT_FOR_APPROVE,
    }
)

#: The node an out-of-flow update is written as, by the node the run would run next: one
#: whose routing ends the run once its state is terminal (graph/graph.py).
_AS_NODE = {
    "design": "design",
    "build": "build",
    "validate": "validate",
    "request_approval": "validate",
    "await_approval": "await_approval",
}


def is_cancel(decision: ApprovalDecision | None) -> bool:
    return decision is not None and decision.decision is Decision.CANCEL


def cancel_note(decision: ApprovalDecision) -> str:
    """What the run's `error` and the audit note say about a cancel."""
    why = f": {decision.reason}" if decision.reason else ""
    return f"cancelled by {decision.actor} via {decision.channel.value}{why}"


async def cancel_run(
    services: Services, run_id: str, *, actor: str, channel: Channel, reason: str | None
) -> RunRecord:
    """Cancel `run_id` as `actor`: it ends REJECTED with decision `cancel`.

    Raises RunNotFoundError, or RunConflictError naming why not (applying, approved, ended,
    already decided)."""
    decision = ApprovalDecision(
        run_id=run_id,
        decision=Decision.CANCEL,
        actor=actor,
        channel=channel,
        reason=reason,
        at=services.context.clock(),
    )
    holder = f"{services.worker_id}/cancel"
    record, previous = await services.runs.request_cancel(
        decision, holder, services.settings.lease_ttl_s
    )
    logger.info(
        "run %s cancelled by %s in %s%s",
        run_id,
        actor,
        record.state.value,
        f"; worker {previous} stops driving it" if previous else "",
        extra={"run_id": run_id, "actor": actor},
    )
    try:
        await finish_cancel(services, record, holder)
    finally:
        await services.runs.release(run_id, holder)
    return await services.runs.get(run_id)


async def finish_cancel(services: Services, record: RunRecord, lease_owner: str) -> None:
    """Write the cancel recorded on `record` as the run's transition to REJECTED, holding the
    run's lease as `lease_owner`. At the gate the interrupt is answered with the decision (as
    a human's reject is); elsewhere the run's state is updated out of its flow."""
    decision = record.decision
    assert decision is not None
    assert is_cancel(decision)
    config: Any = {"configurable": {"thread_id": record.run_id, LEASE_OWNER_KEY: lease_owner}}
    graph = services.graph
    snapshot = await graph.aget_state(config)
    if snapshot.interrupts:
        async for _ in graph.astream(
            Command(resume=decision.model_dump(mode="json")),
            config,
            context=services.context,
            stream_mode="updates",
            durability="sync",
        ):
            pass
        return
    await _end(
        services,
        record,
        snapshot,
        config,
        to=ConductorState.REJECTED,
        event=EventType.RUN_CANCELLED,
        actor=decision.actor,
        error=cancel_note(decision),
        decision=decision,
    )


async def give_up(services: Services, record: RunRecord, lease_owner: str, error: str) -> None:
    """End a run whose step failed CREW_RUN_MAX_ATTEMPTS times: BLOCKED, with the error."""
    config: Any = {"configurable": {"thread_id": record.run_id, LEASE_OWNER_KEY: lease_owner}}
    snapshot = await services.graph.aget_state(config)
    attempts = services.settings.run_max_attempts
    await _end(
        services,
        record,
        snapshot,
        config,
        to=ConductorState.BLOCKED,
        event=EventType.RUN_GAVE_UP,
        actor="conductor",
        error=f"gave up after {attempts} failed attempts (CREW_RUN_MAX_ATTEMPTS): {error}",
    )


async def _end(
    services: Services,
    record: RunRecord,
    snapshot: StateSnapshot,
    config: Any,
    *,
    to: ConductorState,
    event: EventType,
    actor: str,
    error: str,
    decision: ApprovalDecision | None = None,
) -> None:
    values: RunState = dict(snapshot.values or {})  # type: ignore[assignment]
    base: RunState = {}
    if not values:  # no checkpoint yet: the update starts the thread
        base = start_of(record)
        values = base
    pending = [task.name for task in snapshot.tasks]
    as_node = next((_AS_NODE[name] for name in pending if name in _AS_NODE), "design")
    update: RunState = {
        **base,
        "conductor_state": to,
        "error": error[:4000],
        "transitions": [
            transition(
                values,
                to,
                event=event,
                actor=actor,
                at=services.context.clock(),
                artifact="decision" if decision is not None else None,
                note=error[:4000],
            )
        ],
    }
    if decision is not None:
        update["decision"] = decision
    await services.graph.aupdate_state(config, update, as_node=as_node)
