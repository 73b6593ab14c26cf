"""The audit benchmark: `python -m bench.audit [--rows N] [--quick] [--repeat K] [--json]`.

Generates N audit rows (default 1 000 000; `--quick` 50 000) of realistic runs into a scratch
database, then times every audit query the API and CLI run (each filter's first page, deep
pages by cursor, a CSV export, the four reports) through the product's own code
(memory/audit.py, memory/audit_reports.py), shows from EXPLAIN which index each one uses,
and times the same queries again without the indexes of migration 0005 (dropped inside a
transaction that is rolled back) to show what they buy. Prints a table.

Postgres: the server of CREW_DATABASE_URL when set, else the machine's
(postgresql://postgres@127.0.0.1:5432/postgres, override with CREW_BENCH_ADMIN_URL); a scratch
database is created and always dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, dict_row

from bench._generate_audit import generate
from bench._stack import Postgres
from crew.audit import AUDIT_COLUMNS, FilterText, csv_chunks, parse_query
from memory.audit import (
    AuditCursor,
    AuditKey,
    AuditLog,
    filter_fingerprint,
    filter_sql,
    probe_sql,
    rows_sql,
)
from memory.audit_reports import report_rows, report_sql
from memory.db import CONNECTION_KWARGS, open_pool, redact
from memory.migrate import migrate
from schemas.audit_query import AuditFilter, AuditOrder, ReportName

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MACHINE_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

#: Indexes of migration 0005 (dropped for the "without" column; 0001's crew_audit_at_idx is
#: recreated in their place, as the schema was before).
MIGRATION_0005_INDEXES = [
    "crew_audit_key_idx",
    "crew_audit_actor_idx",
    "crew_audit_event_idx",
    "crew_audit_to_state_idx",
    "crew_audit_from_state_idx",
    "crew_audit_validation_idx",
    "crew_runs_state_created_idx",
]


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Case:
    label: str
    run: Callable[[AsyncConnection[DictRow]], Awaitable[int]]
    explain: Callable[[AsyncConnection[DictRow]], Awaitable[str]]


@dataclass
class Timing:
    label: str
    rows: int
    p50_ms: float
    plan: str
    without_ms: float | None = None
    without_plan: str = ""


@dataclass
class Report:
    meta: dict[str, Any] = field(default_factory=dict)
    timings: list[Timing] = field(default_factory=list)


# -- the cases ------------------------------------------------------------------------------


def _listing(
    label: str, audit_filter: AuditFilter, limit: int, after: AuditKey | None, now: datetime
) -> Case:
    cursor = AuditCursor(after, now, filter_fingerprint(audit_filter)) if after else None

    async def run(conn: AsyncConnection[DictRow]) -> int:
        log = AuditLog(conn)
        bounds = await log.page_bounds(audit_filter, limit, cursor, now)
        return sum([1 async for _ in log.rows(audit_filter, bounds)])

    async def explain(conn: AsyncConnection[DictRow]) -> str:
        probe, params = probe_sql(audit_filter, limit, after)
        bounds = await AuditLog(conn).page_bounds(audit_filter, limit, cursor, now)
        parts = [f"probe {await _plan(conn, probe, params)}"]
        if bounds.upto is not None:
            query, params = rows_sql(audit_filter, bounds.after, bounds.upto)
            parts.append(f"rows {await _plan(conn, query, params)}")
        return "; ".join(parts)

    return Case(label, run, explain)


def _export(label: str, audit_filter: AuditFilter, limit: int, now: datetime) -> Case:
    async def run(conn: AsyncConnection[DictRow]) -> int:
        log = AuditLog(conn)
        bounds = await log.page_bounds(audit_filter, limit, None, now)
        size = 0
        async for chunk in csv_chunks(log.rows(audit_filter, bounds), AUDIT_COLUMNS):
            size += len(chunk)
        return limit

    return Case(label, run, _listing(label, audit_filter, limit, None, now).explain)


def _report(label: str, name: ReportName, audit_filter: AuditFilter, limit: int = 1000) -> Case:
    async def run(conn: AsyncConnection[DictRow]) -> int:
        return sum([1 async for _ in report_rows(conn, name, audit_filter, limit)])

    async def explain(conn: AsyncConnection[DictRow]) -> str:
        query, params = report_sql(name, audit_filter, limit)
        return await _plan(conn, query, params)

    return Case(label, run, explain)


async def _plan(conn: AsyncConnection[DictRow], query: str, params: dict[str, Any]) -> str:
    """The scans of the plan, compactly: index names (`only` for index-only scans), or
    `SEQ SCAN <table>` when a table is read in full."""
    cur = await conn.execute(f"EXPLAIN (FORMAT JSON) {query}".encode(), params)
    row = await cur.fetchone()
    assert row is not None
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node.get("Node Type", "")
        if "Index Name" in node:
            name = node["Index Name"].replace("crew_audit_", "audit_").replace("crew_", "")
            suffix = " only" if kind == "Index Only Scan" else ""
            suffix = " bitmap" if kind == "Bitmap Index Scan" else suffix
            found.append(name + suffix)
        elif kind == "Seq Scan":
            found.append(f"SEQ SCAN {node.get('Relation Name')}")
        for child in node.get("Plans", []):
            walk(child)

    walk(row["QUERY PLAN"][0]["Plan"])
    return ", ".join(dict.fromkeys(found)) or "-"


async def build_cases(conn: AsyncConnection[DictRow], now: datetime) -> list[Case]:
    """Filters whose values exist in the generated data (a run in the middle, approver 3,
    a day three months back)."""
    stats = await (await conn.execute("SELECT count(*) AS n FROM crew_runs")).fetchone()
    assert stats is not None
    middle_run = f"bench-{stats['n'] // 2:08d}"

    def f(**kw: Any) -> AuditFilter:
        return parse_query(FilterText(**kw), None, now).filter

    async def middle_key(audit_filter: AuditFilter) -> AuditKey:
        """The key of the filter's middle row (found once, not timed): a deep page's cursor."""
        conditions, params = filter_sql(audit_filter)
        where = " AND ".join(conditions) or "TRUE"
        count = await (
            await conn.execute(
                f"SELECT count(*) AS n FROM crew_audit WHERE {where}".encode(), params
            )
        ).fetchone()
        assert count is not None
        bounds = await AuditLog(conn).page_bounds(audit_filter, count["n"] // 2, None, now)
        assert bounds.upto is not None
        return bounds.upto

    day = (now - timedelta(days=90)).replace(hour=0, minute=0, second=0, microsecond=0)
    everything = f()
    approvals = f(events=["apply.request"])
    return [
        _listing("page 1 (100 rows), no filter", everything, 100, None, now),
        _listing("page 1, newest first", f(order=AuditOrder.DESC), 100, None, now),
        _listing(
            "page at the middle (cursor), no filter",
            everything,
            100,
            await middle_key(everything),
            now,
        ),
        _listing("run_id (one run)", f(run_id=middle_run), 100, None, now),
        _listing("actor (1 of 12 approvers)", f(actor="approver-3"), 100, None, now),
        _listing("event apply.request", approvals, 100, None, now),
        _listing(
            "event apply.request, middle page", approvals, 100, await middle_key(approvals), now
        ),
        _listing(
            "event rollback.done,rollback.failed",
            f(events=["rollback.done", "rollback.failed"]),
            100,
            None,
            now,
        ),
        _listing("state ROLLBACK", f(states=["ROLLBACK"]), 100, None, now),
        _listing(
            "from_state WAIT_FOR_APPROVE", f(from_states=["WAIT_FOR_APPROVE"]), 100, None, now
        ),
        _listing(
            "since/until: one day",
            f(since=day.isoformat(), until=(day + timedelta(days=1)).isoformat()),
            100,
            None,
            now,
        ),
        _listing(
            "actor + event + since 30d",
            f(actor="approver-3", events=["apply.request"], since="30d"),
            100,
            None,
            now,
        ),
        _export("CSV export, 10 000 rows", everything, 10_000, now),
        _report("report approvals-by-approver", ReportName.APPROVALS_BY_APPROVER, everything),
        _report(
            "report approvals-by-approver, 30d", ReportName.APPROVALS_BY_APPROVER, f(since="30d")
        ),
        _report("report runs-by-state", ReportName.RUNS_BY_STATE, everything),
        _report("report rollbacks (1000 newest)", ReportName.ROLLBACKS, everything),
        _report("report cost-vs-budget (1000 newest)", ReportName.COST_VS_BUDGET, everything),
    ]


# -- running ---------------------------------------------------------------------------------


async def _time(case: Case, conn: AsyncConnection[DictRow], repeat: int) -> tuple[int, float]:
    rows = await case.run(conn)  # warm-up (caches, plans)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        rows = await case.run(conn)
        samples.append((time.perf_counter() - start) * 1000)
    return rows, statistics.median(samples)


async def measure(conninfo: str, repeat: int, baseline_repeat: int) -> list[Timing]:
    now = datetime.now(UTC)
    conn = await AsyncConnection.connect(conninfo, **CONNECTION_KWARGS)
    try:
        cases = await build_cases(conn, now)
        timings = []
        for case in cases:
            rows, p50 = await _time(case, conn, repeat)
            timings.append(Timing(case.label, rows, p50, await case.explain(conn)))
            _say(f"{case.label}: {p50:.1f} ms")
        if baseline_repeat:
            _say("again without the 0005 indexes (dropped in a transaction, rolled back)")
            async with conn.transaction(force_rollback=True):
                for name in MIGRATION_0005_INDEXES:
                    await conn.execute(f"DROP INDEX {name}".encode())
                await conn.execute(b"CREATE INDEX crew_audit_at_idx ON crew_audit (at)")
                await conn.execute(b"ANALYZE crew_audit")
                for case, timing in zip(cases, timings, strict=True):
                    _, p50 = await _time(case, conn, baseline_repeat)
                    timing.without_ms = p50
                    timing.without_plan = await case.explain(conn)
                    _say(f"{case.label} without: {p50:.1f} ms")
        return timings
    finally:
        await conn.close()


async def run_bench(
    admin_url: str, label: str, rows: int, repeat: int, baseline_repeat: int, report: Report
) -> None:
    pg = Postgres(admin_url, label)
    try:
        conninfo = pg.create_database("crew_bench_audit")
        pool = await open_pool(conninfo, max_size=2)
        try:
            await migrate(pool)
        finally:
            await pool.close()
        started = time.perf_counter()
        async with await AsyncConnection.connect(
            conninfo, autocommit=True, row_factory=dict_row
        ) as conn:
            stats = await generate(conn, rows, _say)
        report.meta.update(stats, generate_s=round(time.perf_counter() - started, 1))
        report.timings = await measure(conninfo, repeat, baseline_repeat)
    finally:
        pg.drop_databases()


def render(report: Report) -> str:
    meta = report.meta
    header = ("query", "rows", "p50", "without 0005", "indexes used (EXPLAIN)")
    lines = [
        (
            t.label,
            str(t.rows),
            f"{t.p50_ms:.1f} ms",
            f"{t.without_ms:.1f} ms" if t.without_ms is not None else "-",
            t.plan,
        )
        for t in report.timings
    ]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            [*(c.ljust(w) for c, w in zip(cells, widths, strict=False)), cells[4]]
        ).rstrip()

    out = [
        "infra-crew audit benchmark",
        f"database: {meta['database']}; {meta['audit_rows']:,} audit rows of "
        f"{meta['runs']:,} runs ({meta['audit_size']}; indexes {meta['index_size']}); "
        f"generated in {meta['generate_s']} s; p50 of {meta['repeat']} after a warm-up; "
        f"{os.cpu_count()} CPUs",
        "",
        line(header),
        "  ".join("-" * w for w in [*widths, 22]),
        *(line(r) for r in lines),
    ]
    slow = [t for t in report.timings if t.without_ms is not None]
    if slow:
        out += ["", "plans without the 0005 indexes:"]
        out += [f"  {t.label}: {t.without_plan}" for t in slow]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows", type=int, default=None, help="audit rows to generate (default 1000000)"
    )
    parser.add_argument("--quick", action="store_true", help="50 000 rows, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per query")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip timing without the 0005 indexes"
    )
    parser.add_argument(
        "--json", action="store_true", help="also write bench/results/audit-<UTC time>.json"
    )
    args = parser.parse_args(argv)
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    repeat = args.repeat or (5 if args.quick else 9)
    baseline_repeat = 0 if args.no_baseline else 3
    logging.basicConfig(level=logging.WARNING)

    url = os.environ.get("CREW_DATABASE_URL")
    if url:
        admin, label = url, f"CREW_DATABASE_URL's server ({redact(url)})"
    else:
        admin = os.environ.get("CREW_BENCH_ADMIN_URL", MACHINE_ADMIN_URL)
        label = f"the machine's Postgres ({redact(admin)})"
    report = Report(meta={"database": label, "rows_asked": rows, "repeat": repeat})
    asyncio.run(run_bench(make_conninfo(admin), label, rows, repeat, baseline_repeat, report))
    print(render(report))
    if args.json:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"audit-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(
            json.dumps(
                {"meta": report.meta, "timings": [t.__dict__ for t in report.timings]}, indent=2
            )
        )
        _say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
