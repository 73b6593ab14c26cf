"""OpsEvent: what the crew tells the bus and the audit log (its payload is one of
`schemas.payloads`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4

from pydantic import Field, model_validator

from schemas.base import Artifact
from schemas.payloads import PAYLOADS


class EventType(StrEnum):
    """Event names. The first ten are the original design's; the rest name the remaining transitions
    and the gate's alerts."""

    PLAN_PENDING = "plan.pending"
    VALIDATE_PENDING = "validate.pending"
    VALIDATE_RESULT = "validate.result"
    APPROVAL_REQUESTED = "approval.requested"
    APPLY_REQUEST = "apply.request"
    APPLY_DONE = "apply.done"
    ROLLBACK_STARTED = "rollback.started"
    ROLLBACK_DONE = "rollback.done"
    DESIGN_BLOCKED = "design.blocked"
    HEARTBEAT = "heartbeat"
    RUN_CREATED = "run.created"
    DESIGN_STARTED = "design.started"
    BUILD_FAILED = "build.failed"
    RUN_REJECTED = "run.rejected"
    ROLLBACK_FAILED = "rollback.failed"
    RUN_CANCELLED = "run.cancelled"
    RUN_GAVE_UP = "run.gave_up"
    """A step kept failing with an unexpected error (CREW_RUN_MAX_ATTEMPTS): the run ends
    BLOCKED with that error."""
    # -- the gate's alerts (not transitions: they go to the bus and the gate log) ---------
    APPROVAL_REFUSED = "approval.refused"
    APPROVAL_EXPIRED = "approval.expired"
    ROLLBACK_SLA_BREACHED = "rollback.sla_breached"
    # -- day 2: stacks changed behind the crew's back (crew/drift.py) -----------------------
    DRIFT_DETECTED = "drift.detected"
    DRIFT_ACCEPTED = "drift.accepted"
    # -- Shield-Lite: an advisory affects a deployed stack (crew/shield.py) -----------------
    SHIELD_ADVISORY = "shield.advisory"
    # -- day 2: stacks with a TTL, and nightly re-validation (crew/expiry.py, crew/revalidate.py)
    STACK_EXPIRING = "stack.expiring"
    """A stack's TTL (the goal's `ttl_hours`) runs out soon: it will be decommissioned."""
    STACK_EXPIRED = "stack.expired"
    """A stack's TTL ran out: a decommission run was started (it waits at the gate)."""
    STACK_FINDINGS = "stack.findings"
    """Nightly re-validation: today's policy finds something new in an applied stack."""
    # -- the run queue (not a transition: it hands a run to a worker through the bus) -------
    RUN_READY = "run.ready"


class OpsEvent(Artifact):
    """One event; `payload` is the JSON of the artifact named by `payload_type`."""

    artifact_name = "OpsEvent"

    event_id: str = Field(default_factory=lambda: uuid4().hex)
    type: EventType
    run_id: str | None = None
    at: datetime
    payload_type: str | None = Field(
        default=None, description="Artifact name of the payload, e.g. 'PlanSpec'."
    )
    payload: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _payload_matches_type(self) -> OpsEvent:
        if (self.payload is None) != (self.payload_type is None):
            raise ValueError("payload and payload_type go together")
        if self.payload_type is not None:
            model = PAYLOADS.get(self.payload_type)
            if model is None:
                raise ValueError(f"unknown payload_type '{self.payload_type}'")
            model.model_validate(self.payload)
        return self
