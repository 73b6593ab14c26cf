"""Human output for the CLI (rich), and the JSON printer behind every `--json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from crew import __version__
from crew.progress import describe_progress
from crew.settings import Settings
from schemas.drift import DriftReport
from schemas.plan import DesignBlocked, PlanSpec, Provenance, Requirement
from schemas.run import RunDetail, RunSummary
from schemas.stack import StackDetail, StackStatus, StackSummary
from schemas.states import ConductorState
from sentinel.forecast import run_forecast, summary_forecast

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


#: The distribution `pip` installs (pyproject.toml's `[project] name`).
DISTRIBUTION = "infra-crew"


def package_version() -> str:
    """The installed version, as `pip show infra-crew` reports it (and a bug report needs)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return __version__


def print_version(program: str) -> Callable[[bool], None]:
    """A callback for an eager `--version`: print `PROGRAM VERSION`, exit 0."""

    def callback(value: bool) -> None:
        if value:
            out.print(f"{program} {package_version()}", highlight=False, markup=False)
            raise typer.Exit(0)

    return callback


def version_option(program: str) -> Any:
    """The eager `--version` option of a CLI app's root callback (`crew`, `atlas`)."""
    return typer.Option(
        "--version",
        callback=print_version(program),
        is_eager=True,
        help="Print the installed version and exit.",
        show_default=False,
    )


def setting_default(field: str, unset: str = "unset") -> str:
    """The `[default: ...]` of an option that falls back to a setting: the CREW_ variable
    when it is set, else the setting's own default (`unset` names what None means)."""
    default = Settings.model_fields[field].default
    return f"CREW_{field.upper()}, else {unset if default is None else default}"


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


def run_state_text(run: RunSummary) -> str:
    """The state, and for a run that ended what it did to the cloud: `DONE` alone does not
    say whether the apply stands or was rolled back."""
    outcome = run.summary.get("outcome")
    if run.state.is_terminal and outcome and outcome != "in progress":
        return f"{state_text(run.state)} ({outcome})"
    return state_text(run.state)


_STACK_STYLE = {
    StackStatus.DEPLOYED: "green",
    StackStatus.ROLLED_BACK: "yellow",
    StackStatus.NEEDS_ATTENTION: "bold red",
    StackStatus.PLANNED: "cyan",
}


def _usd(value: float | None) -> str:
    return f"${value:,.2f}" if value is not None else "-"


def stacks_table(stacks: list[StackSummary]) -> Table:
    table = Table(title=f"{len(stacks)} stack(s)", show_lines=False)
    for column in ("stack", "status", "title", "latest run", "runs", "forecast / budget"):
        table.add_column(column, no_wrap=column in ("stack", "latest run"))
    for s in stacks:
        style = _STACK_STYLE[s.status]
        table.add_row(
            s.stack_id,
            f"[{style}]{s.status.value}[/{style}]",
            s.title,
            f"{s.latest_run_id} {s.latest_state.value}",
            str(s.runs),
            f"{_usd(s.forecast_monthly_usd)} / {_usd(s.budget_monthly_usd)}",
        )
    return table


