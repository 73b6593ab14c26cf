"""The gate's alerts: refused decisions, expired approvals, rollback SLA breaches.

Each is an OpsEvent (type `approval.refused`, `approval.expired`, `rollback.sla_breached`)
written to the append-only gate log with who, what and why, and to the bus (the event
outbox, same transaction). They are not state transitions,
so they do not go through the checkpointer; a `dedup` key makes a periodic job's alert
idempotent (two replicas, or a job that runs again, log it once).
"""

from __future__ import annotations

import logging

from crew.container import Services
from schemas.approval import GateLogEntry
from schemas.base import Artifact
from schemas.events import EventType, OpsEvent

logger = logging.getLogger(__name__)


async def emit_alert(
    services: Services,
    entry: GateLogEntry,
    *,
    payload: Artifact | None = None,
    dedup: str | None = None,
) -> bool:
    """Log `entry` with its OpsEvent; False when `dedup` says it was logged before."""
    event = OpsEvent(
        # A deduplicated alert has a deterministic id, so the bus carries it once too.
        **({"event_id": f"gate.{dedup}"} if dedup else {}),
        type=EventType(entry.kind),
        run_id=entry.run_id,
        at=entry.at,
        payload_type=payload.artifact_name if payload is not None else None,
        payload=payload.model_dump(mode="json") if payload is not None else None,
    )
    fresh = await services.gate.log(entry, event, dedup=dedup)
    if fresh:
        logger.warning(
            "%s: %s",
            entry.kind,
            entry.detail,
            extra={"run_id": entry.run_id, "event": entry.kind, "actor": entry.actor},
        )
    return fresh
