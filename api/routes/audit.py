"""GET /v1/audit (filtered, paged, JSON or CSV) and GET /v1/audit/reports/{name}."""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.deps import ServicesDep, Viewer
from api.errors import ErrorBody
from crew.audit import (
    AUDIT_COLUMNS,
    MAX_LIMIT,
    FilterText,
    check_report_filter,
    csv_chunks,
    json_chunks,
    parse_query,
    unknown_parameters,
)
from memory.audit import AuditLog
from memory.audit_reports import report_rows
from schemas.audit_query import (
    AUDIT_EVENTS,
    REPORT_ROWS,
    ApproverStats,
    AuditOrder,
    AuditPage,
    ReportName,
    RollbackTiming,
    RunCost,
    StateStats,
)
from schemas.inputs import InputError
from schemas.states import ConductorState

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


_LIST_PARAMS = (
    "run_id",
    "actor",
    "event",
    "state",
    "from_state",
    "since",
    "until",
    "order",
    "limit",
    "cursor",
    "format",
)
_REPORT_PARAMS = ("run_id", "actor", "state", "since", "until", "limit", "format")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or unknown bearer token."},
    422: {
        "model": ErrorBody,
        "description": "A parameter is wrong (unknown event or state, unreadable time, until "
        "before since, a cursor from other filters, a typo'd parameter name): `errors` names "
        "each one and the fix.",
    },
}

RunIdQ = Annotated[str | None, Query(description="Only this run.")]
ActorQ = Annotated[
    str | None, Query(description="Only rows recorded for this actor (exact), e.g. `alice`.")
]
StateQ = Annotated[
    list[str] | None,
    Query(
        description="Rows that moved a run INTO this state (repeat or comma-separate for any "
        f"of several): {', '.join(s.value for s in ConductorState)}."
    ),
]
SinceQ = Annotated[
    str | None,
    Query(
        description="`at` >= this: ISO 8601 (`2026-01-31T09:00:00Z`), a date, or an age "
        "before now (`24h`, `7d`)."
    ),
]
UntilQ = Annotated[str | None, Query(description="`at` < this; same forms as `since`.")]
FormatQ = Annotated[
    ExportFormat,
    Query(alias="format", description="`json` (default) or `csv` (a download, header row)."),
]


def _refuse_unknown(request: Request, known: tuple[str, ...]) -> None:
    problems = unknown_parameters(list(dict.fromkeys(request.query_params.keys())), known)
    if problems:
        raise InputError(problems, "request")


def _stream(body: AsyncIterator[str], fmt: ExportFormat, name: str) -> StreamingResponse:
    if fmt is ExportFormat.CSV:
        return StreamingResponse(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return StreamingResponse(body, media_type="application/json")


@router.get(
    "",
    response_class=StreamingResponse,
    responses={
        200: {
            "model": AuditPage,
            "description": "A page of audit rows, oldest first (`order=desc`: newest first). "
            "More rows: `next_cursor` in the JSON, and the `X-Next-Cursor` and `Link` "
            "(rel=next) headers in either format.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **_ERRORS,
    },
)
async def list_audit(
    request: Request,
    services: ServicesDep,
    _: Viewer,
    run_id: RunIdQ = None,
    actor: ActorQ = None,
    event: Annotated[
        list[str] | None,
        Query(
            description="Event type (repeat or comma-separate for any of several): "
            f"{', '.join(e.value for e in AUDIT_EVENTS)}."
        ),
    ] = None,
    state: StateQ = None,
    from_state: Annotated[
        list[str] | None, Query(description="Rows that moved a run OUT of this state.")
    ] = None,
    since: SinceQ = None,
    until: UntilQ = None,
    order: AuditOrder = AuditOrder.ASC,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")] = 100,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page (same filters).")
    ] = None,
    fmt: FormatQ = ExportFormat.JSON,
) -> StreamingResponse:
    """The audit log, filtered and paged by keyset: stable while new rows are written (a page
    never repeats or skips a row that existed when paging started). Streams, so `limit` can
    be large for an export."""
    _refuse_unknown(request, _LIST_PARAMS)
    text = FilterText(
        run_id=run_id,
        actor=actor,
        events=event or (),
        states=state or (),
        from_states=from_state or (),
        since=since,
        until=until,
        order=order,
    )
    query = parse_query(text, cursor, services.context.clock())
    log = AuditLog(services.pool)
    bounds = await log.page_bounds(query.filter, limit, query.cursor, query.started_at)
    rows = log.rows(query.filter, bounds)
    next_cursor = bounds.next_cursor.encode() if bounds.next_cursor else None
    if fmt is ExportFormat.CSV:
        body = csv_chunks(rows, AUDIT_COLUMNS)
    else:
        body = json_chunks(rows, trailer={"next_cursor": next_cursor})
    response = _stream(body, fmt, "audit")
    if next_cursor is not None:
        response.headers["X-Next-Cursor"] = next_cursor
        response.headers["Link"] = (
            f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
        )
    return response


class ReportBody(BaseModel):
    """A report's rows: ApproverStats, StateStats, RollbackTiming or RunCost by `report`."""

    report: ReportName
    rows: list[ApproverStats | StateStats | RollbackTiming | RunCost]


@router.get(
    "/reports/{name}",
    response_class=StreamingResponse,
    responses={
        200: {
            "model": ReportBody,
            "description": "`{report, rows}` (JSON) or a CSV with one line per row.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **_ERRORS,
    },
)
async def audit_report(
    name: ReportName,
    request: Request,
    services: ServicesDep,
    _: Viewer,
    run_id: RunIdQ = None,
    actor: ActorQ = None,
    state: StateQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most rows returned.")] = 1000,
    fmt: FormatQ = ExportFormat.JSON,
) -> StreamingResponse:
    """A canned report. `approvals-by-approver` (actor, since, until): approvals, rejections
    and rollback requests per actor, first and last; `runs-by-state` (since, until on the
    run's creation): runs per state; `rollbacks` (run_id, since, until): each rollback with
    its outcome and SLA timings; `cost-vs-budget` (run_id, state, since, until): each run's
    forecast against its budget and the 80 % brake."""
    _refuse_unknown(request, _REPORT_PARAMS)
    text = FilterText(run_id=run_id, actor=actor, states=state or (), since=since, until=until)
    check_report_filter(name, text)
    query = parse_query(text, None, services.context.clock())
    rows = report_rows(services.pool, name, query.filter, limit)
    if fmt is ExportFormat.CSV:
        body = csv_chunks(rows, list(REPORT_ROWS[name].model_fields))
    else:
        body = json_chunks(rows, envelope="rows", head={"report": name.value})
    return _stream(body, fmt, name.value)
