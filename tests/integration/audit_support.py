"""A small, fully known audit history for tests/integration/test_audit.py.

Six runs covering every path the reports care about, written with plain SQL (the audit is
append-only and written with checkpoints in production; here only its shape matters).
Every row is also kept in Python, so each filter's answer can be computed independently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    run_id: str
    seq: int
    at: datetime
    actor: str
    event: str
    from_state: str | None
    to_state: str
    artifact_type: str | None = None
    artifact: dict[str, Any] | None = None
    note: str | None = None

    @property
    def key(self) -> tuple[datetime, str, int]:
        return (self.at, self.run_id, self.seq)


@dataclass(frozen=True)
class SeedRun:
    run_id: str
    title: str
    budget: float
    state: str
    created_at: datetime
    planned: float | None
    rows: list[Row]


def _decision(run_id: str, decision: str, actor: str, at: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "decision": decision,
        "actor": actor,
        "channel": "rest",
        "at": str(at),
    }


def _validation(monthly: float, budget: float) -> dict[str, Any]:
    return {
        "plan_id": "p",
        "verdict": "PASS",
        "cost": {"monthly_usd": monthly, "source": "builtin"},
        "budget_brake": {"limit_monthly_usd": round(budget * 0.8, 2), "cap_monthly_usd": budget},
    }


# (event, from, to, actor) steps; the first is run.created from None to PENDING.
_DESIGN = [
    ("run.created", None, "PENDING", "alice"),
    ("design.started", "PENDING", "IN_PROGRESS", "atlas"),
    ("plan.pending", "IN_PROGRESS", "VALIDATING", "atlas"),
    ("validate.pending", "VALIDATING", "VALIDATING", "forge"),
    ("validate.result", "VALIDATING", "READY_FOR_APPLY", "sentinel"),
    ("approval.requested", "READY_FOR_APPLY", "WAIT_FOR_APPROVE", "conductor"),
]
_PATHS: dict[str, list[tuple[str, str | None, str, str]]] = {
    "applied": [
        *_DESIGN,
        ("apply.request", "WAIT_FOR_APPROVE", "APPLYING", "alice"),
        ("apply.done", "APPLYING", "DONE", "forge"),
    ],
    "rejected": [*_DESIGN, ("run.rejected", "WAIT_FOR_APPROVE", "REJECTED", "bob")],
    "rolled_back": [
        *_DESIGN,
        ("apply.request", "WAIT_FOR_APPROVE", "APPLYING", "alice"),
        ("apply.done", "APPLYING", "DONE", "forge"),
        ("rollback.started", "DONE", "ROLLBACK", "carol"),
        ("rollback.done", "ROLLBACK", "DONE", "forge"),
    ],
    "apply_failed": [
        *_DESIGN,
        ("apply.request", "WAIT_FOR_APPROVE", "APPLYING", "bob"),
        ("rollback.started", "APPLYING", "ROLLBACK", "forge"),
        ("rollback.failed", "ROLLBACK", "FAILED", "forge"),
    ],
    "waiting": _DESIGN,
    "blocked": [
        ("run.created", None, "PENDING", "dave"),
        ("design.started", "PENDING", "IN_PROGRESS", "atlas"),
        ("design.blocked", "IN_PROGRESS", "BLOCKED", "atlas"),
    ],
    "rolling_back": [
        *_DESIGN,
        ("apply.request", "WAIT_FOR_APPROVE", "APPLYING", "alice"),
        ("apply.done", "APPLYING", "DONE", "forge"),
        ("rollback.started", "DONE", "ROLLBACK", "carol"),
    ],
}
_FINAL = {
    "applied": "DONE",
    "rejected": "REJECTED",
    "rolled_back": "DONE",
    "apply_failed": "FAILED",
    "waiting": "WAIT_FOR_APPROVE",
    "blocked": "BLOCKED",
    "rolling_back": "ROLLBACK",
}


def build_runs(prefix: str = "run", start: datetime = T0) -> list[SeedRun]:
    """One run per path, an hour apart; rows a minute apart. Costs differ per run."""
    runs = []
    for i, (path, steps) in enumerate(_PATHS.items()):
        run_id = f"{prefix}-{i}-{path}"
        created = start + timedelta(hours=i)
        budget = 50.0 + 10 * i
        # the rejected run's forecast is over its brake (65 > 0.8 * 60); the others are within
        validated = 65.0 if path == "rejected" else 10.0 + 9 * i
        rows = []
        for seq, (event, came, to, actor) in enumerate(steps):
            at = created + timedelta(minutes=seq)
            artifact_type, artifact = None, None
            if event == "validate.result":
                artifact_type, artifact = "ValidationReport", _validation(validated, budget)
            elif event in ("apply.request", "run.rejected") or (
                event == "rollback.started" and came == "DONE"
            ):
                decision = {"apply.request": "approve", "run.rejected": "reject"}.get(
                    event, "rollback"
                )
                artifact_type = "ApprovalDecision"
                artifact = _decision(run_id, decision, actor, at)
            note = "looks good" if event == "apply.request" else None
            rows.append(Row(run_id, seq, at, actor, event, came, to, artifact_type, artifact, note))
        planned = None if path == "blocked" else validated - 1
        runs.append(SeedRun(run_id, f"{path} run", budget, _FINAL[path], created, planned, rows))
    return runs


def insert_runs(conn: psycopg.Connection[Any], runs: list[SeedRun]) -> None:
    for run in runs:
        summary = {"forecast_monthly_usd": run.planned} if run.planned is not None else {}
        conn.execute(
            """
            INSERT INTO crew_runs (run_id, goal_id, title, goal, state, last_seq, summary,
                                   created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                run.run_id,
                run.run_id,
                run.title,
                Jsonb({"budget": {"monthly_usd": run.budget}}),
                run.state,
                run.rows[-1].seq,
                Jsonb(summary),
                run.created_at,
                run.rows[-1].at,
            ),
        )
        insert_rows(conn, run.rows)
        ends = [r for r in run.rows if r.event in ("rollback.done", "rollback.failed")]
        for end in ends:
            trigger = end.at - timedelta(minutes=1)
            conn.execute(
                """
                INSERT INTO crew_rollback_sla (run_id, seq, trigger_at, started_at, finished_at,
                                               begin_s, finish_s, met)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    run.run_id,
                    end.seq,
                    trigger,
                    trigger + timedelta(seconds=5),
                    end.at,
                    5.0,
                    60.0,
                    end.event == "rollback.done",
                ),
            )


def insert_rows(conn: psycopg.Connection[Any], rows: list[Row]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO crew_audit (run_id, seq, at, actor, event, from_state, to_state,
                                    artifact_type, artifact, note)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            [
                (
                    r.run_id,
                    r.seq,
                    r.at,
                    r.actor,
                    r.event,
                    r.from_state,
                    r.to_state,
                    r.artifact_type,
                    Jsonb(r.artifact) if r.artifact is not None else None,
                    r.note,
                )
                for r in rows
            ],
        )


def all_rows(runs: list[SeedRun]) -> list[Row]:
    return sorted((r for run in runs for r in run.rows), key=lambda r: r.key)


def as_json(row: Row) -> dict[str, Any]:
    """How the row looks in the API's JSON."""
    return {
        "run_id": row.run_id,
        "seq": row.seq,
        "at": row.at.isoformat().replace("+00:00", "Z"),
        "actor": row.actor,
        "event": row.event,
        "from_state": row.from_state,
        "to_state": row.to_state,
        "artifact_type": row.artifact_type,
        "artifact": json.loads(json.dumps(row.artifact)) if row.artifact else None,
        "note": row.note,
    }
