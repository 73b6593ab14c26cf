"""Audit queries: filtered, keyset-paginated reads of `crew_audit`, streamed from the server.

Rows are ordered by the key (at, run_id, seq), which is unique (run_id, seq is the primary
key). A page is read in two steps:

1. `page_bounds` finds, in the indexes only, the key of the page's last row and whether more
   rows follow (the next cursor);
2. `rows` streams every row after the cursor up to that key from a server-side cursor, so an
   export of 100 000 rows never sits in memory.

Because a page is a key *range*, never "n rows after", a row inserted while someone pages
(however old its `at`) cannot push an existing row out of a page or into the next one: pages
never repeat and never skip a row that existed when paging started. (A row inserted into the
range of a page still being read shows up in it; one inserted behind the cursor does not.)

The indexes behind every filter are in `migrations/0005_audit_indexes.sql`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from memory.db import Pool
from memory.runs import audit_fields
from schemas.audit import AuditRecord
from schemas.audit_query import AuditFilter, AuditOrder, AuditPage

T = TypeVar("T")

_CURSOR_VERSION = 1
#: Rows fetched from the server per round trip while streaming.
STREAM_BATCH = 1000


@dataclass(frozen=True)
class AuditKey:
    """Where a row sits in the audit's total order."""

    at: datetime
    run_id: str
    seq: int


@dataclass(frozen=True)
class AuditCursor:
    """Continue a listing after `key`. `started_at` is when the first page was asked for
    (relative times such as `since=24h` resolve against it on every page, so they mean the
    same rows throughout) and `fingerprint` names the filter it was issued for."""

    key: AuditKey
    started_at: datetime
    fingerprint: str

    def encode(self) -> str:
        data = {
            "v": _CURSOR_VERSION,
            "at": self.key.at.isoformat(),
            "r": self.key.run_id,
            "s": self.key.seq,
            "t": self.started_at.isoformat(),
            "f": self.fingerprint,
        }
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> AuditCursor:
        """The cursor `encode` made; ValueError for anything else (edited, truncated, old)."""
        try:
            raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
                raise ValueError("unknown cursor version")
            at = datetime.fromisoformat(data["at"])
            started = datetime.fromisoformat(data["t"])
            run_id, seq, fingerprint = data["r"], data["s"], data["f"]
            if not (
                isinstance(run_id, str)
                and "\x00" not in run_id
                and isinstance(seq, int)
                and 0 <= seq < 2**31  # the column's range: a larger one is not a row's
                and isinstance(fingerprint, str)
                and at.tzinfo is not None
                and started.tzinfo is not None
            ):
                raise ValueError("malformed cursor")
        # binascii.Error is a ValueError; RecursionError: JSON nested deeper than any cursor
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ValueError("not a cursor this service issued (edited or truncated?)") from exc
        return cls(AuditKey(at, run_id, seq), started, fingerprint)


