"""The event outbox (`crew_events`) and the Postgres bus's consumer groups: all their SQL.

Every OpsEvent is first a row here, written in the transaction of whatever caused it (a
checkpoint with its audit rows, a new run, a gate decision, a heartbeat). The unique
`event_id` makes writing an event twice a no-op; a transition's event id is `<run_id>.<seq>`,
the audit row's key, so a replayed checkpoint cannot duplicate it. The Postgres bus reads the
same rows through per-group delivery rows; the relay forwards them to Redis or NATS.

On the Postgres bus an outbox write *is* the bus publish, so `insert_events` reports it to the
bus observer (the `crew_bus_*` metrics): `published` once the transaction that wrote the event
commits, `publish_failed` when a database error ends that transaction. With Redis or NATS the
relay's publishes are what count, and the pool reports nothing (`memory.db.open_pool`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from memory.db import Connection, Pool
from schemas.audit import AuditRecord
from schemas.events import OpsEvent
from schemas.registry import ARTIFACTS
from tools.bus import BusKind, BusObserver, family_of

logger = logging.getLogger(__name__)

#: NOTIFY channel raised when events are written (payload: the family); wakes the relay and
#: the Postgres bus's consumers.
OUTBOX_CHANNEL = "crew_events"

#: Advisory lock (two-int key space: "crew", 3) between writers of events (shared) and the
#: creation of a consumer group (exclusive). Without it a group created while an event's
#: transaction is open misses that event: the event's fan-out did not see the uncommitted
#: group, and the group's backfill did not see the uncommitted event.
GROUPS_LOCK = (0x63726577, 3)

#: Heartbeats only matter while fresh; the outbox keeps them this long.
HEARTBEAT_RETENTION = timedelta(hours=1)

#: The bus an outbox write is a publish on (the `bus` label of the metrics).
OUTBOX_BUS: BusKind = "postgres"

#: What a failed outbox write raises: the database refused, or could not be reached.
DB_ERRORS = (psycopg.Error, OSError)


def transition_event_id(run_id: str, seq: int) -> str:
    """The event id of a run's audit row `seq`: deterministic, so it is written once."""
    return f"{run_id}.{seq}"


def event_from_audit(record: AuditRecord) -> OpsEvent:
    """The OpsEvent of one audit row: its type, run, time and artifact as the payload.

    The checkpoint must never fail because of its event: an artifact the registry does not
    know (or that no longer validates) travels without a payload, and that is logged.
    """
    payload_type = record.artifact_type if record.artifact is not None else None
    if payload_type is not None and payload_type not in ARTIFACTS:
        logger.warning("event for %s has an unknown payload type %s", record.run_id, payload_type)
        payload_type = None
    try:
        return OpsEvent(
            event_id=transition_event_id(record.run_id, record.seq),
            type=record.event,
            run_id=record.run_id,
            at=record.at,
            payload_type=payload_type,
            payload=record.artifact if payload_type is not None else None,
        )
    except ValidationError:
        logger.warning("event for %s #%d sent without its payload", record.run_id, record.seq)
        return OpsEvent(
            event_id=transition_event_id(record.run_id, record.seq),
            type=record.event,
            run_id=record.run_id,
            at=record.at,
        )


@dataclass
class _Tally:
    """What one `insert_events` call reports to the bus observer, once its transaction ends."""

    observer: BusObserver
    attempted: int
    fresh: list[OpsEvent]
    broken: bool = False
    """A write of this call failed: whatever it tried to store is not stored."""

    def committed(self) -> None:
        for event in self.fresh:
            self.observer.published(OUTBOX_BUS, event)
        if self.broken:  # without a transaction block: what came before the failure stays
            for _ in range(self.attempted - len(self.fresh)):
                self.observer.publish_failed(OUTBOX_BUS)

    def rolled_back(self, exc: BaseException | None) -> None:
        # a LeaseLostError or a cancelled step is a refused transition, not a failed publish
        if self.broken or isinstance(exc, DB_ERRORS):
            for _ in range(self.attempted):
                self.observer.publish_failed(OUTBOX_BUS)


async def insert_events(
    cur: AsyncCursor[DictRow], events: Sequence[OpsEvent], *, observer: BusObserver | None = None
) -> int:
    """Write `events` to the outbox in the caller's transaction; returns how many were new.

    Each new event also gets a delivery row for every Postgres-bus group reading its family,
    and a NOTIFY (delivered at commit) wakes the relay and the consumers.

    `observer` (default: the connection's `outbox_observer`, see `memory.db.open_pool`) hears
    of each new event when the transaction commits, and of each event as failed when a
    database error rolls it back: counted at write time, an event of a checkpoint refused
    for a lost lease would be reported as published although no consumer ever sees it.
    """
    conn = cur.connection
    if observer is None and isinstance(conn, Connection):
        observer = conn.outbox_observer
    tally = _Tally(observer, len(events), []) if observer is not None and events else None
    try:
        written = await _insert_events(cur, events, tally)
    except DB_ERRORS:
        if tally is not None:
            tally.broken = True
        raise
    finally:
        if tally is not None:
            if isinstance(conn, Connection):
                conn.on_commit(tally.committed, tally.rolled_back)
            else:  # a connection from elsewhere cannot tell when it commits: count now
                tally.committed()
    return written


