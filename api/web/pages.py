"""The console's pages (GET): runs list, run detail, audit search and export, and the
fragments the pages' script polls for live refresh.

Reads go through the same functions as REST (`crew.service.run_detail`, `RunStore`, the audit
query parser and `AuditLog`), so the console shows exactly what `GET /v1/...` returns. A
fragment request carries the version the page shows (`?v=`); an unchanged run answers 204, so
polling every two seconds costs a database read, not a page render.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import ServicesDep
from api.web.deps import SignedIn, Visitor
from api.web.hcl import workspace_hcl
from api.web.render import ConsoleRoute, error_page, page
from api.web.views import NOTICES, run_page_context, run_row
from crew.audit import AUDIT_COLUMNS, MAX_LIMIT, FilterText, csv_chunks, json_chunks, parse_query
from crew.container import Services
from crew.service import run_detail
from crew.stacks import list_stacks, stack_detail
from memory.audit import AuditLog
from schemas.audit_query import AUDIT_EVENTS, AuditOrder
from schemas.inputs import InputError, Problem
from schemas.stack import StackStatus
from schemas.states import ConductorState

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

RUNS_PER_PAGE = 50
AUDIT_ROWS_PER_PAGE = 50
_STATES = [s.value for s in ConductorState]


def _state_filter(state: str | None) -> ConductorState | None:
    if not state:
        return None
    try:
        return ConductorState(state.strip().upper())
    except ValueError:
        problem = Problem("state", f"'{state}' is not a run state", f"use one of {_STATES}")
        raise InputError([problem], "filter") from None


async def _runs_context(services: Services, state: str | None, offset: int) -> dict[str, object]:
    chosen = _state_filter(state)
    records = await services.runs.list_runs(state=chosen, limit=RUNS_PER_PAGE + 1, offset=offset)
    rows = [run_row(r.to_summary()) for r in records[:RUNS_PER_PAGE]]
    version = hashlib.sha256(
        "|".join(f"{r.run.run_id}:{r.run.state}:{r.run.updated_at}" for r in rows).encode()
    ).hexdigest()[:16]
    return {
        "rows": rows,
        "state": chosen.value if chosen else "",
        "offset": offset,
        "more": len(records) > RUNS_PER_PAGE,
        "per_page": RUNS_PER_PAGE,
        "now": services.context.clock(),
        "version": version,
    }


Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/")
async def runs_page(
    request: Request,
    services: ServicesDep,
    visitor: SignedIn,
    state: str | None = None,
    offset: Offset = 0,
) -> Response:
    """Runs, newest first, filtered by state; the table refreshes itself."""
    context = await _runs_context(services, state, offset)
    counts = await services.runs.count_by_state()
    states = [(s, counts.get(s, 0)) for s in _STATES]
    return page(request, visitor, "runs.html", {**context, "states": states})


_STACK_TONES = {
    StackStatus.PLANNED.value: "wait",
    StackStatus.DEPLOYED.value: "ok",
    StackStatus.ROLLED_BACK.value: "warn",
    StackStatus.NEEDS_ATTENTION.value: "bad",
}


@router.get("/stacks")
async def stacks_page(request: Request, services: ServicesDep, visitor: SignedIn) -> Response:
    """Every stack with its status: deployed, rolled back, needs attention, or only planned."""
    stacks = await list_stacks(services)
    return page(request, visitor, "stacks.html", {"stacks": stacks, "tones": _STACK_TONES})


@router.get("/stacks/{stack_id}")
async def stack_page(
    stack_id: str, request: Request, services: ServicesDep, visitor: SignedIn
) -> Response:
    """One stack: its runs, and the resources and outputs its state holds now."""
    stack = await stack_detail(services, stack_id)
    advisories = await services.shield.matches(stack.stack_id)
    return page(
        request,
        visitor,
        "stack.html",
        {"stack": stack, "tones": _STACK_TONES, "advisories": advisories},
    )


@router.get("/fragments/runs")
async def runs_fragment(
    request: Request,
    services: ServicesDep,
    visitor: SignedIn,
    state: str | None = None,
    offset: Offset = 0,
    v: str | None = None,
) -> Response:
    context = await _runs_context(services, state, offset)
    if v == context["version"]:
        return Response(status_code=204)
    headers = {"X-Live-Version": str(context["version"])}
    return page(request, visitor, "partials/runs_table.html", context, headers=headers)


async def run_context(services: Services, visitor: Visitor, run_id: str) -> dict[str, object]:
    """What run.html shows: the REST view of the run (`run_detail`) and its Terraform."""
    detail = await run_detail(services, run_id)
    hcl = await workspace_hcl(services.settings, detail)
    return run_page_context(detail, visitor.may_decide, hcl, services.context.clock())


@router.get("/runs/{run_id}")
async def run_page(
    run_id: str,
    request: Request,
    services: ServicesDep,
    visitor: SignedIn,
    notice: str | None = None,
) -> Response:
    """Everything about one run, with the gate's buttons for those who may decide."""
    context = await run_context(services, visitor, run_id)
    return page(request, visitor, "run.html", {**context, "notice": NOTICES.get(notice or "")})


