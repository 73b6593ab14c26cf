"""Audit queries for people: filters as text, cursors, and the JSON / CSV exports.

`GET /v1/audit` and `crew audit` share this, so both accept the same values and refuse bad
ones with the same messages (each naming the parameter as that interface spells it: `event`
for REST, `--event` for the CLI). The SQL is in memory/audit.py and memory/audit_reports.py;
this module turns their streams of rows into bytes without holding them all in memory.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from schemas.audit_query import (
    AUDIT_EVENTS,
    REPORT_FILTERS,
    AuditFilter,
    AuditOrder,
    ReportName,
)
from schemas.events import EventType
from schemas.inputs import InputError, Problem
from schemas.states import ConductorState

if TYPE_CHECKING:  # the SQL side: imported where a query runs, not by `crew --help`
    from memory.audit import AuditCursor

#: Most rows one page (or one report) returns; larger exports follow the cursor.
MAX_LIMIT = 100_000

#: Parameter names as REST spells them (AuditFilter field -> query parameter).
REST_NAMES: Mapping[str, str] = {
    "run_id": "run_id",
    "actor": "actor",
    "events": "event",
    "states": "state",
    "from_states": "from_state",
    "since": "since",
    "until": "until",
    "order": "order",
    "cursor": "cursor",
}
#: ... and as the CLI does.
CLI_NAMES: Mapping[str, str] = {
    "run_id": "--run",
    "actor": "--actor",
    "events": "--event",
    "states": "--state",
    "from_states": "--from-state",
    "since": "--since",
    "until": "--until",
    "order": "--order",
    "cursor": "--cursor",
}

TIME_FIX = (
    "use an ISO 8601 time (2026-01-31T09:00:00Z; no offset means UTC), a date (2026-01-31), "
    "an age before now (90m, 24h, 7d, 2w) or 'now'"
)
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$", re.IGNORECASE)
_AGE_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EVENT_VALUES = [e.value for e in AUDIT_EVENTS]
_STATE_VALUES = [s.value for s in ConductorState]


@dataclass(frozen=True)
class FilterText:
    """An audit filter as typed by a person (query parameters, CLI options). A list value
    may repeat the parameter or separate values with commas."""

    run_id: str | None = None
    actor: str | None = None
    events: Sequence[str] = ()
    states: Sequence[str] = ()
    from_states: Sequence[str] = ()
    since: str | None = None
    until: str | None = None
    order: AuditOrder = AuditOrder.ASC

    def given(self) -> list[str]:
        """Names of the fields that were given (order only when not the default)."""
        names = [f.name for f in fields(self) if f.name != "order" and getattr(self, f.name)]
        return names + (["order"] if self.order is not AuditOrder.ASC else [])


@dataclass(frozen=True)
class AuditQuery:
    """A parsed request: the filter, where to continue, and when paging started."""

    filter: AuditFilter
    cursor: AuditCursor | None
    started_at: datetime


def parse_instant(text: str, now: datetime) -> datetime:
    """An absolute time (ISO 8601 time or date; UTC when no offset is given), an age before
    `now` (`90m`, `24h`, `7d`, `2w`), or `now`. ValueError otherwise."""
    value = text.strip()
    if value.lower() == "now":
        return now
    age = _AGE.match(value)
    if age:
        try:
            return now - timedelta(seconds=float(age.group(1)) * _AGE_UNIT_S[age.group(2).lower()])
        except OverflowError:  # an age beyond datetime's range (year 1)
            raise ValueError(f"'{text}' is further back than any time") from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{text}' is not a time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _split(values: Sequence[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _choose(value: str, known: list[str], what: str, name: str) -> str | Problem:
    lowered = {k.lower(): k for k in known}
    found = lowered.get(value.lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.6)
    hint = f"did you mean '{lowered[close[0]]}'? " if close else ""
    return Problem(name, f"'{value}' is not {what}", f"{hint}use one of: {', '.join(known)}")


def _values(
    raw: Sequence[str], known: list[str], what: str, name: str, problems: list[Problem]
) -> list[str]:
    chosen = []
    for value in _split(raw):
        result = _choose(value, known, what, name)
        if isinstance(result, Problem):
            problems.append(result)
        elif result not in chosen:
            chosen.append(result)
    return chosen


def parse_query(
    text: FilterText,
    cursor: str | None,
    now: datetime,
    names: Mapping[str, str] = REST_NAMES,
) -> AuditQuery:
    """Check every value and build the query; InputError lists every problem at once.

    With a cursor, relative times resolve against the moment the first page was asked for,
    and the filter must be the one the cursor was issued for."""
    from memory.audit import AuditCursor, filter_fingerprint

    problems: list[Problem] = []
    decoded: AuditCursor | None = None
    if cursor:
        try:
            decoded = AuditCursor.decode(cursor)
        except ValueError as exc:
            problems.append(
                Problem(
                    names["cursor"],
                    str(exc),
                    "pass next_cursor exactly as a previous page returned it, or leave it out "
                    "to start from the first page",
                )
            )
    started_at = decoded.started_at if decoded else now
    times: dict[str, datetime | None] = {}
    for field in ("since", "until"):
        value: str | None = getattr(text, field)
        times[field] = None
        if value is not None and value.strip():
            try:
                times[field] = parse_instant(value, started_at)
            except ValueError as exc:
                problems.append(Problem(names[field], str(exc), TIME_FIX))
    events = _values(text.events, _EVENT_VALUES, "an audit event", names["events"], problems)
    states = _values(text.states, _STATE_VALUES, "a run state", names["states"], problems)
    from_states = _values(
        text.from_states, _STATE_VALUES, "a run state", names["from_states"], problems
    )
    if problems:
        raise InputError(problems, "audit query")
    try:
        audit_filter = AuditFilter(
            run_id=(text.run_id or "").strip() or None,
            actor=(text.actor or "").strip() or None,
            events=tuple(EventType(e) for e in events),
            states=tuple(ConductorState(s) for s in states),
            from_states=tuple(ConductorState(s) for s in from_states),
            since=times["since"],
            until=times["until"],
            order=text.order,
        )
    except ValidationError as exc:
        raise InputError(_filter_problems(exc, names), "audit query") from exc
    if decoded is not None and decoded.fingerprint != filter_fingerprint(audit_filter):
        raise InputError(
            [
                Problem(
                    names["cursor"],
                    "this cursor was issued for different filters or order",
                    "repeat the filters of the request that returned it, or leave the cursor "
                    "out to start again",
                )
            ],
            "audit query",
        )
    return AuditQuery(audit_filter, decoded, started_at)


def _filter_problems(exc: ValidationError, names: Mapping[str, str]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if "until must be later" in message:
            problems.append(Problem(names["until"], message, "give an until after since"))
            continue
        field = names.get(loc[0], loc[0]) if loc else ""
        limit = (error.get("ctx") or {}).get("max_length")
        fix = f"use at most {limit} characters" if limit else "correct the value"
        problems.append(Problem(field, message, fix))
    return problems


def check_report_filter(
    report: ReportName, text: FilterText, names: Mapping[str, str] = REST_NAMES
) -> None:
    """Refuse a filter the report cannot apply (never ignore it silently)."""
    allowed = REPORT_FILTERS[report]
    refused = [name for name in text.given() if name not in allowed]
    if refused:
        takes = ", ".join(names[n] for n in sorted(allowed))
        raise InputError(
            [
                Problem(
                    names[name],
                    f"the {report.value} report has no {names[name]} filter",
                    f"remove it; this report takes {takes}",
                )
                for name in refused
            ],
            "report query",
        )


def unknown_parameters(given: Sequence[str], known: Sequence[str]) -> list[Problem]:
    """A typo'd parameter would silently widen the result: name it instead."""
    problems = []
    for name in given:
        if name in known:
            continue
        close = difflib.get_close_matches(name, list(known), n=1)
        fix = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known)}"
        problems.append(Problem(name, f"unknown parameter '{name}'", fix))
    return problems


