"""ApplyResult: what an apply (or a rollback) did to the cloud."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from schemas.base import Artifact, Contract
from schemas.build import Diagnostic


class Operation(StrEnum):
    APPLY = "apply"
    ROLLBACK = "rollback"


class ResourceCounts(Contract):
    added: int = Field(default=0, ge=0)
    changed: int = Field(default=0, ge=0)
    destroyed: int = Field(default=0, ge=0)


class ApplyResult(Artifact):
    artifact_name = "ApplyResult"

    run_id: str
    plan_id: str
    operation: Operation
    ok: bool
    outputs: dict[str, Any] = Field(default_factory=dict, max_length=1000)
    resources: ResourceCounts = Field(default_factory=ResourceCounts)
    started_at: datetime
    finished_at: datetime
    duration_s: float = Field(ge=0)
    error: str | None = None
    diagnostics: list[Diagnostic] = Field(default_factory=list, max_length=10_000)
    # -- rollback bookkeeping (Forge v0) -----------------------------------------------------
    state_snapshot: str | None = Field(
        default=None, description="File holding the state pulled just before the apply."
    )
    failure_at: datetime | None = Field(
        default=None, description="When the apply failed or timed out (what the SLA counts from)."
    )
    rollback_started_at: datetime | None = None
    rollback_finished_at: datetime | None = None
    sla_met: bool | None = Field(
        default=None,
        description="Rollback began < 5 min and finished < 15 min after the failure "
        "(None when no failure started it, e.g. a human rollback of a DONE run).",
    )
    restored: str | None = Field(
        default=None, description="What the rollback restored, e.g. 'empty stack' or 'revision 1'."
    )
    page_human: bool = Field(
        default=False, description="The rollback failed: a human must look at the stack now."
    )
    remaining: list[str] | None = Field(
        default=None,
        max_length=1000,
        description="After a failed rollback: resource addresses the stack's state still holds "
        "that the rollback was to remove (None: not known, the state could not be read).",
    )
