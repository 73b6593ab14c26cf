"""`crew audit`: the audit log filtered, paged and exported (table, JSON, CSV), the canned
reports, and the gate log. Same filters, values and messages as `GET /v1/audit`.

Exit codes: 0 success; 1 an error (database unreachable); 2 bad input (an unknown event or
state, an unreadable time, a cursor from other filters, options that do not go together).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from cli.render import err, out, print_json, state_text
from crew.audit import (
    AUDIT_COLUMNS,
    CLI_NAMES,
    MAX_LIMIT,
    AuditQuery,
    FilterText,
    check_report_filter,
    csv_chunks,
    parse_query,
)
from schemas.approval import GateLogEntry
from schemas.audit import AuditRecord
from schemas.audit_query import (
    AUDIT_EVENTS,
    REPORT_FILTERS,
    REPORT_ROWS,
    REPORT_TIME,
    AuditOrder,
    ReportName,
)
from schemas.base import Contract
from schemas.inputs import InputError
from schemas.states import ConductorState

if TYPE_CHECKING:
    from crew.container import Services
    from crew.settings import Settings

T = TypeVar("T")


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


_REPORTS_HELP = "; ".join(
    f"{name.value} ({', '.join(CLI_NAMES[f] for f in sorted(REPORT_FILTERS[name]))}; "
    f"times: {REPORT_TIME[name]})"
    for name in ReportName
)

AUDIT_HELP = f"""The append-only audit log: who moved which run where, and when.

Filters combine (all must hold); --event, --state and --from-state take several values
(repeat the option or separate with commas). Times are ISO 8601 (UTC when no offset), a date,
an age before now (90m, 24h, 7d, 2w) or 'now'; --since is inclusive, --until exclusive.

Paging is by cursor: when more rows follow, the next cursor is printed on stderr; pass it
back with the same filters. It never repeats or skips a row, even while runs write new
ones. --all follows the cursors to the end (an export).

Reports (--report NAME): {_REPORTS_HELP}.

Examples:

  crew audit RUN_ID                                  # one run's history

  crew audit --actor alice --event apply.request --since 7d

  crew audit --state ROLLBACK,FAILED --order desc --limit 20

  crew audit --since 2026-01-01 --until 2026-02-01 --all --format csv > january.csv

  crew audit --report approvals-by-approver --since 30d

  crew audit --report cost-vs-budget --format csv > cost.csv

  crew audit --gate --run RUN_ID                     # refusals, expiries, SLA alerts

Events: {", ".join(e.value for e in AUDIT_EVENTS)}.

