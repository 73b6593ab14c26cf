"""Severity of a static-analysis finding: the data file, the tool's own word, the org policy.

Order of precedence (first wins): the org policy's `severity_overrides`, the data file's
`overrides` (where this project disagrees with a tool), the tool's own severity (trivy, tfsec,
conftest), the data file's checkov table, the data file's `default`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from schemas.validation import Severity


@dataclass(frozen=True)
class Rated:
    severity: Severity
    why: str | None


@dataclass(frozen=True)
class SeverityTable:
    default: Severity
    checkov: dict[str, Rated]
    overrides: dict[str, Rated]

    def rate(
        self,
        rule_id: str,
        tool_severity: Severity | None,
        policy_overrides: dict[str, Severity] | None = None,
    ) -> Rated:
        if policy_overrides and rule_id in policy_overrides:
            return Rated(policy_overrides[rule_id], "org policy severity override")
        if rule_id in self.overrides:
            return self.overrides[rule_id]
        if tool_severity is not None:
            return Rated(tool_severity, None)
        return self.checkov.get(rule_id, Rated(self.default, None))


def _rated(entries: dict[str, Any] | None) -> dict[str, Rated]:
    return {
        str(rule): Rated(Severity(str(v["severity"]).upper()), v.get("why"))
        for rule, v in (entries or {}).items()
    }


@lru_cache(maxsize=1)
def severity_table() -> SeverityTable:
    raw = yaml.safe_load(
        resources.files("sentinel").joinpath("data/severity.yaml").read_text("utf-8")
    )
    return SeverityTable(
        default=Severity(str(raw["default"]).upper()),
        checkov=_rated(raw.get("checkov")),
        overrides=_rated(raw.get("overrides")),
    )
