"""Audit queries on a real Postgres: every filter, keyset paging while rows are being written,
JSON and CSV exports, the canned reports, GET /v1/audit over real HTTP, and `crew audit`.

The read-only tests share one seeded database (tests/integration/audit_support.py); the test
that writes while paging gets its own (the `database_url` fixture).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from api.app import create_app
from crew.access import Role, new_token, token_entry
from crew.audit import AUDIT_COLUMNS, FilterText, csv_chunks, json_chunks, parse_query
from crew.settings import Settings
from memory.audit import AuditLog
from memory.audit_reports import report_rows
from memory.db import Pool, open_pool
from memory.migrate import migrate
from schemas.audit_query import AuditOrder, ReportName
from tests.integration._support import serve_app, wait_until
from tests.integration.audit_support import (
    T0,
    Row,
    all_rows,
    build_runs,
    insert_runs,
)

pytestmark = pytest.mark.integration

RUNS = build_runs()
ROWS = all_rows(RUNS)
ROOT = Path(__file__).resolve().parents[2]
NOW = T0 + timedelta(days=1)


def _keys(rows: list[Any]) -> list[tuple[str, int]]:
    return [(r.run_id, r.seq) for r in rows]


async def _migrated(url: str) -> None:
    pool = await open_pool(url, max_size=2)
    try:
        await migrate(pool)
    finally:
        await pool.close()


def _create_db(admin_url: str) -> tuple[str, str]:
    name = f"crew_test_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def seeded_url(admin_url: str) -> Iterator[str]:
    """One database with the known history, shared by the tests that only read."""
    name, url = _create_db(admin_url)
    try:
        asyncio.run(_migrated(url))
        with psycopg.connect(url, autocommit=True) as conn:
            insert_runs(conn, RUNS)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
async def pool(seeded_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(seeded_url, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def _list(pool: Pool, text: FilterText, limit: int = 1000) -> list[Any]:
    query = parse_query(text, None, NOW)
    page = await AuditLog(pool).page(query.filter, limit, None, query.started_at)
    assert page.next_cursor is None
    return page.items


# -- every filter ------------------------------------------------------------------------------

H = timedelta(hours=1)
FILTERS: list[tuple[str, FilterText, Callable[[Row], bool]]] = [
    ("none", FilterText(), lambda r: True),
    ("run", FilterText(run_id="run-2-rolled_back"), lambda r: r.run_id == "run-2-rolled_back"),
    ("actor", FilterText(actor="alice"), lambda r: r.actor == "alice"),
    ("one event", FilterText(events=["apply.request"]), lambda r: r.event == "apply.request"),
    (
        "several events",
        FilterText(events=["rollback.done,rollback.failed"]),
        lambda r: r.event in ("rollback.done", "rollback.failed"),
    ),
    ("state", FilterText(states=["ROLLBACK"]), lambda r: r.to_state == "ROLLBACK"),
    (
        "several states, any case",
        FilterText(states=["done", "Failed"]),
        lambda r: r.to_state in ("DONE", "FAILED"),
    ),
    (
        "from state",
        FilterText(from_states=["WAIT_FOR_APPROVE"]),
        lambda r: r.from_state == "WAIT_FOR_APPROVE",
    ),
    ("since", FilterText(since=(T0 + 2 * H).isoformat()), lambda r: r.at >= T0 + 2 * H),
    ("until", FilterText(until="2026-01-05T11:00:00Z"), lambda r: r.at < T0 + 2 * H),
    (
        "since and until",
        FilterText(since="2026-01-05T10:03:00+00:00", until="2026-01-05T12:02"),
        lambda r: T0 + H + timedelta(minutes=3) <= r.at < T0 + 3 * H + timedelta(minutes=2),
    ),
    (
        "relative since",
        FilterText(since="19h"),  # NOW - 19h = T0 + 5h
        lambda r: r.at >= T0 + 5 * H,
    ),
    (
        "combined",
        FilterText(actor="forge", events=["rollback.done", "rollback.failed"], since="2026-01-05"),
        lambda r: r.actor == "forge" and r.event in ("rollback.done", "rollback.failed"),
    ),
]


@pytest.mark.parametrize(("text", "keep"), [f[1:] for f in FILTERS], ids=[f[0] for f in FILTERS])
async def test_filter(pool: Pool, text: FilterText, keep: Callable[[Row], bool]) -> None:
    expected = [r for r in ROWS if keep(r)]
    assert expected, "a filter the seed cannot exercise"
    assert _keys(await _list(pool, text)) == _keys(expected)


async def test_newest_first(pool: Pool) -> None:
    rows = await _list(pool, FilterText(actor="forge", order=AuditOrder.DESC))
    assert _keys(rows) == _keys([r for r in reversed(ROWS) if r.actor == "forge"])


@pytest.mark.parametrize("order", [AuditOrder.ASC, AuditOrder.DESC])
async def test_pages_cover_everything_once(pool: Pool, order: AuditOrder) -> None:
    log, cursor, seen, pages = AuditLog(pool), None, [], 0
    while True:
        query = parse_query(FilterText(order=order), cursor, NOW)
        page = await log.page(query.filter, 4, query.cursor, query.started_at)
        assert len(page.items) <= 4
        seen += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = ROWS if order is AuditOrder.ASC else list(reversed(ROWS))
    assert _keys(seen) == _keys(expected)
    assert pages == -(-len(ROWS) // 4)


# -- paging while rows are written ----------------------------------------------------------------


async def test_paging_is_stable_under_concurrent_inserts(database_url: str) -> None:
    """Runs keep writing (rows older than, inside and newer than the page being read) while a
    reader pages 3 rows at a time: every row that existed before is seen exactly once, in
    order, and nothing is seen twice."""
    await _migrated(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        insert_runs(conn, RUNS)
    before = {(r.run_id, r.seq) for r in ROWS}
    written = 0

    async def writer() -> None:
        nonlocal written
        rng = random.Random(8)
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            for n in range(120):
                run_id = f"late-{n:04d}"
                at = T0 + timedelta(seconds=rng.uniform(-3600, 8 * 3600))
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO crew_runs (run_id, goal_id, title, goal, state) "
                        "VALUES (%s, %s, 'late', '{}', 'PENDING')",
                        (run_id, run_id),
                    )
                    for seq in range(3):
                        await conn.execute(
                            "INSERT INTO crew_audit (run_id, seq, at, actor, event, to_state) "
                            "VALUES (%s, %s, %s, 'late', 'run.created', 'PENDING')",
                            (run_id, seq, at + timedelta(milliseconds=seq)),
                        )
                written += 3
                await asyncio.sleep(0.005)

    pool = await open_pool(database_url, max_size=3)
    task = asyncio.create_task(writer())
    try:
        await wait_until(lambda: asyncio.sleep(0, written), lambda n: n > 0, what="writes")
        written_before = written
        log, cursor, seen = AuditLog(pool), None, []
        while True:
            query = parse_query(FilterText(), cursor, NOW)
            page = await log.page(query.filter, 3, query.cursor, query.started_at)
            seen += page.items
            cursor = page.next_cursor
            await asyncio.sleep(0.005)  # let the writer land rows between pages
            if cursor is None:
                break
        written_while_paging = written - written_before
    finally:
        await task
    try:
        keys = _keys(seen)
        assert len(keys) == len(set(keys)), "a row was returned twice"
        assert before <= set(keys), f"rows skipped: {sorted(before - set(keys))}"
        assert written_while_paging >= 30, "the writer did not overlap the paging"
        # Returned in the database's own key order (its collation decides run_id ties).
        full = await AuditLog(pool).page(
            parse_query(FilterText(), None, NOW).filter, 100_000, None, NOW
        )
        position = {k: i for i, k in enumerate(_keys(full.items))}
        assert [position[k] for k in keys] == sorted(position[k] for k in keys)
    finally:
        await pool.close()


# -- exports -----------------------------------------------------------------------------------


async def test_json_export(pool: Pool) -> None:
    query = parse_query(FilterText(events=["apply.request", "validate.result"]), None, NOW)
    log = AuditLog(pool)
    bounds = await log.page_bounds(query.filter, 1000, None, query.started_at)
    text = "".join(
        [
            c
            async for c in json_chunks(
                log.rows(query.filter, bounds), trailer={"next_cursor": None}
            )
        ]
    )
    body = json.loads(text)
    expected = [r for r in ROWS if r.event in ("apply.request", "validate.result")]
    assert body["next_cursor"] is None
    assert [(i["run_id"], i["seq"]) for i in body["items"]] == _keys(expected)
    for item, row in zip(body["items"], expected, strict=True):
        assert datetime.fromisoformat(item["at"]) == row.at
        assert item["artifact"] == row.artifact
        assert (item["actor"], item["event"], item["note"]) == (row.actor, row.event, row.note)


async def test_csv_export_parses_back(pool: Pool) -> None:
    query = parse_query(FilterText(), None, NOW)
    log = AuditLog(pool)
    bounds = await log.page_bounds(query.filter, 1000, None, query.started_at)
    text = "".join([c async for c in csv_chunks(log.rows(query.filter, bounds), AUDIT_COLUMNS)])
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(parsed[0]) == list(AUDIT_COLUMNS)
    assert len(parsed) == len(ROWS)
    for line, row in zip(parsed, ROWS, strict=True):
        assert datetime.fromisoformat(line["at"]) == row.at
        assert (line["run_id"], int(line["seq"]), line["event"], line["actor"]) == (
            row.run_id,
            row.seq,
            row.event,
            row.actor,
        )
        assert line["from_state"] == (row.from_state or "")
        assert line["note"] == (row.note or "")
        assert (json.loads(line["artifact"]) if line["artifact"] else None) == row.artifact


# -- reports -----------------------------------------------------------------------------------


async def _report(pool: Pool, name: ReportName, text: FilterText | None = None) -> list[Any]:
    query = parse_query(text or FilterText(), None, NOW)
    return [row async for row in report_rows(pool, name, query.filter, 1000)]


async def test_approvals_by_approver(pool: Pool) -> None:
    rows = await _report(pool, ReportName.APPROVALS_BY_APPROVER)
    got = [(r.actor, r.approved, r.rejected, r.rollbacks_requested) for r in rows]
    # forge's rollback after a failed apply is no decision; carol asked for two rollbacks
    assert got == [("alice", 3, 0, 0), ("bob", 1, 1, 0), ("carol", 0, 0, 2)]
    alice = [r for r in ROWS if r.actor == "alice" and r.event == "apply.request"]
    assert (rows[0].first_at, rows[0].last_at) == (alice[0].at, alice[-1].at)
    only_bob = await _report(pool, ReportName.APPROVALS_BY_APPROVER, FilterText(actor="bob"))
    assert [r.actor for r in only_bob] == ["bob"]
    later = await _report(
        pool, ReportName.APPROVALS_BY_APPROVER, FilterText(since=(T0 + 2 * H).isoformat())
    )
    assert [(r.actor, r.approved) for r in later] == [("alice", 2), ("carol", 0), ("bob", 1)]


async def test_runs_by_state(pool: Pool) -> None:
    rows = await _report(pool, ReportName.RUNS_BY_STATE)
    by_state = {r.state.value: r for r in rows}
    assert {s: r.runs for s, r in by_state.items()} == {
        "DONE": 2,
        "REJECTED": 1,
        "FAILED": 1,
        "WAIT_FOR_APPROVE": 1,
        "BLOCKED": 1,
        "ROLLBACK": 1,
    }
    assert rows[0].state.value == "DONE"
    assert by_state["DONE"].terminal
    assert not by_state["ROLLBACK"].terminal
    assert by_state["DONE"].median_age_s == pytest.approx((7 * 60 + 9 * 60) / 2)
    early = await _report(pool, ReportName.RUNS_BY_STATE, FilterText(until=(T0 + H).isoformat()))
    assert [(r.state.value, r.runs) for r in early] == [("DONE", 1)]


async def test_rollbacks_with_sla(pool: Pool) -> None:
    rows = await _report(pool, ReportName.ROLLBACKS)
    got = [(r.run_id, r.requested_by, r.outcome, r.sla_met) for r in rows]
    assert got == [  # newest first
        ("run-6-rolling_back", "carol", "running", None),
        ("run-3-apply_failed", "forge", "rollback.failed", False),
        ("run-2-rolled_back", "carol", "rollback.done", True),
    ]
    done = rows[2]
    assert (done.begin_s, done.finish_s) == (5.0, 60.0)
    assert done.finished_at == next(r.at for r in ROWS if r.event == "rollback.done")
    assert rows[0].finished_at is None
    one = await _report(pool, ReportName.ROLLBACKS, FilterText(run_id="run-3-apply_failed"))
    assert [r.outcome for r in one] == ["rollback.failed"]


async def test_cost_vs_budget(pool: Pool) -> None:
    rows = await _report(pool, ReportName.COST_VS_BUDGET)
    assert [r.run_id for r in rows] == [run.run_id for run in reversed(RUNS)]
    by_run = {r.run_id: r for r in rows}
    rejected = by_run["run-1-rejected"]
    assert (rejected.budget_monthly_usd, rejected.brake_monthly_usd) == (60.0, 48.0)
    assert (rejected.validated_monthly_usd, rejected.within_brake) == (65.0, False)
    assert rejected.forecast_to_budget == pytest.approx(65 / 60, abs=1e-4)
    applied = by_run["run-0-applied"]
    assert (applied.plan_forecast_monthly_usd, applied.validated_monthly_usd) == (9.0, 10.0)
    assert applied.within_brake is True
    blocked = by_run["run-5-blocked"]
    assert blocked.validated_monthly_usd is None
    assert blocked.forecast_to_budget is None
    assert blocked.brake_monthly_usd == 80.0  # 80 % of the budget when nothing was validated
    failed = await _report(pool, ReportName.COST_VS_BUDGET, FilterText(states=["FAILED"]))
    assert [r.run_id for r in failed] == ["run-3-apply_failed"]


# -- GET /v1/audit ---------------------------------------------------------------------------


def _serve(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return serve_app(create_app(settings, run_worker=False), timeout_s=30)


async def test_rest_endpoint(seeded_url: str, make_settings: Callable[..., Settings]) -> None:
    token = new_token()
    settings = make_settings(
        database_url=seeded_url, api_tokens=[token_entry("auditor", Role.VIEWER, token)]
    )
    async with _serve(settings) as api:
        assert (await api.get("/v1/audit")).status_code == 401
        api.headers["Authorization"] = f"Bearer {token}"

        # pages by following the Link header; the same rows as the store returns
        url: str | None = "/v1/audit?limit=5&state=DONE,FAILED"
        items: list[dict[str, Any]] = []
        while url:
            page = await api.get(url)
            assert page.status_code == 200, page.text
            body = page.json()
            items += body["items"]
            assert page.headers.get("x-next-cursor") == body["next_cursor"]
            url = page.links.get("next", {}).get("url")
        assert [(i["run_id"], i["seq"]) for i in items] == _keys(
            [r for r in ROWS if r.to_state in ("DONE", "FAILED")]
        )

        exported = await api.get("/v1/audit", params={"format": "csv", "actor": "carol"})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        lines = list(csv.DictReader(io.StringIO(exported.text, newline="")))
        assert [(x["run_id"], x["event"]) for x in lines] == [
            (r.run_id, r.event) for r in ROWS if r.actor == "carol"
        ]

        report = await api.get(
            "/v1/audit/reports/rollbacks", params={"run_id": "run-2-rolled_back"}
        )
        assert report.status_code == 200, report.text
        assert report.json()["report"] == "rollbacks"
        assert [r["outcome"] for r in report.json()["rows"]] == ["rollback.done"]
        cost_csv = await api.get("/v1/audit/reports/cost-vs-budget", params={"format": "csv"})
        assert len(list(csv.DictReader(io.StringIO(cost_csv.text, newline="")))) == len(RUNS)

        await _assert_422(api, "/v1/audit?limt=5", {"limt": "did you mean 'limit'?"})
        await _assert_422(
            api,
            "/v1/audit?event=aply.request&since=yesterday",
            {"event": "did you mean 'apply.request'?", "since": "ISO 8601"},
        )
        await _assert_422(api, "/v1/audit?since=2026-02-01&until=2026-01-01", {"until": "after"})
        await _assert_422(api, "/v1/audit?limit=0", {"query.limit": ">= 1"})
        await _assert_422(api, "/v1/audit?format=xml", {"query.format": "json"})
        first = (await api.get("/v1/audit?limit=2&actor=forge")).json()["next_cursor"]
        await _assert_422(
            api, f"/v1/audit?limit=2&actor=alice&cursor={first}", {"cursor": "repeat the filters"}
        )
        await _assert_422(api, "/v1/audit?cursor=garbage", {"cursor": "next_cursor"})
        await _assert_422(
            api, "/v1/audit/reports/approvals", {"path.name": "approvals-by-approver"}
        )
        await _assert_422(api, "/v1/audit/reports/rollbacks?actor=bob", {"actor": "remove it"})


async def _assert_422(api: httpx.AsyncClient, url: str, fixes: dict[str, str]) -> None:
    response = await api.get(url)
    assert response.status_code == 422, (url, response.status_code, response.text)
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert set(errors) == set(fixes), (url, errors)
    for field, fix in fixes.items():
        assert fix in errors[field]["fix"], (url, errors[field])


# -- crew audit ----------------------------------------------------------------------------------


def _crew(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "crew"), "audit", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_cli(seeded_url: str, tmp_path: Path) -> None:
    """The console script on the seeded database (bad input and --help: tests/unit)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env.update(CREW_DATABASE_URL=seeded_url, CREW_DATA_DIR=str(tmp_path), COLUMNS="200")

    def paged() -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
        first = _crew(env, "--limit", "4", "--order", "desc")
        cursor = first.stderr.split("--cursor ", 1)[1].split()[0]
        return first, _crew(env, "--limit", "4", "--order", "desc", "--cursor", cursor)

    calls: dict[str, Callable[[], Any]] = {
        "run": lambda: _crew(env, "run-2-rolled_back", "--json"),
        "all": lambda: _crew(env, "--all", "--limit", "5", "--format", "csv"),
        "table": lambda: _crew(env, "--report", "approvals-by-approver"),
        "paged": paged,
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        done = {name: future.result() for name, future in futures.items()}

    run = done["run"]
    assert run.returncode == 0, run.stderr
    assert [(r["run_id"], r["seq"]) for r in json.loads(run.stdout)] == _keys(
        [r for r in ROWS if r.run_id == "run-2-rolled_back"]
    )

    everything = list(csv.DictReader(io.StringIO(done["all"].stdout, newline="")))
    assert [(x["run_id"], int(x["seq"])) for x in everything] == _keys(ROWS)

    assert "approvals-by-approver: 3 row(s)" in done["table"].stdout
    assert "alice" in done["table"].stdout

    first, second = done["paged"]
    assert first.returncode == second.returncode == 0
    newest = list(reversed(ROWS))
    assert [line.split()[2] for line in first.stdout.splitlines()] == [r.run_id for r in newest[:4]]
    assert [line.split()[2] for line in second.stdout.splitlines()] == [
        r.run_id for r in newest[4:8]
    ]


# -- the benchmark ---------------------------------------------------------------------------


def test_bench_runs_end_to_end(admin_url: str) -> None:
    """`python -m bench.audit` on a few thousand rows, run as a person runs it: every row of
    its table, a plan for each (the figures themselves are for people, never asserted)."""
    env = {k: v for k, v in os.environ.items() if k != "CREW_DATABASE_URL"}
    env["CREW_BENCH_ADMIN_URL"] = admin_url
    env["COLUMNS"] = "200"  # rich wraps a table at 80 columns when stdout is not a terminal
    result = subprocess.run(
        [sys.executable, "-m", "bench.audit", "--rows", "3000", "--repeat", "1", "--no-baseline"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = result.stdout
    for label in ("page 1 (100 rows), no filter", "state ROLLBACK", "CSV export, 10 000 rows"):
        assert label in table
    for name in ReportName:
        assert f"report {name.value}" in table
    assert "audit rows of" in table
