"""Sentinel: static analysis + org policy + cost forecast + the 80 % brake -> ValidationReport.

`Sentinel.validate` is the whole judgement; the graph node and `crew validate` both call it.
Expected failures (a finding, an over-budget plan, a policy breach) are data in the report;
errors (checkov missing, a tool that crashes, unreadable input) raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.errors import CrewError
from schemas.plan import PlanSpec
from schemas.validation import (
    BudgetBrake,
    CostReport,
    Finding,
    PolicyResult,
    ResourceCost,
    Severity,
    ValidationReport,
    Verdict,
)
from sentinel import rules
from sentinel.cost import forecast_cost, from_infracost
from sentinel.findings import judge_all, sort_findings
from sentinel.policy import BUDGET_BRAKE, REGO_UNAVAILABLE, OrgPolicy
from sentinel.severity import SeverityTable, severity_table
from tools.checkov import CheckovScanner
from tools.infracost import InfracostRunner
from tools.opa import ConftestRunner
from tools.scan import CheckFailure, ScanReport
from tools.trivy import TfsecScanner, TrivyScanner

logger = logging.getLogger(__name__)

BRAKE_RATIO = 0.8
#: Early scans kept for workspaces whose validation has not come (yet): a build that fails
#: never validates, so the oldest are dropped.
EARLY_SCANS_KEPT = 32

#: Told (part name, time.monotonic() it began, seconds) for each timed part of a validation.
PartObserver = Callable[[str, float, float], None]
#: A timed scan result: (part name, began, seconds, reports).
_Timed = tuple[str, float, float, list[ScanReport]]


@dataclass(frozen=True)
class _EarlyScan:
    """The scan of a workspace's .tf files, started while terraform plans (start_hcl_scan)."""

    digest: str
    loop: asyncio.AbstractEventLoop
    task: asyncio.Task[list[_Timed]]


def config_digest(hcl_dir: Path) -> str:
    """Fingerprint of the configuration files a scan of `hcl_dir` reads."""
    digest = hashlib.sha256()
    for path in sorted(hcl_dir.iterdir()):
        if path.is_file() and path.name.endswith((".tf", ".tf.json")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark an early scan's failure as seen: validate() scans again and raises it there."""
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True)
class SentinelTools:
    """The scanners Sentinel runs; all but checkov are optional (None: not installed)."""

    checkov: CheckovScanner
    trivy: TrivyScanner | None = None
    tfsec: TfsecScanner | None = None
    conftest: ConftestRunner | None = None
    infracost: InfracostRunner | None = None


@dataclass(frozen=True)
class Subject:
    """What to judge: a plan JSON and/or a directory of .tf files, and the run's context."""

    plan_id: str
    plan_json: dict[str, Any] | None
    plan_json_path: Path | None
    hcl_dir: Path | None
    budget_monthly_usd: float | None
    region: str | None = None
    required_tags: dict[str, str] = field(default_factory=dict)
    plan: PlanSpec | None = None
    stand_in_plan: bool = False
    """True when `plan_json` was read from the .tf files (no terraform plan)."""
    forge_render: bool = False
    """True when Forge rendered the workspace: its documented waivers apply (the policy's
    `render_waivers` says which)."""


def budget_brake(cost: CostReport, cap: float) -> BudgetBrake:
    """Forecast above 80 % of the cap (to the cent) fails; exactly 80 % passes."""
    limit = round(cap * BRAKE_RATIO, 2)
    priced = [r for r in cost.per_resource if r.monthly_usd]
    top = sorted(priced, key=lambda r: (-(r.monthly_usd or 0.0), r.address))[:3]
    return BudgetBrake(
        forecast_monthly_usd=cost.monthly_usd,
        cap_monthly_usd=cap,
        threshold_ratio=BRAKE_RATIO,
        limit_monthly_usd=limit,
        passed=round(cost.monthly_usd, 2) <= limit,
        top_resources=top,
    )


def brake_message(brake: BudgetBrake, cost: CostReport) -> str:
    names = ", ".join(f"{r.address} ${r.monthly_usd or 0:,.2f}" for r in brake.top_resources)
    message = (
        f"budget brake: forecast ${brake.forecast_monthly_usd:,.2f}/month exceeds "
        f"${brake.limit_monthly_usd:,.2f} (80 % of ${brake.cap_monthly_usd:,.2f}); "
        f"most expensive: {names or 'none priced'}"
    )
    if cost.not_priced:
        message += f"; {len(cost.not_priced)} resource(s) not priced and not counted"
    return message


