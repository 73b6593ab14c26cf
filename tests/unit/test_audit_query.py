"""Audit queries without a database: times, filters, cursors, report filters, the SQL a
filter becomes, the streaming encoders, and `crew audit`'s refusals (exit 2, before any
database is opened)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from crew.audit import (
    CLI_NAMES,
    FilterText,
    check_report_filter,
    csv_chunks,
    json_chunks,
    parse_instant,
    parse_query,
    unknown_parameters,
)
from memory.audit import AuditCursor, AuditKey, filter_fingerprint, filter_sql
from schemas.audit import AuditRecord
from schemas.audit_query import AuditFilter, AuditOrder, ReportName
from schemas.events import EventType
from schemas.inputs import InputError
from schemas.states import ConductorState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# -- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T09:00:00Z", datetime(2026, 1, 31, 9, tzinfo=UTC)),
        ("2026-01-31T10:00:00+01:00", datetime(2026, 1, 31, 9, tzinfo=UTC)),
        ("2026-01-31T09:00", datetime(2026, 1, 31, 9, tzinfo=UTC)),  # no offset: UTC
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("90m", NOW - timedelta(minutes=90)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2W", NOW - timedelta(weeks=2)),
        ("1.5h", NOW - timedelta(minutes=90)),
        (" now ", NOW),
    ],
)
def test_times(text: str, expected: datetime) -> None:
    parsed = parse_instant(text, NOW)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "24", "7 days", "2026-13-01", "", "-1h"])
def test_unreadable_times(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time"):
        parse_instant(text, NOW)


# -- filters -------------------------------------------------------------------------------------


def _problems(text: FilterText, cursor: str | None = None, **kw: object) -> dict[str, str]:
    with pytest.raises(InputError) as caught:
        parse_query(text, cursor, NOW, **kw)  # type: ignore[arg-type]
    return {p.field: f"{p.problem} | {p.fix}" for p in caught.value.problems}


def test_a_filter_from_text() -> None:
    query = parse_query(
        FilterText(
            run_id=" r1 ",
            actor="alice",
            events=["apply.request,run.rejected", "APPLY.REQUEST"],
            states=["done"],
            from_states=["wait_for_approve"],
            since="7d",
            until="now",
            order=AuditOrder.DESC,
        ),
        None,
        NOW,
    )
    f = query.filter
    assert f.run_id == "r1"
    assert f.events == (EventType.APPLY_REQUEST, EventType.RUN_REJECTED)  # deduplicated
    assert f.states == (ConductorState.DONE,)
    assert f.from_states == (ConductorState.WAIT_FOR_APPROVE,)
    assert (f.since, f.until) == (NOW - timedelta(days=7), NOW)
    assert query.cursor is None
    assert query.started_at == NOW


def test_every_problem_is_reported_at_once_with_its_fix() -> None:
    problems = _problems(
        FilterText(events=["aply.request"], states=["running", "DONNE"], since="yesterday")
    )
    assert set(problems) == {"event", "state", "since"}
    assert "did you mean 'apply.request'?" in problems["event"]
    assert "did you mean 'DONE'?" in problems["state"]
    assert "ISO 8601" in problems["since"]


def test_a_non_transition_event_is_refused() -> None:
    problems = _problems(FilterText(events=["heartbeat"]))
    assert "'heartbeat' is not an audit event" in problems["event"]


def test_until_must_follow_since() -> None:
    problems = _problems(FilterText(since="2026-02-01", until="2026-01-01"))
    assert list(problems) == ["until"]
    problems = _problems(FilterText(since="2026-02-01", until="2026-02-01"))
    assert list(problems) == ["until"]


def test_blank_and_overlong_values() -> None:
    assert parse_query(FilterText(run_id="  ", actor=""), None, NOW).filter.run_id is None
    problems = _problems(FilterText(actor="x" * 201))
    assert "use at most 200 characters" in problems["actor"]


def test_cli_names_are_used_for_the_cli() -> None:
    problems = _problems(FilterText(events=["x"], from_states=["y"]), names=CLI_NAMES)
    assert set(problems) == {"--event", "--from-state"}


def test_the_filter_model_refuses_what_the_parser_would() -> None:
    with pytest.raises(ValueError, match="not an audit event"):
        AuditFilter(events=(EventType.HEARTBEAT,))
    with pytest.raises(ValueError, match="until must be later"):
        AuditFilter(since=NOW, until=NOW)


def test_one_value_is_an_equality_several_are_any() -> None:
    one, params = filter_sql(AuditFilter(actor="a", events=(EventType.APPLY_DONE,)))
    assert one == ["actor = %(actor)s", "event = %(event)s"]
    assert params == {"actor": "a", "event": "apply.done"}
    many, params = filter_sql(
        AuditFilter(states=(ConductorState.DONE, ConductorState.FAILED), since=NOW), "a"
    )
    assert many == ["a.to_state = ANY(%(to_state)s)", "a.at >= %(since)s"]
    assert params["to_state"] == ["DONE", "FAILED"]
    assert filter_sql(AuditFilter()) == ([], {})


# -- cursors -------------------------------------------------------------------------------------


def _cursor(audit_filter: AuditFilter, started_at: datetime = NOW) -> AuditCursor:
    key = AuditKey(datetime(2026, 2, 1, 8, 30, 0, 123456, tzinfo=UTC), "run-é/1", 7)
    return AuditCursor(key, started_at, filter_fingerprint(audit_filter))


def test_a_cursor_round_trips_exactly() -> None:
    cursor = _cursor(AuditFilter(actor="alice"))
    text = cursor.encode()
    assert text.isascii()
    assert "=" not in text  # URL-safe, unpadded: fits a query string as is
    assert AuditCursor.decode(text) == cursor


@pytest.mark.parametrize(
    "text", ["garbage", "", "eyJ2IjoyfQ", "bm90IGpzb24", "eyJ2IjoxLCJhdCI6IjIwMjYifQ"]
)
def test_a_cursor_that_we_did_not_issue_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a cursor this service issued"):
        AuditCursor.decode(text)


def test_a_tampered_cursor_is_refused() -> None:
    text = _cursor(AuditFilter()).encode()
    with pytest.raises(ValueError, match="not a cursor"):
        AuditCursor.decode(text[:-4])


def test_a_cursor_continues_only_its_own_filter() -> None:
    issued = parse_query(FilterText(actor="alice"), None, NOW).filter
    cursor = _cursor(issued).encode()
    same = parse_query(FilterText(actor="alice"), cursor, NOW + timedelta(hours=1))
    assert same.cursor is not None
    assert same.cursor.key.seq == 7
    assert "repeat the filters" in _problems(FilterText(actor="bob"), cursor)["cursor"]
    desc = FilterText(actor="alice", order=AuditOrder.DESC)
    assert "different filters or order" in _problems(desc, cursor)["cursor"]
    assert "next_cursor" in _problems(FilterText(), "nonsense")["cursor"]


def test_relative_times_mean_the_same_rows_on_every_page() -> None:
    first = parse_query(FilterText(since="24h"), None, NOW)
    cursor = _cursor(first.filter, started_at=first.started_at).encode()
    later = parse_query(FilterText(since="24h"), cursor, NOW + timedelta(minutes=30))
    assert later.filter.since == NOW - timedelta(hours=24)
    assert later.started_at == NOW


# -- reports and parameters ----------------------------------------------------------------------


def test_a_report_refuses_filters_it_cannot_apply() -> None:
    check_report_filter(ReportName.ROLLBACKS, FilterText(run_id="r", since="7d"))
    with pytest.raises(InputError) as caught:
        check_report_filter(
            ReportName.ROLLBACKS, FilterText(actor="bob", events=["apply.done"]), CLI_NAMES
        )
    problems = {p.field: p for p in caught.value.problems}
    assert set(problems) == {"--actor", "--event"}
    assert problems["--actor"].problem == "the rollbacks report has no --actor filter"
    assert "--run, --since, --until" in problems["--actor"].fix


def test_unknown_parameters_are_named() -> None:
    problems = unknown_parameters(["limt", "actor", "zzz"], ["limit", "actor", "since"])
    assert [(p.field, p.fix) for p in problems] == [
        ("limt", "did you mean 'limit'?"),
        ("zzz", "known: limit, actor, since"),
    ]


# -- encoders -----------------------------------------------------------------------------------


def _records(n: int) -> list[AuditRecord]:
    return [
        AuditRecord(
            run_id=f"r{i}",
            seq=i,
            at=NOW + timedelta(seconds=i),
            actor='o"brien, jr',
            event=EventType.APPLY_REQUEST,
            from_state=ConductorState.WAIT_FOR_APPROVE,
            to_state=ConductorState.APPLYING,
            artifact_type="ApprovalDecision" if i % 2 else None,
            artifact={"note": "line\nbreak", "n": i} if i % 2 else None,
            note=None,
        )
        for i in range(n)
    ]


async def _aiter(items: list[AuditRecord]) -> AsyncIterator[AuditRecord]:
    for item in items:
        yield item


async def test_json_streams_a_valid_document_in_chunks() -> None:
    records = _records(3000)  # several 64 KiB chunks
    chunks = [c async for c in json_chunks(_aiter(records), trailer={"next_cursor": "abc"})]
    assert len(chunks) > 1
    body = json.loads("".join(chunks))
    assert body["next_cursor"] == "abc"
    assert [AuditRecord.model_validate(i) for i in body["items"]] == records
    empty = "".join([c async for c in json_chunks(_aiter([]), envelope="rows", head={"r": 1})])
    assert json.loads(empty) == {"r": 1, "rows": []}
    bare = "".join([c async for c in json_chunks(_aiter(records[:2]), envelope=None)])
    assert len(json.loads(bare)) == 2


async def test_csv_quotes_and_nests_and_parses_back() -> None:
    records = _records(5)
    columns = ["run_id", "seq", "at", "actor", "artifact", "note"]
    text = "".join([c async for c in csv_chunks(_aiter(records), columns)])
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["actor"] for r in rows] == ['o"brien, jr'] * 5
    assert json.loads(rows[1]["artifact"]) == {"n": 1, "note": "line\nbreak"}
    assert rows[0]["artifact"] == ""
    assert datetime.fromisoformat(rows[2]["at"]) == NOW + timedelta(seconds=2)
    headless = "".join([c async for c in csv_chunks(_aiter(records[:1]), columns, header=False)])
    assert headless.startswith("r0,0,")


def test_times_with_other_offsets_compare_equal() -> None:
    east = datetime(2026, 1, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    assert parse_instant(east.isoformat(), NOW) == datetime(2026, 1, 1, 8, tzinfo=UTC)


# -- crew audit: refusals before any database ----------------------------------------------------

runner = CliRunner()


@pytest.fixture
def _no_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the CLI at a port nothing listens on: these tests must exit before connecting."""
    monkeypatch.setenv("CREW_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("CREW_DATA_DIR", str(tmp_path))


@pytest.mark.usefixtures("_no_database")
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "yesterday", "--event", "aply.request"], ["--since", "did you mean"]),
        (["--report", "rollbacks", "--actor", "bob"], ["has no --actor filter"]),
        (["--report", "rollbacks", "--all"], ["--all does not apply to --report"]),
        (["--gate", "--actor", "bob"], ["--gate takes only"]),
        (["r1", "--run", "r2"], ["disagree"]),
        (["--cursor", "nonsense"], ["--cursor", "not a cursor"]),
        (["--format", "xml"], ["xml"]),
        (["--limit", "0"], ["--limit", "greater than or equal to 1"]),
        (["--report", "nope"], ["nope"]),
    ],
)
def test_bad_input_exits_2_and_says_why(args: list[str], says: list[str]) -> None:
    result = runner.invoke(app, ["audit", *args])
    assert result.exit_code == 2, result.output
    for needle in says:
        assert needle in result.stderr, result.stderr


def test_help_teaches_with_examples() -> None:
    result = runner.invoke(app, ["audit", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for needle in ("Examples", "--since 7d", "--all --format csv", "approvals-by-approver"):
        assert needle in result.stdout