def print_stack(stack: StackDetail) -> None:
    style = _STACK_STYLE[stack.status]
    out.print(
        f"[bold]{stack.title}[/bold]  [{style}]{stack.status.value}[/{style}]", soft_wrap=True
    )
    out.print(
        f"stack {stack.stack_id}  goal {stack.goal_id}  region {stack.region}", soft_wrap=True
    )
    out.print(
        f"forecast {_usd(stack.forecast_monthly_usd)}/month of "
        f"{_usd(stack.budget_monthly_usd)}  state {stack.state_location}",
        soft_wrap=True,
    )
    runs = Table(title="runs (newest first)")
    for column in ("run", "revision", "state", "outcome", "updated"):
        runs.add_column(column, no_wrap=column == "run")
    for r in stack.revisions:
        runs.add_row(
            r.run_id,
            str(r.revision),
            state_text(r.state),
            r.outcome.value,
            r.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(runs)
    if stack.resources is None:
        err.print(f"[yellow]{stack.state_error}[/yellow]", soft_wrap=True)
        return
    out.print(f"{len(stack.resources)} resource(s) in the state")
    for resource in stack.resources:
        out.print(f"  {resource.address}", soft_wrap=True, markup=False)
    for name, value in stack.outputs.items():
        out.print(f"output {name} = {value}", soft_wrap=True, markup=False)


def print_drift(report: DriftReport, *, accepted: bool = False) -> None:
    if accepted:
        out.print(
            f"drift of stack {report.stack_id} accepted ({len(report.resources)} resource(s))"
        )
    elif not report.drifted:
        out.print(
            f"[green]no drift[/green] in stack {report.stack_id} "
            f"(run {report.run_id}, {report.duration_s:.1f}s)"
        )
        return
    else:
        out.print(
            f"[bold red]drift[/bold red] in stack {report.stack_id}: "
            f"{len(report.resources)} resource(s) differ from run {report.run_id}'s apply"
        )
    for r in report.resources:
        what = "deleted outside Terraform" if r.action.value == "delete" else "changed"
        attrs = f": {', '.join(r.attributes)}" if r.attributes else ""
        out.print(f"  {r.address} {what}{attrs}", soft_wrap=True, markup=False)


def print_runs(runs: list[RunSummary]) -> None:
    """The runs list. A run id is what `crew approve` needs, so it is never cut: the table
    keeps it (and the state) on one line, and a terminal too narrow for that table gets one
    block per run instead, the id on a line of its own."""
    table = runs_table(runs)
    if table.__rich_measure__(out, out.options).minimum <= out.width:
        out.print(table)
        return
    out.print(f"{len(runs)} run(s)")
    for r in runs:
        out.print(r.run_id, no_wrap=True, overflow="ignore", crop=False)
        for line in (
            f"{run_state_text(r)}  {_updated(r)}",
            escape(r.title),
            f"by {escape(r.requested_by or '-')}  {_money(r)}",
        ):
            out.print(Padding(line, (0, 0, 0, 2), expand=False))


def runs_table(runs: list[RunSummary]) -> Table:
    table = Table(title=f"{len(runs)} run(s)", show_lines=False)
    table.add_column("run", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for column in ("title", "requested by", "forecast / budget", "updated"):
        table.add_column(column, overflow="fold")
    for r in runs:
        table.add_row(
            r.run_id,
            run_state_text(r),
            escape(r.title),
            escape(r.requested_by or "-"),
            _money(r),
            _updated(r),
        )
    return table


def _updated(r: RunSummary) -> str:
    return r.updated_at.strftime("%Y-%m-%d %H:%M:%S")


def _money(r: RunSummary) -> str:
    """The run's one figure against its budget; Atlas's figure is named a design estimate."""
    forecast = summary_forecast(r.summary)
    budget = r.summary.get("budget_monthly_usd")
    of_budget = f" / ${budget:,.2f}" if isinstance(budget, int | float) else ""
    if forecast is None:
        return f"-{of_budget}" if of_budget else "-"
    label = "" if forecast.source == "validated" else " (design estimate)"
    return f"${forecast.monthly_usd:,.2f}{of_budget}{label}"


def print_plan(plan: PlanSpec) -> None:
    out.print(f"[bold]{plan.summary}[/bold]", soft_wrap=True)
    out.print(f"plan {plan.plan_id}  region {plan.region}  environment {plan.environment.value}")
    table = Table(title="components")
    for column in ("name", "type", "design estimate USD/month", "basis"):
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
        f"design estimate ${b.forecast_monthly_usd:,.2f}/month of ${b.cap_monthly_usd:,.2f} "
        f"({share:.0%}; brake at ${b.brake_monthly_usd:,.2f})"
    )
    print_provenance(plan.provenance, "designed")
    for risk in plan.risks:
        out.print(f"risk ({risk.severity.value}): {risk.description}", soft_wrap=True)
        if risk.mitigation:
            out.print(f"  mitigation: {risk.mitigation}", soft_wrap=True)
    print_asked_vs_designed(plan.requirements)


_STATUS_STYLE = {"met": "green", "assumed": "yellow", "refused": "red", "unsupported": "red"}


def print_asked_vs_designed(requirements: Sequence[Requirement]) -> None:
    """Every ask of the goal beside what the design does about it (gaps first)."""
    from catalog.gaps import asked_vs_designed  # the catalog's tables load when first shown

    rows = asked_vs_designed(requirements)
    if not rows:
        return
    table = Table(title="asked vs designed")
    for column in ("status", "asked", "where", "designed / why"):
        table.add_column(column, overflow="fold")
    for status, asked, where, why in rows:
        style = _STATUS_STYLE.get(status, "")
        table.add_row(f"[{style}]{status}[/{style}]" if style else status, asked, where, why)
    out.print(table)


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
    print_asked_vs_designed(blocked.requirements)
    if blocked.provenance is not None:
        print_provenance(blocked.provenance, "tried")


def print_timings(detail: RunDetail) -> None:
    """Where the run's time went: each step from the run's creation, and the parts inside
    (parts that ran side by side overlap; a negative start began in the step before)."""
    table = Table("step", "starts at", "seconds", box=None, pad_edge=False)
    for timing in detail.timings:
        at = (timing.started_at - detail.created_at).total_seconds()
        table.add_row(timing.step, f"{at:.2f}", f"{timing.seconds:.2f}")
        for part in timing.parts:
            table.add_row(f"  {part.name}", f"{at + part.offset_s:.2f}", f"{part.seconds:.2f}")
    gate = next((t for t in detail.timings if t.step == "request_approval"), None)
    if gate is not None:
        end = gate.started_at - detail.created_at
        total = end.total_seconds() + gate.seconds
        table.add_row("[bold]to the gate[/bold]", "", f"[bold]{total:.2f}[/bold]")
    out.print("timings (seconds from the run's creation):")
    out.print(table)


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
    request = a.approval_request
    if request is not None and request.revision > 1:
        out.print(
            f"revision {request.revision}: {request.create} to create, {request.update} to "
            f"update, {request.replace} to replace, {request.delete} to destroy"
        )
        for change in request.changes[:50]:
            attrs = f" ({', '.join(change.attributes[:6])})" if change.attributes else ""
            out.print(f"  {'/'.join(change.actions)} {change.address}{attrs}")
    if request is not None and request.stateful_changes:
        out.print("[red]data may be lost[/red] (approve with --acknowledge-stateful):")
        for c in request.stateful_changes:
            verb = "replaces" if c.action == "replace" else "deletes"
            out.print(f"  {verb} {c.kind} {c.address}")
    if a.validation:
        v = a.validation
        colour = "green" if v.verdict.value == "PASS" else "red"
        out.print(f"validation [{colour}]{v.verdict.value}[/{colour}] ({', '.join(v.checks_run)})")
        for reason in v.reasons:
            out.print(f"  {reason}")
    forecast = run_forecast(a.plan, a.validation)
    if forecast is not None and forecast.source == "validated":
        cap = f" of ${forecast.budget_usd:,.2f}" if forecast.budget_usd else ""
        share = f" ({forecast.share:.0%})" if forecast.share is not None else ""
        source = a.validation.cost.source if a.validation else "builtin"
        out.print(
            f"[bold]forecast ${forecast.monthly_usd:,.2f}/month{cap}{share}[/bold], "
            f"priced from the terraform plan ({source} prices)"
        )
    if detail.progress is not None:
        line = describe_progress(detail.progress)
        out.print(f"terraform ({detail.progress.step}) {escape(line)}", soft_wrap=True)
    if detail.timings:
        print_timings(detail)
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
