"""What every static-analysis wrapper returns: failed checks, typed, before any policy.

The wrappers (`tools/checkov.py`, `tools/trivy.py`, `tools/opa.py`) parse each tool's own
output into `CheckFailure`s. Severity is the tool's own when it has one (trivy, tfsec) and
None when it has none (checkov's open-source checks): Sentinel's severity mapping fills it in,
so the policy decisions live in one place (`sentinel/`), not in the parsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from schemas.validation import Severity

#: `aws_subnet.private[0]` and `aws_subnet.private["a"]` are instances of `aws_subnet.private`.
_INDEX = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class CheckFailure:
    """One failed check on one resource, as a tool reported it."""

    tool: str
    rule_id: str
    resource: str | None
    message: str
    source: str
    """Which input showed it: "hcl" (the .tf files) or "plan" (the plan JSON)."""
    severity: Severity | None = None
    guideline: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class ScanReport:
    """A tool's verdicts on one input set: the failures and how many checks passed."""

    tool: str
    failures: list[CheckFailure] = field(default_factory=list)
    passed: int = 0
    duration_s: float = 0.0
    inputs: tuple[str, ...] = ()


def base_address(address: str | None) -> str | None:
    """The resource address without instance keys, to match HCL blocks with plan instances."""
    return None if address is None else _INDEX.sub("", address)


def severity_from_text(text: str | None) -> Severity | None:
    """A tool's severity word as ours (UNKNOWN and anything unrecognised -> None)."""
    if not text:
        return None
    try:
        return Severity(text.strip().upper())
    except ValueError:
        return None
