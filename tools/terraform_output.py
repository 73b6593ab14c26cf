"""Terraform's machine-readable output -> typed results (`StepResult`, `ApplyOutcome`, ...).

Parsers only: no subprocess here, so they are tested on recorded output (tests/fixtures/).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.build import Diagnostic, DiagnosticSeverity
from schemas.drift import DriftAction, DriftedResource
from tools.process import ProcessResult


@dataclass(frozen=True)
class StepResult:
    ok: bool
    diagnostics: list[Diagnostic]
    duration_s: float

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is DiagnosticSeverity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is DiagnosticSeverity.WARNING]


@dataclass(frozen=True)
class PlanOutcome(StepResult):
    has_changes: bool = False


@dataclass(frozen=True)
class ApplyOutcome(StepResult):
    added: int = 0
    changed: int = 0
    destroyed: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)


def managed_addresses(state: Mapping[str, Any]) -> set[str]:
    """Addresses of the managed resource instances a state document holds."""
    addresses: set[str] = set()
    for res in state.get("resources") or []:
        if res.get("mode") != "managed":
            continue
        base = f"{res['type']}.{res['name']}"
        if res.get("module"):
            base = f"{res['module']}.{base}"
        for instance in res.get("instances") or []:
            key = instance.get("index_key")
            if key is None:
                addresses.add(base)
            else:
                addresses.add(f"{base}[{json.dumps(key)}]")
    return addresses


def _json_message(line: str) -> str | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return line.strip() or None
    if not isinstance(doc, dict):
        return None
    message = doc.get("@message")
    return str(message) if message else None


def _diagnostic(raw: Mapping[str, Any]) -> Diagnostic:
    rng = raw.get("range") or {}
    severity = (
        DiagnosticSeverity.WARNING if raw.get("severity") == "warning" else DiagnosticSeverity.ERROR
    )
    return Diagnostic(
        severity=severity,
        summary=str(raw.get("summary", "")),
        detail=str(raw.get("detail", "")),
        address=raw.get("address"),
        filename=rng.get("filename"),
        line=(rng.get("start") or {}).get("line"),
    )


def _stream_lines(result: ProcessResult) -> list[dict[str, Any]]:
    docs = []
    for line in result.stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def _stream_diagnostics(result: ProcessResult) -> list[Diagnostic]:
    diagnostics = [
        _diagnostic(doc["diagnostic"])
        for doc in _stream_lines(result)
        if doc.get("type") == "diagnostic" and isinstance(doc.get("diagnostic"), dict)
    ]
    if result.returncode not in (0, 2) and not any(
        d.severity is DiagnosticSeverity.ERROR for d in diagnostics
    ):
        # Failed before the JSON UI started (bad CLI config, crash): keep what it said.
        text = (result.stderr or result.stdout).strip()[-2000:]
        diagnostics.append(
            Diagnostic(
                severity=DiagnosticSeverity.ERROR,
                summary=f"terraform exited with code {result.returncode}",
                detail=text,
            )
        )
    return diagnostics


def _apply_outcome(result: ProcessResult) -> ApplyOutcome:
    added = changed = destroyed = 0
    outputs: dict[str, Any] = {}
    for doc in _stream_lines(result):
        if doc.get("type") == "change_summary":
            changes = doc.get("changes") or {}
            added = int(changes.get("add", 0))
            changed = int(changes.get("change", 0))
            destroyed = int(changes.get("remove", 0))
        elif doc.get("type") == "outputs":
            outputs = {
                name: ("<sensitive>" if item.get("sensitive") else item.get("value"))
                for name, item in (doc.get("outputs") or {}).items()
            }
    return ApplyOutcome(
        ok=result.returncode == 0,
        diagnostics=_stream_diagnostics(result),
        duration_s=result.duration_s,
        added=added,
        changed=changed,
        destroyed=destroyed,
        outputs=outputs,
    )


#: Nested attributes are named down to this depth ('tags.team'); deeper changes name their
#: parent ('policy' for a changed statement inside it).
_DRIFT_DEPTH = 2


def drifted_resources(plan: Mapping[str, Any]) -> list[DriftedResource]:
    """What differs between the declared configuration and the cloud, from a plan's JSON.

    Drift is read from the plan's `resource_changes` (what applying the same configuration
    again would change), not from its `resource_drift`: right after an apply a refresh fills
    computed attributes that other resources of the stack set (a bucket's `versioning` from
    `aws_s3_bucket_versioning`), which is no change anyone made. A resource the plan would
    create again was deleted outside Terraform.
    """
    drifted: list[DriftedResource] = []
    for item in plan.get("resource_changes") or []:
        if not isinstance(item, Mapping) or item.get("mode", "managed") != "managed":
            continue
        change = item.get("change") or {}
        actions = set(change.get("actions") or [])
        if actions == {"create"}:
            action, attributes = DriftAction.DELETE, []
        elif actions & {"update", "delete"}:
            action = DriftAction.UPDATE
            attributes = sorted(_changed(change.get("before"), change.get("after")))[:200]
        else:
            continue  # no-op, read
        drifted.append(
            DriftedResource(
                address=str(item.get("address", "")),
                type=str(item.get("type", "")),
                action=action,
                attributes=attributes,
            )
        )
    return drifted


def changed_attributes(before: Any, after: Any) -> list[str]:
    """Dotted names of the attributes that differ between a resource change's `before` and
    `after` (at most 200): what the gate and a drift report show for an update."""
    return sorted(_changed(before, after))[:200]


def _changed(before: Any, after: Any, path: tuple[str, ...] = ()) -> set[str]:
    """Dotted names of what differs; maps are walked down to `_DRIFT_DEPTH` levels."""
    if before == after:
        return set()
    if isinstance(before, Mapping) and isinstance(after, Mapping) and len(path) < _DRIFT_DEPTH:
        names: set[str] = set()
        for key in set(before) | set(after):
            old, new = before.get(key), after.get(key)
            if old == new or (_blank(old) and _blank(new)):
                continue  # absent vs null vs empty: not a change anyone made
            names |= _changed(old, new, (*path, str(key)))
        return names
    return {".".join(path) or "(resource)"}


def _blank(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""
