"""infracost, when installed and INFRACOST_API_KEY is set: its prices instead of ours.

`infracost breakdown --path plan.json --format json` prices a plan JSON with Infracost's
Cloud Pricing API (it needs the key and the network: that is the user's choice when they
configure it). infracost is not installable from PyPI, npm or Debian here; the parser is tested
on output in Infracost's documented JSON format (tests/fixtures/scanners/infracost.json), and
the live path is untested on this machine.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.errors import ToolError
from tools.process import run_process


@dataclass(frozen=True)
class PricedResource:
    address: str
    type: str
    monthly_usd: float | None
    """None when Infracost could not price it (usage-based with no usage given)."""


@dataclass(frozen=True)
class InfracostBreakdown:
    currency: str
    total_monthly_usd: float
    past_total_monthly_usd: float | None
    resources: list[PricedResource] = field(default_factory=list)
    free_types: frozenset[str] = frozenset()
    """Types Infracost knows have no price of their own (its `noPriceResourceCounts`)."""
    unsupported_types: frozenset[str] = frozenset()


def _money(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"infracost printed a cost that is not a number: {value!r}") from exc


def parse_infracost_json(text: str) -> InfracostBreakdown:
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(f"infracost printed output that is not JSON: {text[:200]!r}") from exc
    if not isinstance(doc, dict) or "projects" not in doc:
        raise ToolError("infracost JSON output has no 'projects'")
    resources: list[PricedResource] = []
    for project in doc["projects"] or []:
        for r in (project.get("breakdown") or {}).get("resources") or []:
            name = str(r["name"])
            rtype = r.get("resourceType") or name.rsplit(".", 2)[-2].split("[")[0]
            resources.append(PricedResource(name, str(rtype), _money(r.get("monthlyCost"))))
    summary = doc.get("summary") or {}
    return InfracostBreakdown(
        currency=str(doc.get("currency") or "USD"),
        total_monthly_usd=_money(doc.get("totalMonthlyCost")) or 0.0,
        past_total_monthly_usd=_money(doc.get("pastTotalMonthlyCost")),
        resources=resources,
        free_types=frozenset(summary.get("noPriceResourceCounts") or {}),
        unsupported_types=frozenset(summary.get("unsupportedResourceCounts") or {}),
    )


class InfracostRunner:
    def __init__(self, binary: Path, *, env: Mapping[str, str], timeout_s: float = 300) -> None:
        self.binary, self.env, self.timeout_s = binary, env, timeout_s

    async def breakdown(self, plan_json: Path) -> InfracostBreakdown:
        tmp = Path(tempfile.mkdtemp(prefix="crew-infracost-"))
        try:
            out = tmp / "infracost.json"
            argv = [str(self.binary), "breakdown", "--path", str(plan_json)]
            argv += ["--format", "json", "--out-file", str(out), "--no-color"]
            result = await run_process(argv, cwd=None, env=self.env, timeout_s=self.timeout_s)
            if result.returncode != 0 or not out.is_file():
                raise ToolError(
                    f"infracost exited {result.returncode}: "
                    f"{(result.stderr or result.stdout)[-500:]}"
                )
            return parse_infracost_json(out.read_text(encoding="utf-8"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