class Sentinel:
    def __init__(
        self, tools: SentinelTools, policy: OrgPolicy, table: SeverityTable | None = None
    ) -> None:
        self.tools, self.policy = tools, policy
        self.table = table or severity_table()
        self._early: dict[Path, _EarlyScan] = {}

    def _splits_scans(self) -> bool:
        """Whether the .tf files and the plan JSON can be scanned apart: checkov in this
        process without custom checks (one CLI process for both is cheaper than two)."""
        return self.tools.checkov.mode == "in_process" and self.policy.custom_checks_dir is None

    def start_hcl_scan(self, hcl_dir: Path) -> None:
        """Start scanning the .tf files of `hcl_dir` now, side by side with `terraform plan`;
        `validate` of that directory takes the result when the files are still the same.

        Only a speed-up: a validation in another process, or of changed files, scans them
        itself.
        """
        if not self._splits_scans():
            return
        key = hcl_dir.resolve()
        if (previous := self._early.pop(key, None)) is not None:
            previous.task.cancel()
        task = asyncio.create_task(self._scan_hcl(hcl_dir))
        task.add_done_callback(_retrieve)
        self._early[key] = _EarlyScan(config_digest(hcl_dir), asyncio.get_running_loop(), task)
        while len(self._early) > EARLY_SCANS_KEPT:
            self._early.pop(next(iter(self._early))).task.cancel()

    def _take_early(self, hcl_dir: Path) -> asyncio.Task[list[_Timed]] | None:
        early = self._early.pop(hcl_dir.resolve(), None)
        if early is None:
            return None
        if early.loop is not asyncio.get_running_loop() or early.digest != config_digest(hcl_dir):
            early.task.cancel()
            return None
        return early.task

    async def validate(
        self, subject: Subject, at: datetime, on_part: PartObserver | None = None
    ) -> ValidationReport:
        checks: list[str] = []
        notes: list[str] = []
        failures: list[CheckFailure] = []
        policy_results: list[PolicyResult] = []

        for report in await self._static_analysis(subject, checks, notes, on_part):
            failures += report.failures
        started = time.monotonic()
        cost = await self._cost(subject, checks, notes)
        if on_part is not None:
            on_part("cost forecast", started, time.monotonic() - started)
        plan_json = subject.plan_json or {"resource_changes": []}
        required: dict[str, str | None] = {**subject.required_tags, **self.policy.required_tags}
        for found, result in (
            rules.check_forbidden_types(plan_json, self.policy),
            rules.check_regions(plan_json, self.policy, subject.region),
            rules.check_required_tags(plan_json, required),
            rules.check_max_cost(cost.monthly_usd, self.policy),
        ):
            failures += found
            policy_results.append(result)
            checks.append(f"policy:{result.rule}")

        policy = self.policy
        if subject.forge_render:
            policy = policy.with_render_waivers(plan_json)
        findings = judge_all(failures, policy=policy, table=self.table, today=at.date())
        brake = None
        if subject.budget_monthly_usd is not None:
            brake = budget_brake(cost, subject.budget_monthly_usd)
            checks.append("budget_brake")
            if not brake.passed:
                findings.insert(0, _brake_finding(brake_message(brake, cost)))
        else:
            notes.append("no budget given: the 80 % budget brake was not evaluated")
        findings = sort_findings(findings)
        blocking = [f for f in findings if f.blocking]
        verdict = Verdict.FAIL if blocking else Verdict.PASS
        return ValidationReport(
            plan_id=subject.plan_id,
            verdict=verdict,
            reasons=_reasons(verdict, blocking, findings, self.policy, checks) + notes,
            checks_run=checks,
            findings=findings,
            policy_file=self.policy.source,
            cost=cost,
            policy=policy_results,
            budget_brake=brake,
            at=at,
        )

    async def _static_analysis(
        self,
        subject: Subject,
        checks: list[str],
        notes: list[str],
        on_part: PartObserver | None = None,
    ) -> list[ScanReport]:
        tools = self.tools
        plan_path = None if subject.stand_in_plan else subject.plan_json_path
        timed: list[_Timed] = []
        if self._splits_scans():
            # The .tf files were maybe scanned while terraform planned (start_hcl_scan).
            early = self._take_early(subject.hcl_dir) if subject.hcl_dir is not None else None
            hcl: list[_Timed] = []
            if early is not None:
                with contextlib.suppress(asyncio.CancelledError, CrewError):
                    hcl = await early
            if not hcl and subject.hcl_dir is not None:
                hcl = await self._scan_hcl(subject.hcl_dir)
            timed = hcl[:1]
            if plan_path is not None:
                scan = tools.checkov.scan(hcl_dir=None, plan_json=plan_path)
                timed.append(await _timed("checkov plan JSON", scan))
            timed += hcl[1:]
        else:
            both = tools.checkov.scan(
                hcl_dir=subject.hcl_dir,
                plan_json=plan_path,
                external_checks_dir=self.policy.custom_checks_dir,
            )
            timed.append(await _timed("checkov", both))
            if subject.hcl_dir is not None:
                timed += await self._scan_hcl_extra(subject.hcl_dir)
        reports: list[ScanReport] = []
        for name, started, seconds, found in timed:
            reports += found
            if on_part is not None:
                on_part(name, started, seconds)
        checks += [f"checkov:{s}" for s, p in (("hcl", subject.hcl_dir), ("plan", plan_path)) if p]
        if self.policy.custom_checks_dir is not None:
            checks.append(f"checkov:custom({self.policy.custom_checks_dir})")
        if subject.hcl_dir is not None:
            checks += [s.tool for s in (tools.trivy, tools.tfsec) if s is not None]
        if self.policy.rego_dir is not None:
            if tools.conftest is not None and plan_path is not None:
                reports.append(
                    await tools.conftest.test(
                        plan_path, self.policy.rego_dir, self.policy.rego_severity
                    )
                )
                checks.append(f"conftest({self.policy.rego_dir})")
            else:
                why = "conftest is not installed" if tools.conftest is None else "no plan JSON"
                reports.append(_rego_unavailable(self.policy, why))
        return reports

    async def _scan_hcl(self, hcl_dir: Path) -> list[_Timed]:
        """checkov, then trivy and tfsec when installed, on the .tf files alone."""
        checkov = await _timed(
            "checkov .tf files", self.tools.checkov.scan(hcl_dir=hcl_dir, plan_json=None)
        )
        return [checkov, *await self._scan_hcl_extra(hcl_dir)]

    async def _scan_hcl_extra(self, hcl_dir: Path) -> list[_Timed]:
        timed = []
        for scanner in (self.tools.trivy, self.tools.tfsec):
            if scanner is not None:
                report = await _timed(scanner.tool, _one(scanner.scan(hcl_dir)))
                timed.append(report)
        return timed

    async def _cost(self, subject: Subject, checks: list[str], notes: list[str]) -> CostReport:
        if subject.plan_json is None:
            checks.append("cost:none")
            return CostReport(monthly_usd=0, source="none", assumptions=["no plan to price"])
        if (
            self.tools.infracost is not None
            and subject.plan_json_path
            and not subject.stand_in_plan
        ):
            try:
                breakdown = await self.tools.infracost.breakdown(subject.plan_json_path)
            except CrewError as exc:
                notes.append(f"infracost failed ({exc}); priced with the built-in table instead")
            else:
                checks.append("cost:infracost")
                return from_infracost(breakdown, subject.plan_json, subject.plan)
        checks.append("cost:builtin")
        cost = forecast_cost(subject.plan_json, region=subject.region, plan=subject.plan)
        if subject.stand_in_plan:
            stated = "no plan JSON: priced from literal values in the .tf files"
            cost = cost.model_copy(update={"assumptions": [stated, *cost.assumptions]})
        return cost


