"""Terraform's machine-readable UI lines -> typed events -> a running `StepProgress`.

`terraform plan|apply -json` prints one JSON object per line as it works: `planned_change`
for each resource the plan touches, `apply_start` / `apply_progress` ("Still creating...
[10s elapsed]") / `apply_complete` / `apply_errored` while applying, `refresh_start` /
`refresh_complete` while reading the state, and `change_summary` at the end
(https://developer.hashicorp.com/terraform/internals/machine-readable-ui). `parse_ui_line`
reads one line; `ProgressTracker` folds the events of one command into where it stands.
Pure: no subprocess and no clock (times are terraform's own `@timestamp`s), so it is tested
on recorded output (tests/fixtures/terraform/*.jsonl).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from schemas.progress import MAX_CURRENT, ResourceInFlight, StepProgress, TerraformOperation

EventKind = Literal[
    "planned",
    "started",
    "progress",
    "complete",
    "errored",
    "refresh_start",
    "refresh_complete",
    "summary",
]

_KINDS: dict[str, EventKind] = {
    "planned_change": "planned",
    "apply_start": "started",
    "apply_progress": "progress",
    "apply_complete": "complete",
    "apply_errored": "errored",
    "refresh_start": "refresh_start",
    "refresh_complete": "refresh_complete",
    "change_summary": "summary",
}

#: Longest message kept from a line.
_MAX_MESSAGE = 500


@dataclass(frozen=True)
class TerraformEvent:
    """One resource-level line of terraform's UI (or its change summary)."""

    kind: EventKind
    message: str
    at: datetime | None
    address: str | None = None
    action: str | None = None
    elapsed_s: float | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    """`change_summary` only: add, change, remove, import, operation."""

    @property
    def managed(self) -> bool:
        """A managed resource (data sources are read on the way and not counted)."""
        if self.address is None or self.action == "read":
            return False
        return not (self.address.startswith("data.") or ".data." in self.address)


def parse_ui_line(line: str) -> TerraformEvent | None:
    """The event a UI line reports; None for other lines (version, outputs, diagnostics,
    log text, anything not JSON)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    kind = _KINDS.get(str(doc.get("type")))
    if kind is None:
        return None
    body = _object(doc.get("change") if kind == "planned" else doc.get("hook"))
    resource = _object(body.get("resource"))
    elapsed = body.get("elapsed_seconds")
    changes = _object(doc.get("changes"))
    return TerraformEvent(
        kind=kind,
        message=_storable(str(doc.get("@message") or ""))[:_MAX_MESSAGE],
        at=_timestamp(doc.get("@timestamp")),
        address=_storable(str(resource["addr"])) if resource.get("addr") else None,
        action=str(body["action"]) if body.get("action") else None,
        elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else None,
        changes=dict(changes),
    )


def _storable(text: str) -> str:
    """Text Postgres can keep (schemas/base.py): no NUL, no lone surrogate."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class ResourceProgress:
    """Where a caller wants a command's progress: the graph node it runs in, and a callback
    told every `StepProgress` as the command moves (terraform runner -> node -> worker)."""

    step: str
    report: Callable[[StepProgress], None]


@dataclass
class _InFlight:
    action: str
    started: datetime | None
    elapsed_s: float = 0.0


class ProgressTracker:
    """Folds one terraform command's events into a `StepProgress`.

    apply / destroy: `total` is the managed resources terraform announced it will change
    (`planned_change`), `done` those whose change completed. plan: `done` counts the resources
    planned so far, and `total` is known once the change summary arrives; resources being
    refreshed are in flight.
    """

    def __init__(self, step: str, operation: TerraformOperation, started_at: datetime) -> None:
        self.step = step
        self.operation: TerraformOperation = operation
        self.started_at = started_at
        self.updated_at = started_at
        self._planned: set[str] = set()
        self._completed: set[str] = set()
        self._failed: set[str] = set()
        self._in_flight: dict[str, _InFlight] = {}
        self._summary_total: int | None = None
        self._last_message: str | None = None
        self._finished = False

    def feed(self, event: TerraformEvent) -> bool:
        """Take one event; True when the progress changed (a resource moved, or time passed
        for one in flight)."""
        if event.at is not None and event.at > self.updated_at:
            self.updated_at = event.at
        if event.kind == "summary":
            return self._summary(event)
        if not event.managed or event.address is None:
            return False
        address = event.address
        self._last_message = event.message or self._last_message
        if event.kind == "planned":
            self._planned.add(address)
        elif event.kind in ("started", "refresh_start"):
            self._completed.discard(address)  # a replace deletes, then creates
            self._in_flight[address] = _InFlight(event.action or "", event.at)
        elif event.kind == "progress":
            flight = self._in_flight.setdefault(address, _InFlight(event.action or "", None))
            flight.elapsed_s = max(flight.elapsed_s, event.elapsed_s or 0.0)
        elif event.kind in ("complete", "refresh_complete"):
            self._in_flight.pop(address, None)
            if event.kind == "complete":
                self._completed.add(address)
        elif event.kind == "errored":
            self._in_flight.pop(address, None)
            self._failed.add(address)
        return True

    def _summary(self, event: TerraformEvent) -> bool:
        changes = event.changes
        if changes.get("operation") != "plan":
            return False  # the apply's summary counts a replace twice; planned_change is exact
        counted = sum(int(changes.get(k) or 0) for k in ("add", "change", "remove"))
        self._summary_total = counted
        self._last_message = event.message or self._last_message
        return True

    def finish(self, at: datetime | None = None) -> StepProgress:
        """The command exited: its last progress."""
        if at is not None and at > self.updated_at:
            self.updated_at = at
        self._finished = True
        self._in_flight.clear()
        return self.snapshot()

    def snapshot(self) -> StepProgress:
        elapsed = max(0.0, (self.updated_at - self.started_at).total_seconds())
        if self.operation == "plan":
            done = len(self._planned)
            total = self._summary_total if self._summary_total is not None else None
            if total is None and self._finished:
                total = done
        else:
            done = len(self._completed - self._in_flight.keys())
            total = len(self._planned) if self._planned else self._summary_total
        flights = sorted(
            (
                ResourceInFlight(
                    address=address[:500],
                    action=flight.action[:40],
                    elapsed_s=round(self._flight_elapsed(flight), 1),
                )
                for address, flight in self._in_flight.items()
            ),
            key=lambda r: (-r.elapsed_s, r.address),
        )
        eta = None
        if total and 0 < done < total and self.operation != "plan":
            eta = round(elapsed / done * (total - done), 1)
        return StepProgress(
            step=self.step,
            operation=self.operation,
            started_at=self.started_at,
            updated_at=self.updated_at,
            elapsed_s=round(elapsed, 1),
            total=total,
            done=done,
            failed=len(self._failed),
            in_flight=len(flights),
            current=flights[:MAX_CURRENT],
            last_message=self._last_message,
            eta_s=eta,
            finished=self._finished,
        )

    def _flight_elapsed(self, flight: _InFlight) -> float:
        since = (self.updated_at - flight.started).total_seconds() if flight.started else 0.0
        return max(0.0, since, flight.elapsed_s)
