"""`crew shield`: Shield-Lite's advisories matched to deployed stacks, a poll now, a Plan fix.

Exit codes: 0 ok; 1 an error, or (`poll`) a feed failed; 2 unknown stack or advisory, bad
settings; 4 the catalog cannot fix the advisory (`plan-fix`).
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.render import out, print_json
from schemas.shield import FeedOutcome, OpenAdvisory, PlanFixProposal, ShieldMatch, ShieldPollReport

if TYPE_CHECKING:
    from crew.container import Services

shield_app = typer.Typer(
    help=(
        "Shield-Lite: security advisories (RSS/Atom feeds, NVD CVE API 2.0 JSON) matched to what "
        "deployed stacks run (database engines, images, runtimes, TLS policies, terraform and "
        "its AWS provider). Feeds come from CREW_SHIELD_FEEDS; workers poll them every "
        "CREW_SHIELD_INTERVAL_S."
    ),
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def _matches_table(matches: list[ShieldMatch], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("stack", "advisory", "severity", "affected", "fix"):
        table.add_column(column)
    for m in matches:
        version = f" {m.item.version}" if m.item.version else ""
        fix = f"{m.fix.component} -> {m.fix.proposed}" if m.fix else "-"
        table.add_row(
            escape(m.stack_id),
            escape(m.advisory.advisory_id),
            m.advisory.severity.value,
            escape(f"{m.item.product}{version} ({m.item.address})"),
            escape(fix),
        )
    return table


def _print_poll(report: ShieldPollReport) -> None:
    for feed in report.feeds:
        line = f"{feed.outcome.value:<12} {escape(feed.feed)}"
        if feed.outcome is FeedOutcome.FETCHED:
            line += f" ({feed.entries} entries, {feed.format.value if feed.format else '?'})"
        if feed.error:
            line += f" [red]{escape(feed.error)}[/red]"
        out.print(line, soft_wrap=True)
    if not report.feeds:
        out.print("no feeds configured: set CREW_SHIELD_FEEDS (http(s) URLs or absolute paths)")
    out.print(
        f"{report.stacks} deployed stack(s) matched; {len(report.matched)} new advisory "
        f"match(es), {report.known} already known"
    )
    if report.matched:
        out.print(_matches_table(report.matched, "new matches"))
        for m in report.matched:
            out.print(f"  {escape(m.advisory.advisory_id)}: {escape(m.reason)}", soft_wrap=True)


@shield_app.command("poll")
def poll(
    actor: Annotated[str | None, typer.Option(help="Who asks (default: your user name).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Poll every advisory feed now (conditional GETs) and match against every deployed stack.

    New matches are announced (OpsEvent shield.advisory, gate log, Slack) and printed. Exit 0,
    or 1 when a feed failed (it is reported and backs off; the others were still read)."""
    from cli.runner import load_settings, run_async, with_services
    from crew.logs import configure_logging
    from crew.shield import poll_feeds

    settings = load_settings()
    configure_logging("WARNING")
    who = actor or getpass.getuser()

    async def body(services: Services) -> ShieldPollReport:
        return await poll_feeds(services, trigger=f"cli:{who}")

    report = run_async(with_services(settings, body))
    if as_json:
        print_json(report)
    else:
        _print_poll(report)
    raise typer.Exit(1 if any(f.outcome is FeedOutcome.FAILED for f in report.feeds) else 0)


@shield_app.command("list")
def list_command(
    stack_id: Annotated[
        str | None, typer.Argument(help="Only this stack (crew stacks lists ids).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Advisories matched to deployed stacks (per stack, newest first), with why they matched
    and the catalog fix when there is one. Exit 2 for an unknown stack."""
    from cli.runner import load_settings, run_async, with_services
    from crew.logs import configure_logging
    from crew.shield_views import list_advisories

    settings = load_settings()
    configure_logging("WARNING")

    async def body(services: Services) -> list[OpenAdvisory]:
        return await list_advisories(services, stack_id)

    found = run_async(with_services(settings, body))
    if as_json:
        print_json(found)
        return
    if not found:
        out.print("no advisories match a deployed stack")
        return
    out.print(_matches_table([a.match for a in found], "advisories"))


@shield_app.command("plan-fix")
def plan_fix_command(stack_id: str, advisory_id: str, as_json: JsonOpt = False) -> None:
    """The Plan fix for one advisory: the stack's applied PlanSpec with the catalog change
    (an engine minor-version pin), validated by the catalog. Nothing is applied.

    Exit 2 unknown stack or advisory, 4 when the catalog cannot fix it."""
    from cli.runner import load_settings, run_async, with_services
    from crew.logs import configure_logging
    from crew.shield_fix import plan_fix

    settings = load_settings()
    configure_logging("WARNING")

    async def body(services: Services) -> PlanFixProposal:
        return await plan_fix(services, stack_id, advisory_id)

    proposal = run_async(with_services(settings, body))
    if as_json:
        print_json(proposal)
        return
    out.print(f"Plan fix for {escape(advisory_id)} in stack {escape(stack_id)}:")
    for line in proposal.diff:
        out.print(f"  {escape(line)}")
    out.print("Submit the proposed PlanSpec (--json shows it) as the stack's next revision.")
