"""Transition (one step of a run, kept in the graph state) and AuditRecord (its audit row)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from schemas.base import Artifact, Contract
from schemas.events import EventType
from schemas.states import ConductorState


class Transition(Contract):
    """A state change as the graph records it. `seq` is the audit row's sequence number,
    so projecting the same transition twice (after a crash) can never duplicate a row."""

    seq: int = Field(ge=1)
    at: datetime
    actor: str
    event: EventType
    from_state: ConductorState | None
    to_state: ConductorState
    artifact: str | None = Field(
        default=None, description="Name of the run-state field holding the artifact produced."
    )
    note: str | None = None


class AuditRecord(Artifact):
    """One append-only audit row."""

    artifact_name = "AuditRecord"

    run_id: str
    seq: int = Field(ge=0)
    at: datetime
    actor: str
    event: EventType
    from_state: ConductorState | None
    to_state: ConductorState
    artifact_type: str | None = None
    artifact: dict[str, Any] | None = None
    note: str | None = None
