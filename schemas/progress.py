"""Live progress of a long terraform step (plan, apply, destroy), resource by resource.

Folded from terraform's machine-readable UI (`-json`: planned_change, apply_start,
apply_progress, apply_complete, apply_errored, change_summary) by `tools/terraform_progress.py`
as the lines arrive, recorded on the run's row (throttled) by the worker, and shown by
`GET /v1/runs/{id}`, `crew show --follow` and the run's Slack message, so a ten-minute apply
says what it is doing instead of "In progress".
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import Contract

#: Resources in flight listed at most (the rest are counted in `in_flight`).
MAX_CURRENT = 10

TerraformOperation = Literal["plan", "apply", "destroy"]


class ResourceInFlight(Contract):
    """A resource terraform is working on now."""

    address: str = Field(max_length=500)
    action: str = Field(max_length=40, description="create, update, delete, replace, read...")
    elapsed_s: float = Field(ge=0, description="Seconds since terraform started on it.")


class StepProgress(Contract):
    """Where a terraform command stands; `done`/`total` count managed resources only (data
    sources terraform reads on the way are not in `total`)."""

    step: str = Field(
        min_length=1, max_length=100, description="The graph node: build, apply, rollback."
    )
    operation: TerraformOperation = Field(description="The terraform command running.")
    started_at: datetime
    updated_at: datetime
    elapsed_s: float = Field(ge=0, description="Seconds from the command's start to `updated_at`.")
    total: int | None = Field(
        default=None,
        ge=0,
        description="Resources the command will change (plan: resources planned so far, "
        "final at the end); None while unknown.",
    )
    done: int = Field(default=0, ge=0, description="Resources completed (plan: planned).")
    failed: int = Field(default=0, ge=0, description="Resources terraform reported errored.")
    in_flight: int = Field(default=0, ge=0, description="Resources started, not yet finished.")
    current: list[ResourceInFlight] = Field(
        default_factory=list,
        max_length=MAX_CURRENT,
        description="The longest-running resources in flight, longest first.",
    )
    last_message: str | None = Field(
        default=None, max_length=500, description="Terraform's last progress line."
    )
    eta_s: float | None = Field(
        default=None,
        ge=0,
        description="Seconds left, estimated from the pace so far; None when it cannot be.",
    )
    finished: bool = Field(default=False, description="The command has exited.")
