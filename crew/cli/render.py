"""Human output for the CLI (rich), and the JSON printer behind every `--json`."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from schemas.plan import DesignBlocked, PlanSpec, Provenance
from schemas.run import RunDetail, RunSummary
from schemas.states import ConductorState

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_STATE_STYLE = {
    ConductorState.DONE: "green",
    ConductorState.WAIT_FOR_APPROVE: "yellow",
    ConductorState.BLOCKED: "red",
    ConductorState.REJECTED: "red",
    ConductorState.FAILED: "bold red",
    ConductorState.ROLLBACK: "magenta",
}


def print_json(value: BaseModel | list[Any] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, list):
        data = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    else:
        data = value
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def state_text(state: ConductorState) -> str:
    style = _STATE_STYLE.get(state, "cyan")
    return f"[{style}]{state.value}[/{style}]"


def runs_table(runs: list[RunSummary]) -> Table:
    table = Table(title=f"{len(runs)} run(s)", show_lines=False)
    for column in ("run", "state", "title", "requested by", "forecast / budget", "updated"):
        table.add_column(column)
    for r in runs:
        forecast = r.summary.get("forecast_monthly_usd")
        budget = r.summary.get("budget_monthly_usd")
        money = (
            f"${forecast:,.2f} / ${budget:,.2f}"
            if forecast is not None
            else f"- / ${budget:,.2f}"
            if budget
            else "-"
        )
        table.add_row(
            r.run_id,
            state_text(r.state),
            r.title,
            r.requested_by or "-",
            money,
            r.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


def print_plan(plan: PlanSpec) -> None:
    out.print(f"[bold]{plan.summary}[/bold]", soft_wrap=True)
    out.print(f"plan {plan.plan_id}  region {plan.region}  environment {plan.environment.value}")
    table = Table(title="components")
    for column in ("name", "type", "monthly USD", "basis"):
        table.add_column(column)
    lines = {line.component: line for line in plan.budget.breakdown}
    for c in plan.components:
        line = lines.get(c.name)
        cost = f"{line.monthly_usd:,.2f}" if line else "-"
        table.add_row(c.name, c.type, cost, line.basis if line else "")
    out.print(table)
    b = plan.budget
    share = b.forecast_monthly_usd / b.cap_monthly_usd if b.cap_monthly_usd else 0
    out.print(
        f"forecast ${b.forecast_monthly_usd:,.2f}/month of ${b.cap_monthly_usd:,.2f} "
        f"({share:.0%}; brake at ${b.brake_monthly_usd:,.2f})"
    )
    print_provenance(plan.provenance, "designed")
    for risk in plan.risks:
        out.print(f"risk ({risk.severity.value}): {risk.description}", soft_wrap=True)
        if risk.mitigation:
            out.print(f"  mitigation: {risk.mitigation}", soft_wrap=True)


def print_provenance(p: Provenance, what: str) -> None:
    """Who planned, how, at what cost, and every answer validation refused (and why)."""
    by = f"{p.planner} ({p.model})" if p.model else p.planner
    tokens = f", {p.prompt_tokens}+{p.completion_tokens} tokens" if p.model else ""
    how = f", {p.output_method}" if p.output_method else ""
    out.print(f"{what} by {by} in {p.attempts} attempt(s){tokens}{how}", soft_wrap=True)
    for r in p.rejected:
        out.print(f"  attempt {r.attempt} rejected: {'; '.join(r.problems)}", soft_wrap=True)


def print_blocked(blocked: DesignBlocked) -> None:
    out.print("[red bold]design blocked[/red bold]")
    for reason in blocked.reasons:
        out.print(f"- [bold]{reason.constraint}[/bold]: {reason.why}")
        out.print(f"  fix: {reason.suggestion}")
    if blocked.provenance is not None:
        print_provenance(blocked.provenance, "tried")


def print_run(detail: RunDetail) -> None:
    out.print(f"[bold]{detail.title}[/bold]  run {detail.run_id}  {state_text(detail.state)}")
    a = detail.artifacts
    if a.plan:
        print_plan(a.plan)
    if a.design_blocked:
        print_blocked(a.design_blocked)
    if a.build:
        p = a.build.plan
        status = "ok" if a.build.ok else "[red]failed[/red]"
        out.print(
            f"build {status}: {p.create} to add, {p.update} to change, {p.delete} to destroy"
            f"  (workspace {a.build.workspace})"
        )
        for e in a.build.errors:
            out.print(f"  [red]error[/red] {e.summary}: {e.detail}")
    if a.validation:
        v = a.validation
        colour = "green" if v.verdict.value == "PASS" else "red"
        out.print(f"validation [{colour}]{v.verdict.value}[/{colour}] ({', '.join(v.checks_run)})")
        for reason in v.reasons:
            out.print(f"  {reason}")
    if detail.waiting_for_approval:
        out.print(
            f"[yellow]waiting for approval:[/yellow] crew approve {detail.run_id}  |  "
            f"crew reject {detail.run_id} --reason '...'"
        )
    if a.decision:
        d = a.decision
        out.print(
            f"{d.decision.value} by {d.actor} via {d.channel.value} at {d.at:%Y-%m-%d %H:%M:%S}"
        )
    for label, result in (("apply", a.apply_result), ("rollback", a.rollback_result)):
        if result:
            status = "ok" if result.ok else f"[red]failed[/red]: {result.error}"
            r = result.resources
            out.print(
                f"{label} {status}: {r.added} added, {r.changed} changed, {r.destroyed} destroyed "
                f"in {result.duration_s:.1f}s"
            )
            for key, value in result.outputs.items():
                out.print(f"  {key} = {value}")
            if result.restored:
                out.print(f"  restored {result.restored}")
            if result.sla_met is not None:
                verdict = "met" if result.sla_met else "[red]missed[/red]"
                out.print(f"  rollback SLA (begin < 5 min, finish < 15 min): {verdict}")
            if result.page_human:
                out.print("  [red bold]page a human: the stack needs a person now[/red bold]")
    if a.rollback_request:
        asked = a.rollback_request
        out.print(
            f"rollback requested by {asked.actor} via {asked.channel.value} "
            f"at {asked.at:%Y-%m-%d %H:%M:%S}"
        )
    if (
        detail.state is ConductorState.DONE
        and a.apply_result
        and a.apply_result.ok
        and not (a.rollback_result)
    ):
        out.print(f"to undo it: crew rollback {detail.run_id}")
    if detail.error and detail.state is not ConductorState.DONE:
        out.print(f"[red]{detail.error}[/red]")
    if detail.last_error:
        out.print(f"[red]worker error (retrying):[/red] {detail.last_error}")
