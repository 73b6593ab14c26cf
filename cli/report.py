"""The human summary of a ValidationReport: verdict and why, top findings, the cost table.

Shared by `crew validate` and `crew show`, so a reviewer sees the same thing either way.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from schemas.validation import Finding, Severity, ValidationReport, Verdict
from sentinel.engine import top_costs

_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def _status(f: Finding) -> str:
    if f.blocking:
        return "[red]blocks[/red]"
    if f.waived:
        return f"waived until {f.waiver_expires}" if f.waiver_expires else "waived"
    return "[yellow]waiver expired[/yellow]" if f.waiver_reason else "below threshold"


def findings_table(findings: list[Finding], limit: int) -> Table:
    table = Table(title=f"findings ({len(findings)}, top {min(limit, len(findings))})")
    for column in ("severity", "rule", "resource", "tool", "status", "message"):
        table.add_column(column, overflow="fold")
    for f in findings[:limit]:
        style = _SEVERITY_STYLE[f.severity]
        table.add_row(
            f"[{style}]{f.severity.value}[/{style}]",
            f.rule_id,
            f.resource or "-",
            f.tool + (f" ({'+'.join(f.sources)})" if f.sources else ""),
            _status(f),
            f.message[:160],
        )
    return table


def cost_table(report: ValidationReport, limit: int) -> Table:
    cost = report.cost
    table = Table(title=f"monthly cost ({cost.source})")
    for column in ("resource", "action", "USD/month", "was", "basis"):
        table.add_column(column, overflow="fold")
    for r in top_costs(cost, limit):
        table.add_row(
            r.address,
            r.action or "-",
            "not priced" if r.monthly_usd is None else f"{r.monthly_usd:,.2f}",
            "-" if r.previous_monthly_usd is None else f"{r.previous_monthly_usd:,.2f}",
            r.basis[:100],
        )
    return table


def print_validation(report: ValidationReport, out: Console, *, limit: int = 10) -> None:
    colour = "green" if report.verdict is Verdict.PASS else "red"
    out.print(
        f"validation [{colour} bold]{report.verdict.value}[/{colour} bold]  plan {report.plan_id}"
        f"  policy {report.policy_file or 'default'}"
    )
    for reason in report.reasons:
        out.print(f"  {reason}", soft_wrap=True)
    if report.findings:
        out.print(findings_table(report.findings, limit))
    cost = report.cost
    if cost.per_resource:
        out.print(cost_table(report, limit))
    line = f"forecast ${cost.monthly_usd:,.2f}/month"
    if cost.delta_monthly_usd is not None and cost.previous_monthly_usd is not None:
        line += f" (now ${cost.previous_monthly_usd:,.2f}, change {cost.delta_monthly_usd:+,.2f})"
    brake = report.budget_brake
    if brake is not None:
        verdict = "[green]ok[/green]" if brake.passed else "[red]BRAKE[/red]"
        line += (
            f"; brake at ${brake.limit_monthly_usd:,.2f} of ${brake.cap_monthly_usd:,.2f} {verdict}"
        )
    out.print(line)
    if cost.not_priced:
        out.print(f"not priced ({len(cost.not_priced)}): {', '.join(cost.not_priced[:10])}")
    for assumption in cost.assumptions:
        out.print(f"  assumes: {assumption}", soft_wrap=True)
    failed = [p for p in report.policy if not p.passed]
    for p in failed:
        out.print(f"  policy {p.rule}: [red]{p.message}[/red]", soft_wrap=True)