async def _insert_events(
    cur: AsyncCursor[DictRow], events: Sequence[OpsEvent], tally: _Tally | None
) -> int:
    written = 0
    if events:
        # own statement: the fan-out below then sees every group committed before this lock
        await cur.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", GROUPS_LOCK)
    for event in events:
        family = family_of(event.type)
        await cur.execute(
            """
            WITH new AS (
                INSERT INTO crew_events (event_id, family, type, run_id, at, body)
                VALUES (%(id)s, %(family)s, %(type)s, %(run)s, %(at)s, %(body)s)
                ON CONFLICT (event_id) DO NOTHING
                RETURNING pk, family
            ), fan_out AS (
                INSERT INTO crew_bus_deliveries (group_name, event_pk)
                SELECT g.name, new.pk
                FROM new JOIN crew_bus_groups g ON new.family = ANY(g.families)
                RETURNING 1
            )
            SELECT count(pg_notify(%(channel)s, new.family)) AS n FROM new
            """,
            {
                "id": event.event_id,
                "family": family,
                "type": event.type.value,
                "run": event.run_id,
                "at": event.at,
                "body": Jsonb(event.model_dump(mode="json")),
                "channel": OUTBOX_CHANNEL,
            },
        )
        row = await cur.fetchone()
        new = int(row["n"]) if row is not None else 0
        written += new
        if new and tally is not None:
            tally.fresh.append(event)
    return written


class OutboxPublisher:
    """`tools.bus.EventPublisher` on the outbox: one event, its own transaction.

    With an `observer` (the Postgres bus's metrics) a publish is counted by `insert_events`
    once committed; a failure before it could write (no connection, BEGIN refused: Postgres
    is down) is counted here, since no transaction hook exists yet to see it.
    """

    def __init__(self, pool: Pool, observer: BusObserver | None = None) -> None:
        self._pool = pool
        self._observer = observer

    async def publish(self, event: OpsEvent) -> bool:
        writing = False
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                writing = True
                return await insert_events(cur, [event], observer=self._observer) == 1
        except DB_ERRORS:
            if not writing and self._observer is not None:
                self._observer.publish_failed(OUTBOX_BUS)
            raise


# -- the Postgres bus: consumer groups ------------------------------------------------------


@dataclass(frozen=True)
class OutboxDelivery:
    event_pk: int
    attempts: int
    body: dict[str, Any]


async def ensure_group(pool: Pool, group: str, families: Collection[str]) -> None:
    """Create the group (or add families to it). Families new to the group get delivery rows
    for the events the outbox still holds: a new group starts with the oldest kept event."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT families FROM crew_bus_groups WHERE name = %s", (group,))
        ).fetchone()
    if row is not None and set(families) <= set(row["families"]):
        return  # the usual case (every subscribe): no lock, no wait for event writers
    async with pool.connection() as conn, conn.transaction():
        # waits for open event transactions: the backfill below then sees their events, and
        # events written from now on see this group (see GROUPS_LOCK)
        await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", GROUPS_LOCK)
        row = await (
            await conn.execute(
                "SELECT families FROM crew_bus_groups WHERE name = %s FOR UPDATE", (group,)
            )
        ).fetchone()
        known = set(row["families"]) if row else set()
        added = sorted(set(families) - known)
        if not added:
            return
        await conn.execute(
            """
            INSERT INTO crew_bus_groups (name, families) VALUES (%s, %s)
            ON CONFLICT (name) DO UPDATE SET families = EXCLUDED.families
            """,
            (group, sorted(known | set(added))),
        )
        await conn.execute(
            """
            INSERT INTO crew_bus_deliveries (group_name, event_pk)
            SELECT %s, pk FROM crew_events WHERE family = ANY(%s)
            ON CONFLICT DO NOTHING
            """,
            (group, added),
        )


async def fetch_deliveries(
    pool: Pool, group: str, consumer: str, limit: int, ack_wait_s: float
) -> list[OutboxDelivery]:
    """Lock up to `limit` deliveries of `group` that nobody holds (or whose holder did not
    acknowledge in time) for `consumer`, oldest event first."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                """
                WITH picked AS (
                    SELECT group_name, event_pk FROM crew_bus_deliveries
                    WHERE group_name = %(group)s
                      AND (locked_until IS NULL OR locked_until < now())
                    ORDER BY event_pk
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE crew_bus_deliveries d
                SET consumer = %(consumer)s, attempts = d.attempts + 1,
                    locked_until = now() + make_interval(secs => %(wait)s)
                FROM picked, crew_events e
                WHERE d.group_name = picked.group_name AND d.event_pk = picked.event_pk
                  AND e.pk = d.event_pk
                RETURNING d.event_pk, d.attempts, e.body
                """,
                {"group": group, "limit": limit, "consumer": consumer, "wait": ack_wait_s},
            )
        ).fetchall()
    deliveries = [OutboxDelivery(r["event_pk"], r["attempts"], r["body"]) for r in rows]
    return sorted(deliveries, key=lambda d: d.event_pk)


async def ack_delivery(pool: Pool, group: str, event_pk: int) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "DELETE FROM crew_bus_deliveries WHERE group_name = %s AND event_pk = %s",
            (group, event_pk),
        )


async def group_backlog(pool: Pool, group_prefix: str) -> dict[str, int]:
    """Deliveries not yet acknowledged, per group whose name starts with `group_prefix`."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                """
                SELECT g.name, count(d.event_pk) AS n
                FROM crew_bus_groups g
                LEFT JOIN crew_bus_deliveries d ON d.group_name = g.name
                WHERE starts_with(g.name, %s)
                GROUP BY g.name
                """,
                (group_prefix,),
            )
        ).fetchall()
    return {r["name"]: r["n"] for r in rows}


# -- the relay ----------------------------------------------------------------------------


async def take_relay_lock(conn: AsyncConnection[DictRow], prefix: str) -> bool:
    """One relay at a time (per prefix), so events reach the bus in outbox order; held until
    the caller's transaction ends."""
    row = await (
        await conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext(%s)) AS locked", (f"crew-relay:{prefix}",)
        )
    ).fetchone()
    return bool(row and row["locked"])