# -- exports ---------------------------------------------------------------------------------

#: Bytes collected before a chunk is handed to the response (or stdout).
_CHUNK = 64 * 1024

AUDIT_COLUMNS = (
    "at",
    "run_id",
    "seq",
    "event",
    "actor",
    "from_state",
    "to_state",
    "note",
    "artifact_type",
    "artifact",
)


async def json_chunks(
    rows: AsyncIterator[BaseModel],
    *,
    envelope: str | None = "items",
    trailer: Mapping[str, Any] | None = None,
    head: Mapping[str, Any] | None = None,
) -> AsyncIterator[str]:
    """One JSON document, written as the rows arrive: `{**head, envelope: [rows...], **trailer}`
    or, with `envelope=None`, a bare array."""
    opening = "["
    if envelope is not None:
        prefix = "".join(f"{json.dumps(k)}:{json.dumps(v)}," for k, v in (head or {}).items())
        opening = "{" + prefix + json.dumps(envelope) + ":["
    buffer, size, first = [opening], 0, True
    async for row in rows:
        text = row.model_dump_json()
        buffer.append(text if first else "," + text)
        first = False
        size += len(text)
        if size >= _CHUNK:
            yield "".join(buffer)
            buffer, size = [], 0
    closing = "]"
    if envelope is not None:
        closing += "".join(f",{json.dumps(k)}:{json.dumps(v)}" for k, v in (trailer or {}).items())
        closing += "}"
    buffer.append(closing + "\n")
    yield "".join(buffer)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


async def csv_chunks(
    rows: AsyncIterator[BaseModel], columns: Sequence[str], *, header: bool = True
) -> AsyncIterator[str]:
    """RFC 4180 CSV (header row first), written as the rows arrive. Nested values (artifacts)
    are JSON in their cell; times are ISO 8601."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    async for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow([_cell(data.get(c)) for c in columns])
        if buffer.tell() >= _CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
