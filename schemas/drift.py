"""DriftReport: what changed in a stack behind the crew's back (a plan of its applied
configuration, never applied, shows it)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import Artifact, Contract


class DriftAction(StrEnum):
    UPDATE = "update"
    """Attributes differ from what the state recorded at the last apply."""
    DELETE = "delete"
    """The resource is gone from the cloud (deleted outside Terraform)."""


class DriftedResource(Contract):
    address: str = Field(description="e.g. aws_s3_bucket.logs")
    type: str
    action: DriftAction
    attributes: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Changed attributes, dotted for nested values (e.g. 'tags.team'); empty "
        "for a deleted resource.",
    )


class DriftReport(Artifact):
    """One drift check of one stack (a plan of its applied configuration, never applied)."""

    artifact_name = "DriftReport"

    stack_id: str
    run_id: str = Field(description="The run whose applied configuration was compared.")
    checked_at: datetime
    duration_s: float = Field(ge=0)
    drifted: bool
    resources: list[DriftedResource] = Field(default_factory=list)
    fingerprint: str = Field(
        description="Hash of what drifted: the same drift seen again is alerted once."
    )
    trigger: str = Field(description="'schedule', or who asked ('cli:alice', 'rest:bob').")