@router.get("/fragments/runs/{run_id}")
async def run_fragment(
    run_id: str,
    request: Request,
    services: ServicesDep,
    visitor: SignedIn,
    v: str | None = None,
) -> Response:
    detail = await services.runs.get(run_id)  # 404 before the heavier read
    context = await run_context(services, visitor, detail.run_id)
    if v == context["version"]:
        return Response(status_code=204, headers={"X-Live": "1" if context["live"] else "0"})
    headers = {"X-Live-Version": str(context["version"]), "X-Live": "1" if context["live"] else "0"}
    return page(request, visitor, "partials/run_body.html", context, headers=headers)


# -- audit -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditSearch:
    """The audit filter of the search page and of its exports, read from the query string
    (FastAPI fills a dataclass dependency's fields from query parameters)."""

    run_id: str | None = None
    actor: str | None = None
    event: str | None = None
    state: str | None = None
    since: str | None = None
    until: str | None = None
    order: str | None = None

    def given(self) -> dict[str, str]:
        """The filters set, as the page shows them and its links repeat them."""
        values = {**asdict(self), "order": self.order or "desc"}
        return {k: v for k, v in values.items() if v}

    def text(self) -> FilterText:
        """The filter as `crew.audit.parse_query` reads it (the REST API's parser)."""
        try:
            chosen = AuditOrder((self.order or "desc").lower())
        except ValueError:
            problem = Problem("order", f"'{self.order}' is not an order", "use asc or desc")
            raise InputError([problem], "audit query") from None
        return FilterText(
            run_id=self.run_id or None,
            actor=self.actor or None,
            events=[self.event] if self.event else (),
            states=[self.state] if self.state else (),
            since=self.since or None,
            until=self.until or None,
            order=chosen,
        )


AuditSearchDep = Annotated[AuditSearch, Depends()]


@router.get("/audit")
async def audit_page(
    request: Request,
    services: ServicesDep,
    visitor: SignedIn,
    search: AuditSearchDep,
    cursor: str | None = None,
) -> Response:
    """The audit log, filtered like `GET /v1/audit` (same parser, same messages), newest
    first by default, 50 rows a page, with CSV and JSON exports of the same filter."""
    filters = search.given()
    context: dict[str, object] = {
        "filters": filters,
        "events": [e.value for e in AUDIT_EVENTS],
        "states": _STATES,
        "query": urlencode(filters),
    }
    try:
        query = parse_query(search.text(), cursor, services.context.clock())
    except InputError as exc:
        context["problems"] = exc.problems
        return page(request, visitor, "audit.html", context, status=422)
    log = AuditLog(services.pool)
    found = await log.page(query.filter, AUDIT_ROWS_PER_PAGE, query.cursor, query.started_at)
    if found.next_cursor:
        context["next"] = urlencode({**filters, "cursor": found.next_cursor})
    context["rows"] = found.items
    return page(request, visitor, "audit.html", context)


@router.get("/audit/export")
async def audit_export(
    request: Request,
    services: ServicesDep,
    visitor: SignedIn,
    search: AuditSearchDep,
    format: str = "csv",
) -> Response:
    """Up to 100 000 rows of the filter as a CSV or JSON download (streamed, as REST does;
    for more, page through `GET /v1/audit` or use `crew audit --all`)."""
    if format not in ("csv", "json"):
        return error_page(request, 422, "Bad request", "format: use csv or json")
    query = parse_query(search.text(), None, services.context.clock())
    log = AuditLog(services.pool)
    bounds = await log.page_bounds(query.filter, MAX_LIMIT, None, query.started_at)
    rows = log.rows(query.filter, bounds)
    next_cursor = bounds.next_cursor.encode() if bounds.next_cursor else None
    if format == "csv":
        body, media = csv_chunks(rows, AUDIT_COLUMNS), "text/csv; charset=utf-8"
    else:
        body = json_chunks(rows, trailer={"next_cursor": next_cursor})
        media = "application/json"
    headers = {"Content-Disposition": f'attachment; filename="audit.{format}"'}
    if next_cursor is not None:
        headers["X-Next-Cursor"] = next_cursor
    return StreamingResponse(body, media_type=media, headers=headers)