def filter_fingerprint(audit_filter: AuditFilter) -> str:
    """A short digest of the filter (order included): a cursor only continues its own query."""
    return hashlib.sha256(audit_filter.model_dump_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PageBounds:
    """The key range of one page: rows after `after` up to `upto` (None: the page is empty)."""

    after: AuditKey | None
    upto: AuditKey | None
    next_cursor: AuditCursor | None


def filter_sql(audit_filter: AuditFilter, alias: str = "") -> tuple[list[str], dict[str, Any]]:
    """WHERE conditions (ANDed) and their parameters. One value is `=`, not `= ANY`, so the
    planner can read the matching index in key order."""
    p = f"{alias}." if alias else ""
    conditions: list[str] = []
    params: dict[str, Any] = {}

    def match(column: str, values: tuple[str, ...]) -> None:
        if len(values) == 1:
            conditions.append(f"{p}{column} = %({column})s")
            params[column] = values[0]
        elif values:
            conditions.append(f"{p}{column} = ANY(%({column})s)")
            params[column] = list(values)

    f = audit_filter
    match("run_id", (f.run_id,) if f.run_id else ())
    match("actor", (f.actor,) if f.actor else ())
    match("event", tuple(e.value for e in f.events))
    match("to_state", tuple(s.value for s in f.states))
    match("from_state", tuple(s.value for s in f.from_states))
    if f.since is not None:
        conditions.append(f"{p}at >= %(since)s")
        params["since"] = f.since
    if f.until is not None:
        conditions.append(f"{p}at < %(until)s")
        params["until"] = f.until
    return conditions, params


def _keyset(
    audit_filter: AuditFilter, after: AuditKey | None, upto: AuditKey | None
) -> tuple[str, dict[str, Any], str]:
    """WHERE clause (filter plus key range) and the ORDER BY of the listing."""
    conditions, params = filter_sql(audit_filter)
    desc = audit_filter.order is AuditOrder.DESC
    beyond, within = ("<", ">=") if desc else (">", "<=")
    if after is not None:
        conditions.append(f"(at, run_id, seq) {beyond} (%(a_at)s, %(a_run)s, %(a_seq)s)")
        params.update(a_at=after.at, a_run=after.run_id, a_seq=after.seq)
    if upto is not None:
        conditions.append(f"(at, run_id, seq) {within} (%(u_at)s, %(u_run)s, %(u_seq)s)")
        params.update(u_at=upto.at, u_run=upto.run_id, u_seq=upto.seq)
    return " AND ".join(conditions) or "TRUE", params, _order_by(desc)


def _order_by(desc: bool) -> str:
    direction = "DESC" if desc else "ASC"
    return f"at {direction}, run_id {direction}, seq {direction}"


def probe_sql(
    audit_filter: AuditFilter, limit: int, after: AuditKey | None
) -> tuple[str, dict[str, Any]]:
    """Step 1 of a page: the keys of its last row and of the row after it (if any), and how
    many rows (up to limit + 1) follow the cursor. Reads only index columns."""
    where, params, order = _keyset(audit_filter, after, None)
    reverse = _order_by(audit_filter.order is AuditOrder.ASC)
    params["probe"] = limit + 1
    query = f"""
        SELECT at, run_id, seq, count(*) OVER () AS n FROM (
            SELECT at, run_id, seq FROM crew_audit WHERE {where}
            ORDER BY {order} LIMIT %(probe)s
        ) page
        ORDER BY {reverse} LIMIT 2
    """
    return query, params


def rows_sql(
    audit_filter: AuditFilter, after: AuditKey | None, upto: AuditKey
) -> tuple[str, dict[str, Any]]:
    """Step 2: every row of the page's key range, in order (no LIMIT: a range never drops a
    row that a concurrent insert would push past a LIMIT)."""
    where, params, order = _keyset(audit_filter, after, upto)
    return f"SELECT * FROM crew_audit WHERE {where} ORDER BY {order}", params


def record_from_row(row: DictRow) -> AuditRecord:
    """An audit row as its contract (values come from our own writes: no re-validation)."""
    return AuditRecord.model_construct(**audit_fields(row))


#: Where queries run: the pool (a connection per call), or one connection (the benchmark
#: runs them inside a transaction that drops indexes, to compare).
Source = Pool | AsyncConnection[DictRow]


@asynccontextmanager
async def connection(source: Source) -> AsyncIterator[AsyncConnection[DictRow]]:
    if isinstance(source, AsyncConnection):
        yield source
    else:
        async with source.connection() as conn:
            yield conn


async def stream_query(
    source: Source, query: str, params: dict[str, Any], convert: Callable[[DictRow], T]
) -> AsyncIterator[T]:
    """Rows of `query` from a server-side cursor, `STREAM_BATCH` per round trip, converted.

    One statement, one snapshot: the stream is consistent even while rows are inserted."""
    async with connection(source) as conn, conn.transaction():
        cursor = conn.cursor(name="crew_audit_stream")
        cursor.itersize = STREAM_BATCH
        async with cursor:
            await cursor.execute(query.encode(), params)
            async for row in cursor:
                yield convert(row)


class AuditLog:
    """Read side of the append-only audit log (writes happen with checkpoints: runs.py)."""

    def __init__(self, source: Source) -> None:
        self._source = source

    async def page_bounds(
        self,
        audit_filter: AuditFilter,
        limit: int,
        cursor: AuditCursor | None,
        started_at: datetime,
    ) -> PageBounds:
        """The key range of the next `limit` rows, from the indexes alone.

        The caller checked the cursor belongs to this filter (its fingerprint)."""
        after = cursor.key if cursor else None
        query, params = probe_sql(audit_filter, limit, after)
        async with connection(self._source) as conn:
            rows = await (await conn.execute(query.encode(), params)).fetchall()
        if not rows:
            return PageBounds(after, None, None)
        if rows[0]["n"] <= limit:  # the rest fits in this page
            return PageBounds(after, _key(rows[0]), None)
        last = _key(rows[1])
        fingerprint = filter_fingerprint(audit_filter)
        return PageBounds(after, last, AuditCursor(last, started_at, fingerprint))

    def rows(self, audit_filter: AuditFilter, bounds: PageBounds) -> AsyncIterator[AuditRecord]:
        """Every row of the page `bounds` describes, streamed in key order."""
        if bounds.upto is None:
            return _empty()
        query, params = rows_sql(audit_filter, bounds.after, bounds.upto)
        return stream_query(self._source, query, params, record_from_row)

    async def page(
        self,
        audit_filter: AuditFilter,
        limit: int,
        cursor: AuditCursor | None,
        started_at: datetime,
    ) -> AuditPage:
        """One page in memory (the CLI's table, tests); exports use `page_bounds` + `rows`."""
        bounds = await self.page_bounds(audit_filter, limit, cursor, started_at)
        items = [record async for record in self.rows(audit_filter, bounds)]
        next_cursor = bounds.next_cursor.encode() if bounds.next_cursor else None
        return AuditPage(items=items, next_cursor=next_cursor)


def _key(row: DictRow) -> AuditKey:
    return AuditKey(row["at"], row["run_id"], row["seq"])


async def _empty() -> AsyncIterator[AuditRecord]:
    return
    yield  # pragma: no cover - makes this an async generator
