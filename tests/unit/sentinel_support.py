"""Helpers for Sentinel's unit tests: plan JSON documents and a stand-in checkov."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.plan import PlanSpec
from sentinel.engine import Sentinel, SentinelTools, Subject
from sentinel.policy import OrgPolicy, default_policy
from tools.scan import CheckFailure, ScanReport

AT = datetime(2026, 11, 24, 18, 24, 54, tzinfo=UTC)


def change(
    address: str,
    after: dict[str, Any] | None = None,
    actions: list[str] | None = None,
    before: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One `resource_changes` entry as `terraform show -json` prints it."""
    rtype, name = address.split(".", 1)
    return {
        "address": address,
        "mode": "managed",
        "type": rtype,
        "name": name.split("[", 1)[0],
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {
            "actions": actions or ["create"],
            "before": before,
            "after": after if after is not None else {},
            "after_unknown": {},
        },
    }


def plan_doc(
    *changes: dict[str, Any],
    region: str = "us-east-1",
    default_tags: dict[str, str] | None = None,
    references: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    provider: dict[str, Any] = {"region": {"constant_value": region}}
    if default_tags is not None:
        provider["default_tags"] = [{"tags": {"constant_value": default_tags}}]
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "resource_changes": list(changes),
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "expressions": provider}},
            "root_module": {
                "resources": [
                    {"address": a, "expressions": e} for a, e in (references or {}).items()
                ]
            },
        },
    }


@dataclass
class FakeCheckov:
    """Stands in for CheckovScanner: returns the failures it was given."""

    failures: list[CheckFailure] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "cli"
    """Like the CLI, one call scans both inputs (Sentinel splits only in-process scans)."""

    async def scan(
        self, *, hcl_dir: Path | None, plan_json: Path | None, external_checks_dir: Path | None
    ) -> list[ScanReport]:
        self.calls.append(
            {"hcl_dir": hcl_dir, "plan_json": plan_json, "external": external_checks_dir}
        )
        return [ScanReport(tool="checkov", failures=list(self.failures))]


def failure(
    rule: str, resource: str | None = "aws_db_instance.db", source: str = "plan"
) -> CheckFailure:
    return CheckFailure(
        tool="checkov", rule_id=rule, resource=resource, message=f"{rule} failed", source=source
    )


def sentinel(*failures: CheckFailure, policy: OrgPolicy | None = None, **tools: Any) -> Sentinel:
    checkov: Any = FakeCheckov(list(failures))
    return Sentinel(SentinelTools(checkov=checkov, **tools), policy or default_policy())


def subject(
    doc: dict[str, Any], budget: float | None = 100, plan: PlanSpec | None = None, **kw: Any
) -> Subject:
    return Subject(
        plan_id="p-r1",
        plan_json=doc,
        plan_json_path=Path("/w/plan.json"),
        hcl_dir=Path("/w"),
        budget_monthly_usd=budget,
        plan=plan,
        **kw,
    )