Exit codes: 0 ok, 1 error, 2 bad input."""

ListOpt = list[str] | None


def _bad(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(2)


def _checked(parse: Callable[[], T]) -> T:
    """Input checked before any database is opened: problems printed, exit 2."""
    try:
        return parse()
    except InputError as exc:
        for problem in exc.problems:
            field, text = escape(problem.field or "(input)"), escape(problem.problem)
            err.print(f"[red]{field}[/red]: {text}", soft_wrap=True)
            err.print(f"  fix: {problem.fix}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from exc


def audit_command(
    run_arg: Annotated[
        str | None, typer.Argument(metavar="RUN_ID", help="Only this run (same as --run).")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only rows recorded for this actor (exact).")
    ] = None,
    event: Annotated[ListOpt, typer.Option("--event", help="Event type(s).")] = None,
    state: Annotated[
        ListOpt, typer.Option("--state", help="Rows that moved a run INTO this state.")
    ] = None,
    from_state: Annotated[
        ListOpt, typer.Option("--from-state", help="Rows that moved a run OUT of this state.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="At or after this time.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time.")] = None,
    order: Annotated[
        AuditOrder, typer.Option(help="asc: oldest first; desc: newest first.")
    ] = AuditOrder.ASC,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="Rows per page (and per report).")
    ] = 1000,
    cursor: Annotated[
        str | None, typer.Option(help="Continue after a previous page (same filters).")
    ] = None,
    all_pages: Annotated[
        bool, typer.Option("--all", help="Follow the cursors to the last row.")
    ] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people), json or csv.")
    ] = OutputFormat.TABLE,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    report: Annotated[
        ReportName | None, typer.Option(help="A canned report instead of the rows.")
    ] = None,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate",
            help="The gate log instead: refused decisions, expired approvals, rollback SLA alerts.",
        ),
    ] = False,
) -> None:
    from cli.runner import load_settings
    from crew.logs import configure_logging

    if as_json:
        fmt = OutputFormat.JSON
    if run_arg and run and run_arg != run:
        _bad(f"RUN_ID '{run_arg}' and --run '{run}' disagree; give one of them")
    text = FilterText(
        run_id=run or run_arg,
        actor=actor,
        events=event or (),
        states=state or (),
        from_states=from_state or (),
        since=since,
        until=until,
        order=order,
    )
    paging = [n for n, v in (("--cursor", cursor), ("--all", all_pages)) if v]
    if gate:
        extra = [CLI_NAMES[n] for n in text.given() if n != "run_id"] + paging
        extra += ["--report"] if report else []
        extra += ["--format csv"] if fmt is OutputFormat.CSV else []
        if extra:
            _bad(f"--gate takes only --run, --limit and --json; remove {', '.join(extra)}")
        settings = load_settings()
        configure_logging("WARNING")
        _gate_log(settings, text.run_id, limit, fmt is OutputFormat.JSON)
        return
    if report is not None:
        if paging or order is not AuditOrder.ASC:
            _bad(f"{', '.join(paging or ['--order'])} does not apply to --report; remove it")
        name = report
        _checked(lambda: check_report_filter(name, text, CLI_NAMES))
    query = _checked(lambda: parse_query(text, cursor, datetime.now(UTC), CLI_NAMES))
    settings = load_settings()
    configure_logging("WARNING")
    if report is not None:
        _run(settings, lambda s: _print_report(s, report, query, limit, fmt))
    else:
        _run(settings, lambda s: _print_rows(s, query, limit, fmt, all_pages))


def _run(settings: Settings, body: Callable[[Services], Awaitable[None]]) -> None:
    from cli.runner import run_async
    from crew.container import open_services

    async def main() -> None:
        async with open_services(settings) as services:
            await body(services)

    run_async(main())


async def _print_rows(
    services: Services, query: AuditQuery, limit: int, fmt: OutputFormat, all_pages: bool
) -> None:
    from memory.audit import AuditLog

    log = AuditLog(services.pool)
    cursor, first_page, first_row = query.cursor, True, True
    if fmt is OutputFormat.JSON:
        sys.stdout.write("[")
    while True:
        bounds = await log.page_bounds(query.filter, limit, cursor, query.started_at)
        rows = log.rows(query.filter, bounds)
        if fmt is OutputFormat.CSV:
            async for chunk in csv_chunks(rows, AUDIT_COLUMNS, header=first_page):
                sys.stdout.write(chunk)
        elif fmt is OutputFormat.JSON:
            async for record in rows:
                sys.stdout.write(("\n" if first_row else ",\n") + record.model_dump_json())
                first_row = False
        else:
            async for record in rows:
                out.print(_line(record), soft_wrap=True)
        first_page = False
        cursor = bounds.next_cursor
        if cursor is None:
            break
        if not all_pages:
            sys.stdout.flush()
            err.print(
                "more rows follow: repeat the command with "
                f"--cursor {cursor.encode()} (or use --all)",
                soft_wrap=True,
                markup=False,
            )
            break
    if fmt is OutputFormat.JSON:
        sys.stdout.write("\n]\n")


def _line(r: AuditRecord) -> str:
    came = r.from_state.value if r.from_state else "-"
    note = f"  ({escape(r.note[:80])})" if r.note else ""
    return (
        f"{r.at:%Y-%m-%d %H:%M:%S}  {escape(r.run_id)}  #{r.seq:<3} {r.event.value:<20} "
        f"{came} -> {state_text(r.to_state)}  by {escape(r.actor)}{note}"
    )


async def _print_report(
    services: Services, name: ReportName, query: AuditQuery, limit: int, fmt: OutputFormat
) -> None:
    from memory.audit_reports import report_rows

    rows = report_rows(services.pool, name, query.filter, limit)
    columns = list(REPORT_ROWS[name].model_fields)
    if fmt is OutputFormat.CSV:
        async for chunk in csv_chunks(rows, columns):
            sys.stdout.write(chunk)
        return
    collected = [row async for row in rows]  # a report is small: at most --limit rows
    if fmt is OutputFormat.JSON:
        print_json(collected)
        return
    out.print(_report_table(name, columns, collected))


def _report_table(name: ReportName, columns: list[str], rows: list[Contract]) -> Table:
    table = Table(title=f"{name.value}: {len(rows)} row(s)")
    for column in columns:
        # an id is copied into the next command: wrap the other columns, never the id
        is_id = column.endswith("_id")
        table.add_column(
            column.replace("_", " "), no_wrap=is_id, overflow="ellipsis" if is_id else "fold"
        )
    for row in rows:
        table.add_row(*(_text(getattr(row, c)) for c in columns))
    return table


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, ConductorState):
        return state_text(value)
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return escape(str(value))


def _gate_log(settings: Settings, run: str | None, limit: int, as_json: bool) -> None:
    entries: list[GateLogEntry] = []

    async def body(services: Services) -> None:
        entries.extend(await services.gate.entries(run, limit))

    _run(settings, body)
    if as_json:
        print_json(entries)
        return
    for e in entries:
        who = f"{e.actor} via {e.channel.value}" if e.actor and e.channel else e.actor or "-"
        out.print(
            f"{e.at:%Y-%m-%d %H:%M:%S}  {e.run_id or '-'}  {e.kind:<22} {e.action or '-':<8} "
            f"by {who}: {e.detail}",
            soft_wrap=True,
            markup=False,
        )