async def unrelayed(conn: AsyncConnection[DictRow], limit: int) -> list[tuple[int, dict[str, Any]]]:
    rows = await (
        await conn.execute(
            "SELECT pk, body FROM crew_events WHERE relayed_at IS NULL ORDER BY pk LIMIT %s",
            (limit,),
        )
    ).fetchall()
    return [(r["pk"], r["body"]) for r in rows]


async def mark_relayed(conn: AsyncConnection[DictRow], pks: Sequence[int]) -> None:
    await conn.execute("UPDATE crew_events SET relayed_at = now() WHERE pk = ANY(%s)", (list(pks),))


async def count_unrelayed(pool: Pool) -> int:
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT count(*) AS n FROM crew_events WHERE relayed_at IS NULL")
        ).fetchone()
    return int(row["n"]) if row else 0


async def count_events(pool: Pool, *, run_id: str | None = None) -> dict[str, int]:
    """Outbox events per type (of one run, or all): what the bus should have carried."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                """
                SELECT type, count(*) AS n FROM crew_events
                WHERE (%(run)s::text IS NULL OR run_id = %(run)s) GROUP BY type
                """,
                {"run": run_id},
            )
        ).fetchall()
    return {r["type"]: r["n"] for r in rows}


async def prune_events(pool: Pool, retention: timedelta, *, relayed_only: bool) -> int:
    """Delete events older than `retention` (heartbeats: an hour) that the relay has
    forwarded (with `relayed_only`: a Redis/NATS bus). Like a stream's MAXLEN, the Postgres
    bus keeps deliveries no longer than `retention`: a group that did not read an event in
    that time does not get it."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            DELETE FROM crew_bus_deliveries d USING crew_events e
            WHERE d.event_pk = e.pk AND e.created_at < now() - %s
            """,
            (retention,),
        )
    total = 0
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute(
                """
                DELETE FROM crew_events WHERE pk IN (
                    SELECT e.pk FROM crew_events e
                    WHERE (e.created_at < now() - %(keep)s
                           OR (e.family = 'heartbeat' AND e.created_at < now() - %(beats)s))
                      AND (NOT %(relayed_only)s OR e.relayed_at IS NOT NULL)
                      AND NOT EXISTS (
                          SELECT 1 FROM crew_bus_deliveries d WHERE d.event_pk = e.pk)
                    ORDER BY e.pk LIMIT 5000
                )
                """,
                {"keep": retention, "beats": HEARTBEAT_RETENTION, "relayed_only": relayed_only},
            )
            total += cur.rowcount
            if cur.rowcount < 5000:
                return total


class OutboxListener:
    """A dedicated connection LISTENing on OUTBOX_CHANNEL: `wait` returns when events were
    written (or after `timeout_s`). Opened lazily and re-opened after a connection loss, so a
    caller can always fall back to polling."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: AsyncConnection[DictRow] | None = None

    async def open(self) -> None:
        if self._conn is None or self._conn.closed:
            conn: AsyncConnection[DictRow] = await AsyncConnection.connect(
                self._conninfo, autocommit=True, row_factory=dict_row
            )
            await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
            self._conn = conn

    async def wait(self, timeout_s: float) -> bool:
        """True when at least one notification arrived within `timeout_s`."""
        try:
            await self.open()
            assert self._conn is not None
            async for _ in self._conn.notifies(timeout=timeout_s, stop_after=1):
                return True
            return False
        except psycopg.OperationalError:
            logger.warning("LISTEN connection lost; polling until it is back", exc_info=True)
            await self.close()
            await asyncio.sleep(timeout_s)
            return False

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