async def _one(scan: Awaitable[ScanReport]) -> list[ScanReport]:
    return [await scan]


async def _timed(name: str, scan: Awaitable[list[ScanReport]]) -> _Timed:
    started = time.monotonic()
    reports = await scan
    return name, started, time.monotonic() - started, reports


def _brake_finding(message: str) -> Finding:
    return Finding(
        tool="budget",
        rule_id=BUDGET_BRAKE,
        severity=Severity.CRITICAL,
        message=message,
        guideline="not waivable: revise the goal with a larger budget, or a smaller design",
        blocking=True,
    )


def _rego_unavailable(policy: OrgPolicy, why: str) -> ScanReport:
    failure = CheckFailure(
        tool="policy",
        rule_id=REGO_UNAVAILABLE,
        resource=None,
        message=f"the policy names Rego policies in {policy.rego_dir}, but {why}: they were "
        "not evaluated",
        source="plan",
        severity=Severity.HIGH,
        guideline="install conftest (https://www.conftest.dev) or remove rego_dir",
    )
    return ScanReport(tool="policy", failures=[failure])


def _reasons(
    verdict: Verdict,
    blocking: list[Finding],
    findings: list[Finding],
    policy: OrgPolicy,
    checks: list[str],
) -> list[str]:
    if verdict is Verdict.FAIL:
        reasons = [f.message for f in blocking if f.rule_id == BUDGET_BRAKE]
        others = [f for f in blocking if f.rule_id != BUDGET_BRAKE]
        if others:
            listed = ", ".join(
                f"{f.rule_id} on {f.resource or 'the plan'} ({f.severity.value})"
                for f in others[:5]
            )
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            reasons.append(
                f"{len(others)} finding(s) at or above {policy.fail_on.value}: {listed}{more}"
            )
        return reasons
    waived = sum(f.waived for f in findings)
    below = len(findings) - waived
    return [
        f"passed: no finding at or above {policy.fail_on.value} "
        f"({below} below the threshold, {waived} waived); checks: {', '.join(checks)}"
    ]


def top_costs(cost: CostReport, n: int = 10) -> list[ResourceCost]:
    """The most expensive resources first, then the ones not priced (for summaries)."""
    priced = sorted(
        (r for r in cost.per_resource if r.monthly_usd is not None),
        key=lambda r: (-(r.monthly_usd or 0.0), r.address),
    )
    return priced[:n] + [r for r in cost.per_resource if r.monthly_usd is None]
