"""The gate's SQL: used Slack requests (replays), the gate log, approval expiry, rollback SLA.

State transitions are in `crew_audit` (written with the checkpoints); the gate log holds what is
not a transition: refused decisions, expired approvals and rollback SLA alerts, each with its
OpsEvent, which goes to the bus's outbox (`memory/events.py`) in the same transaction. Rows are
append-only; a `dedup` key makes an alert idempotent (a job that runs twice, or on two
replicas, logs and publishes it once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from memory.db import Pool
from memory.events import insert_events
from schemas.apply import ApplyResult
from schemas.approval import Channel, GateLogEntry
from schemas.events import EventType, OpsEvent
from schemas.states import ConductorState

_WAITING = ConductorState.WAIT_FOR_APPROVE.value
_ROLLBACK = ConductorState.ROLLBACK.value


@dataclass(frozen=True)
class RollbackToMeasure:
    """A finished rollback (its audit row) and what started it (the `rollback.started` row)."""

    run_id: str
    seq: int
    trigger_at: datetime
    result: ApplyResult
    started_seq: int | None = None
    """Seq of the audit row that moved the run into ROLLBACK: with `run_id`, it names the
    rollback while it runs too, so a breach seen then and one measured after are one."""

    @property
    def rollback_seq(self) -> int:
        """Which rollback this is (the finishing row when no starting row was found)."""
        return self.seq if self.started_seq is None else self.started_seq


@dataclass(frozen=True)
class RunningRollback:
    """A run still in ROLLBACK, and the audit row that put it there."""

    run_id: str
    started_seq: int
    since: datetime
    after_failure: bool
    """True when a failed apply started it (the row carries the ApplyResult), False when a
    human asked for it."""


@dataclass(frozen=True)
class SlaMeasure:
    run_id: str
    seq: int
    trigger_at: datetime
    started_at: datetime
    finished_at: datetime
    begin_s: float
    finish_s: float
    met: bool


class GateStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    # -- Slack requests already used -------------------------------------------------------

    async def remember_request(self, signature: str, expires_at: datetime) -> bool:
        """True the first time a request signature is seen; False for a replay."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                INSERT INTO crew_slack_requests (signature, expires_at) VALUES (%s, %s)
                ON CONFLICT (signature) DO NOTHING
                """,
                (signature, expires_at),
            )
            return cur.rowcount == 1

    async def prune_requests(self, now: datetime) -> int:
        """Forget signatures whose timestamp is too old to pass verification anyway."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM crew_slack_requests WHERE expires_at < %s", (now,)
            )
            return cur.rowcount

    # -- the gate log ------------------------------------------------------------------------

    async def log(self, entry: GateLogEntry, event: OpsEvent, dedup: str | None = None) -> bool:
        """Append a row and put its OpsEvent on the bus's outbox, in one transaction; with
        `dedup`, only the first row with that key (returns False after, publishing nothing)."""
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                """
                INSERT INTO crew_gate_log (at, kind, run_id, channel, actor, action, detail,
                                           event, dedup)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (dedup) DO NOTHING
                """,
                (
                    entry.at,
                    entry.kind,
                    entry.run_id,
                    entry.channel.value if entry.channel else None,
                    entry.actor,
                    entry.action,
                    entry.detail,
                    Jsonb(event.model_dump(mode="json")),
                    dedup,
                ),
            )
            if cur.rowcount != 1:
                return False
            await insert_events(conn.cursor(), [event])
            return True

    async def entries(self, run_id: str | None = None, limit: int = 1000) -> list[GateLogEntry]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT * FROM crew_gate_log
                    WHERE (%(run_id)s::text IS NULL OR run_id = %(run_id)s)
                    ORDER BY at, id LIMIT %(limit)s
                    """,
                    {"run_id": run_id, "limit": limit},
                )
            ).fetchall()
        return [_entry(r) for r in rows]

    # -- approval expiry ---------------------------------------------------------------------

    async def waiting_since_before(self, cutoff: datetime, limit: int = 100) -> list[str]:
        """Runs still undecided at the gate that reached it before `cutoff`."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"""
                    SELECT r.run_id FROM crew_runs r
                    WHERE r.state = '{_WAITING}' AND r.decision IS NULL
                      AND (SELECT max(a.at) FROM crew_audit a
                           WHERE a.run_id = r.run_id AND a.to_state = '{_WAITING}') < %s
                    ORDER BY r.updated_at LIMIT %s
                    """,
                    (cutoff, limit),
                )
            ).fetchall()
        return [r["run_id"] for r in rows]

    # -- decisions, for the metrics -----------------------------------------------------------

    async def decisions_acted_on(self) -> dict[tuple[str, str], int]:
        """Gate decisions the graph acted on, by (decision, channel): the audit row that
        leaves WAIT_FOR_APPROVE carries each one. Whichever process drove the run (a worker,
        `crew serve`, a `crew approve` in a terminal) wrote that row, so a count made here is
        the same everywhere. A recorded but unprocessed decision (`crew_runs.decision`) is
        not counted yet; a rollback request (which leaves DONE) is never a gate decision."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"""
                    SELECT artifact->>'decision' AS decision, artifact->>'channel' AS channel,
                           count(*) AS n
                    FROM crew_audit
                    WHERE from_state = '{_WAITING}' AND artifact_type = 'ApprovalDecision'
                    GROUP BY 1, 2
                    """
                )
            ).fetchall()
        return {(r["decision"], r["channel"]): int(r["n"]) for r in rows}

    # -- rollback SLA --------------------------------------------------------------------------

    async def rollbacks_to_measure(self, limit: int = 100) -> list[RollbackToMeasure]:
        """Finished rollbacks (audit rows with their ApplyResult) not measured yet."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"""
                    SELECT a.run_id, a.seq, a.artifact, t.at AS trigger_at, t.seq AS started_seq
                    FROM crew_audit a
                    LEFT JOIN LATERAL (
                        SELECT s.at, s.seq FROM crew_audit s
                        WHERE s.run_id = a.run_id AND s.seq < a.seq
                          AND s.to_state = '{_ROLLBACK}'
                        ORDER BY s.seq DESC LIMIT 1) t ON true
                    LEFT JOIN crew_rollback_sla m ON m.run_id = a.run_id AND m.seq = a.seq
                    WHERE a.event = ANY(%s) AND a.artifact_type = 'ApplyResult'
                      AND m.run_id IS NULL
                    ORDER BY a.at LIMIT %s
                    """,
                    ([EventType.ROLLBACK_DONE.value, EventType.ROLLBACK_FAILED.value], limit),
                )
            ).fetchall()
        found = []
        for row in rows:
            result = ApplyResult.model_validate(row["artifact"])
            trigger = result.failure_at or row["trigger_at"] or result.started_at
            found.append(
                RollbackToMeasure(row["run_id"], row["seq"], trigger, result, row["started_seq"])
            )
        return found

    async def record_sla(self, measure: SlaMeasure) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                INSERT INTO crew_rollback_sla (run_id, seq, trigger_at, started_at, finished_at,
                                               begin_s, finish_s, met)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (run_id, seq) DO NOTHING
                """,
                (
                    measure.run_id,
                    measure.seq,
                    measure.trigger_at,
                    measure.started_at,
                    measure.finished_at,
                    measure.begin_s,
                    measure.finish_s,
                    measure.met,
                ),
            )
            return cur.rowcount == 1

    async def sla_measures(self, run_id: str | None = None) -> list[SlaMeasure]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT * FROM crew_rollback_sla
                    WHERE (%(run_id)s::text IS NULL OR run_id = %(run_id)s)
                    ORDER BY trigger_at
                    """,
                    {"run_id": run_id},
                )
            ).fetchall()
        return [
            SlaMeasure(
                run_id=r["run_id"],
                seq=r["seq"],
                trigger_at=r["trigger_at"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                begin_s=r["begin_s"],
                finish_s=r["finish_s"],
                met=r["met"],
            )
            for r in rows
        ]

    async def rollbacks_running_since_before(self, cutoff: datetime) -> list[RunningRollback]:
        """Runs in ROLLBACK whose rollback was asked for (or forced) before `cutoff`."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"""
                    SELECT r.run_id, t.seq, t.at, t.artifact_type FROM crew_runs r
                    CROSS JOIN LATERAL (
                        SELECT a.seq, a.at, a.artifact_type FROM crew_audit a
                        WHERE a.run_id = r.run_id AND a.to_state = '{_ROLLBACK}'
                        ORDER BY a.seq DESC LIMIT 1) t
                    WHERE r.state = '{_ROLLBACK}' AND t.at < %s
                    """,
                    (cutoff,),
                )
            ).fetchall()
        return [
            RunningRollback(
                run_id=r["run_id"],
                started_seq=r["seq"],
                since=r["at"],
                after_failure=r["artifact_type"] == "ApplyResult",
            )
            for r in rows
        ]


def _entry(row: DictRow) -> GateLogEntry:
    return GateLogEntry(
        at=row["at"],
        kind=row["kind"],
        run_id=row["run_id"],
        channel=Channel(row["channel"]) if row["channel"] else None,
        actor=row["actor"],
        action=row["action"],
        detail=row["detail"],
    )
