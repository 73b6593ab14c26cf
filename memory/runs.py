"""Runs and audit: all SQL about them lives here.

A run row is the queue entry and the index card of one LangGraph thread (run id = thread id).
Its `state`, `last_seq` and `summary` are a projection of the latest checkpoint, written in the
checkpoint's own transaction (see `memory/checkpointer.py`), so the audit log and the
checkpoints can never disagree after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from memory.db import Pool
from memory.dispatch import dispatch, dispatch_if_needed
from memory.events import event_from_audit, insert_events
from schemas.approval import ApprovalDecision
from schemas.audit import AuditRecord
from schemas.errors import RunConflictError, RunNotFoundError
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.progress import StepProgress
from schemas.run import RunSummary
from schemas.stack import RevisionBase, RunPurpose
from schemas.states import ACTIVE_STATES, ConductorState

_ACTIVE = [s.value for s in ACTIVE_STATES]
_WAITING = ConductorState.WAIT_FOR_APPROVE.value

#: A run needs a worker when it is active, or waiting at the gate with a decision recorded.
_NEEDS_WORK = f"""
    (state = ANY(%(active)s) OR (state = '{_WAITING}' AND decision IS NOT NULL))
    AND (not_before IS NULL OR not_before <= now())
"""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    goal_id: str
    revision: int
    title: str
    requested_by: str | None
    goal: GoalStatement
    state: ConductorState
    last_seq: int
    summary: dict[str, Any]
    decision: ApprovalDecision | None
    lease_owner: str | None
    lease_until: datetime | None
    apply_started_at: datetime | None
    created_at: datetime
    updated_at: datetime
    failures: int = 0
    last_error: str | None = None
    progress: StepProgress | None = None
    purpose: RunPurpose = RunPurpose.GOAL
    base: RevisionBase | None = None
    """The applied revision this run plans against (what its failed apply rolls back to)."""
    seed_plan: dict[str, Any] | None = None
    """A reconcile's declared configuration (the applied revision's PlanSpec, as JSON)."""

    @classmethod
    def from_row(cls, row: DictRow) -> RunRecord:
        return cls(
            run_id=row["run_id"],
            goal_id=row["goal_id"],
            revision=row["revision"],
            title=row["title"],
            requested_by=row["requested_by"],
            goal=GoalStatement.model_validate(row["goal"]),
            state=ConductorState(row["state"]),
            last_seq=row["last_seq"],
            summary=row["summary"] or {},
            decision=(
                ApprovalDecision.model_validate(row["decision"]) if row["decision"] else None
            ),
            lease_owner=row["lease_owner"],
            lease_until=row["lease_until"],
            apply_started_at=row["apply_started_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            failures=row.get("failures", 0),
            last_error=row.get("last_error"),
            progress=StepProgress.model_validate(row["progress"]) if row.get("progress") else None,
            purpose=RunPurpose(row.get("purpose") or RunPurpose.GOAL.value),
            base=(
                RevisionBase(run_id=row["base_run_id"], revision=row["base_revision"])
                if row.get("base_run_id")
                else None
            ),
            seed_plan=row.get("seed_plan"),
        )

    def to_summary(self) -> RunSummary:
        return RunSummary(
            run_id=self.run_id,
            goal_id=self.goal_id,
            revision=self.revision,
            title=self.title,
            requested_by=self.requested_by,
            state=self.state,
            created_at=self.created_at,
            updated_at=self.updated_at,
            summary=self.summary,
            decision=self.decision,
            last_error=self.last_error,
            progress=self.progress,
            purpose=self.purpose,
            base=self.base,
        )


@dataclass(frozen=True)
class Projection:
    """What a checkpoint implies for the run row and the audit log.

    `records_after(seq)` builds only the audit rows not yet written (artifacts are dumped to
    JSON lazily: most checkpoints add one row or none).
    """

    state: ConductorState
    last_seq: int
    summary: dict[str, Any]
    records_after: Callable[[int], list[AuditRecord]]


class LeaseLostError(RuntimeError):
    """A worker tried to checkpoint a run another worker has taken over (fencing)."""


def _check_revisable(latest: RunRecord, goal: GoalStatement) -> None:
    """A new revision needs the latest one ended, and stays in the stack's region."""
    if not latest.state.is_terminal:
        raise RunConflictError(
            latest.run_id,
            f"revision {latest.revision} of goal '{latest.goal_id}' (run {latest.run_id}) is "
            f"{latest.state.value}; wait for it to end, or cancel it, before revising the stack",
        )
    if latest.goal.region != goal.region:
        raise RunConflictError(
            latest.run_id,
            f"goal '{latest.goal_id}' deploys to {latest.goal.region}; a revision cannot move "
            f"it to {goal.region} (use a new goal_id for a stack in another region)",
        )


async def _applied_base(cur: AsyncCursor[DictRow], goal_id: str) -> RevisionBase | None:
    """The newest revision whose apply is what the stack's state holds (outcome applied);
    None when nothing is, or the stack was decommissioned since."""
    await cur.execute(
        """
        SELECT run_id, revision, summary->>'outcome' AS outcome FROM crew_runs
        WHERE goal_id = %s AND summary->>'outcome' IN ('applied', 'destroyed')
        ORDER BY revision DESC LIMIT 1
        """,
        (goal_id,),
    )
    row = await cur.fetchone()
    if row is None or row["outcome"] != "applied":
        return None
    return RevisionBase(run_id=row["run_id"], revision=row["revision"])


def _goal_json(goal: GoalStatement) -> dict[str, Any]:
    data: dict[str, Any] = goal.model_dump(mode="json", exclude_none=True)
    return data


class RunStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create(
        self,
        goal: GoalStatement,
        *,
        run_id: str,
        at: datetime,
        actor: str = "system",
        revise: bool = False,
        purpose: RunPurpose = RunPurpose.GOAL,
        seed_plan: dict[str, Any] | None = None,
    ) -> tuple[RunRecord, bool]:
        """Insert a PENDING run with its first audit row, or return the run already made for
        this goal (created=False).

        A goal_id seen before starts the next revision of its stack when the goal differs
        from its latest revision's (or `revise` asks for one: a reconcile, `crew revise`),
        planned against the stack's current state; the same goal again returns the latest
        run. A revision is refused (RunConflictError) while the latest one has not ended:
        one revision of a stack at a time, so an approval never applies over a newer plan.

        `actor` is who submitted it as the channel authenticated them (a REST principal, the
        CLI); the audit row names them. The goal's `requested_by` is only what the body
        claims: it is kept as that claim (the row's note, the run's `requested_by`), never
        as the actor."""
        goal_id = goal.goal_id or run_id
        goal_json = _goal_json(goal)
        async with self._pool.connection() as conn, conn.transaction():
            latest = await (
                await conn.execute(
                    """
                    SELECT * FROM crew_runs WHERE goal_id = %s
                    ORDER BY revision DESC LIMIT 1 FOR UPDATE
                    """,
                    (goal_id,),
                )
            ).fetchone()
            revision, base = 1, None
            if latest is not None:
                record = RunRecord.from_row(latest)
                if not revise and _goal_json(record.goal) == goal_json:
                    return record, False
                _check_revisable(record, goal)
                revision = record.revision + 1
                base = await _applied_base(conn.cursor(), goal_id)
            row = await (
                await conn.execute(
                    """
                    INSERT INTO crew_runs (run_id, goal_id, revision, title, requested_by, goal,
                                           state, created_at, updated_at, base_run_id,
                                           base_revision, purpose, seed_plan)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (goal_id, revision) DO NOTHING
                    RETURNING *
                    """,
                    (
                        run_id,
                        goal_id,
                        revision,
                        goal.title,
                        goal.requested_by,
                        Jsonb(goal_json),
                        ConductorState.PENDING.value,
                        at,
                        at,
                        base.run_id if base else None,
                        base.revision if base else None,
                        purpose.value,
                        Jsonb(seed_plan) if seed_plan is not None else None,
                    ),
                )
            ).fetchone()
            if row is None:
                # A concurrent request made this revision first (the first revision has no
                # row to lock): the same goal is that request's run, another is a conflict.
                existing = await (
                    await conn.execute(
                        "SELECT * FROM crew_runs WHERE goal_id = %s AND revision = %s",
                        (goal_id, revision),
                    )
                ).fetchone()
                assert existing is not None
                record = RunRecord.from_row(existing)
                if _goal_json(record.goal) != goal_json or revise:
                    raise RunConflictError(
                        record.run_id,
                        f"revision {revision} of goal '{goal_id}' was just started by run "
                        f"{record.run_id}; wait for it to end before revising again",
                    )
                return record, False
            note = (
                f"requested_by (claimed by the goal, not verified): {goal.requested_by}"
                if goal.requested_by
                else None
            )
            if revision > 1:
                against = (
                    f"planned against revision {base.revision} (run {base.run_id})"
                    if base
                    else "nothing applied before it"
                )
                note = "; ".join(
                    filter(
                        None,
                        [
                            f"{purpose.value}: revision {revision} of the stack, {against}",
                            note,
                        ],
                    )
                )
            await _insert_audit(
                conn.cursor(),
                AuditRecord(
                    run_id=run_id,
                    seq=0,
                    at=at,
                    actor=actor,
                    event=EventType.RUN_CREATED,
                    from_state=None,
                    to_state=ConductorState.PENDING,
                    artifact_type="GoalStatement",
                    artifact=goal_json,
                    note=note,
                ),
            )
            # Hand it to a worker through the bus, committed with the run (memory/dispatch.py).
            await dispatch(conn.cursor(), [run_id], at)
            return RunRecord.from_row(row), True

    async def newer_revisions(self, goal_id: str, revision: int) -> list[RunRecord]:
        """The revisions of a goal's stack after `revision`, oldest first."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT * FROM crew_runs WHERE goal_id = %s AND revision > %s
                    ORDER BY revision
                    """,
                    (goal_id, revision),
                )
            ).fetchall()
        return [RunRecord.from_row(r) for r in rows]

    async def latest_of_goal(self, goal_id: str) -> RunRecord | None:
        """The newest revision of a goal's stack."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT * FROM crew_runs WHERE goal_id = %s ORDER BY revision DESC LIMIT 1",
                    (goal_id,),
                )
            ).fetchone()
        return RunRecord.from_row(row) if row else None

    async def get(self, run_id: str) -> RunRecord:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute("SELECT * FROM crew_runs WHERE run_id = %s", (run_id,))
            ).fetchone()
        if row is None:
            raise RunNotFoundError(run_id)
        return RunRecord.from_row(row)

    async def list_runs(
        self,
        *,
        state: ConductorState | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Newest first."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT * FROM crew_runs
                    WHERE (%(state)s::text IS NULL OR state = %(state)s)
                    ORDER BY created_at DESC, run_id DESC
                    LIMIT %(limit)s OFFSET %(offset)s
                    """,
                    {"state": state.value if state else None, "limit": limit, "offset": offset},
                )
            ).fetchall()
        return [RunRecord.from_row(r) for r in rows]

    async def count_by_state(self) -> dict[str, int]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT state, count(*) AS n FROM crew_runs GROUP BY state")
            ).fetchall()
        return {r["state"]: r["n"] for r in rows}

    async def claim_next(self, worker_id: str, ttl_s: float) -> RunRecord | None:
        """Lease the oldest run that needs a worker and has no live lease."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    f"""
                    UPDATE crew_runs SET lease_owner = %(worker)s,
                           lease_until = now() + make_interval(secs => %(ttl)s),
                           dispatched_at = NULL
                    WHERE run_id = (
                        SELECT run_id FROM crew_runs
                        WHERE {_NEEDS_WORK}
                          AND (lease_until IS NULL OR lease_until < now())
                        ORDER BY updated_at
                        FOR UPDATE SKIP LOCKED
                        LIMIT 1
                    )
                    RETURNING *
                    """,
                    {"worker": worker_id, "ttl": ttl_s, "active": _ACTIVE},
                )
            ).fetchone()
        return RunRecord.from_row(row) if row else None

    async def claim(self, run_id: str, worker_id: str, ttl_s: float) -> RunRecord | None:
        """Lease one given run if it needs a worker and nobody holds it (the CLI drives runs
        in-process this way)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    f"""
                    UPDATE crew_runs SET lease_owner = %(worker)s,
                           lease_until = now() + make_interval(secs => %(ttl)s),
                           dispatched_at = NULL
                    WHERE run_id = %(run_id)s AND {_NEEDS_WORK}
                      AND (lease_until IS NULL OR lease_until < now()
                           OR lease_owner = %(worker)s)
                    RETURNING *
                    """,
                    {"worker": worker_id, "ttl": ttl_s, "active": _ACTIVE, "run_id": run_id},
                )
            ).fetchone()
        return RunRecord.from_row(row) if row else None

    async def renew(self, run_id: str, worker_id: str, ttl_s: float) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                UPDATE crew_runs SET lease_until = now() + make_interval(secs => %s)
                WHERE run_id = %s AND lease_owner = %s
                """,
                (ttl_s, run_id, worker_id),
            )
            return cur.rowcount == 1

    async def release(self, run_id: str, worker_id: str) -> None:
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                """
                UPDATE crew_runs SET lease_owner = NULL, lease_until = NULL
                WHERE run_id = %s AND lease_owner = %s
                """,
                (run_id, worker_id),
            )
            # Someone may have recorded a decision while we held the lease, or we stopped
            # early (shutdown): hand it on.
            if cur.rowcount == 1:
                await dispatch_if_needed(cur, run_id, datetime.now(UTC))

    async def record_decision(self, decision: ApprovalDecision) -> RunRecord:
        """Record the gate decision once. A second decision, or one for a run that is not
        waiting, is a conflict that names who decided first."""
        async with self._pool.connection() as conn, conn.transaction():
            row = await (
                await conn.execute(
                    f"""
                    UPDATE crew_runs SET decision = %s
                    WHERE run_id = %s AND state = '{_WAITING}' AND decision IS NULL
                    RETURNING *
                    """,
                    (Jsonb(decision.model_dump(mode="json")), decision.run_id),
                )
            ).fetchone()
            if row is not None:
                await dispatch(conn.cursor(), [decision.run_id], decision.at)
                return RunRecord.from_row(row)
        current = await self.get(decision.run_id)
        if current.decision is not None:
            first = current.decision
            raise RunConflictError(
                current.run_id,
                f"run {current.run_id} was already {_past(first.decision.value)} by "
                f"{first.actor} via {first.channel.value} at {first.at.isoformat()}",
            )
        raise RunConflictError(
            current.run_id,
            f"run {current.run_id} is {current.state.value}, not waiting for approval",
        )

    async def request_cancel(
        self, decision: ApprovalDecision, holder: str, ttl_s: float
    ) -> tuple[RunRecord, str | None]:
        """Record a cancel once and take the run's lease for `holder`, in one UPDATE; returns
        the run and the worker whose live lease was taken (it stops driving the run).

        Only a run not yet applying can be cancelled: in a state before the apply, with no
        decision recorded and no apply started. Otherwise a conflict says why not."""
        async with self._pool.connection() as conn, conn.transaction():
            row = await (
                await conn.execute(
                    """
                    WITH old AS (
                        SELECT run_id, lease_owner, lease_until FROM crew_runs
                        WHERE run_id = %(run_id)s FOR UPDATE)
                    UPDATE crew_runs r SET decision = %(decision)s,
                           lease_owner = %(holder)s,
                           lease_until = now() + make_interval(secs => %(ttl)s),
                           not_before = NULL, dispatched_at = NULL
                    FROM old
                    WHERE r.run_id = old.run_id AND r.state = ANY(%(cancellable)s)
                      AND r.decision IS NULL AND r.apply_started_at IS NULL
                    RETURNING r.*,
                        CASE WHEN old.lease_until > now() AND old.lease_owner <> %(holder)s
                             THEN old.lease_owner END AS previous_owner
                    """,
                    {
                        "run_id": decision.run_id,
                        "decision": Jsonb(decision.model_dump(mode="json")),
                        "holder": holder,
                        "ttl": ttl_s,
                        "cancellable": _CANCELLABLE,
                    },
                )
            ).fetchone()
        if row is not None:
            return RunRecord.from_row(row), row["previous_owner"]
        current = await self.get(decision.run_id)
        raise RunConflictError(current.run_id, _not_cancellable(current))

    async def record_gave_up(self, run_id: str, worker_id: str) -> None:
        """Count the last failed try of a run that was ended BLOCKED for it, and let go."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                UPDATE crew_runs SET failures = failures + 1, last_error = NULL,
                    not_before = NULL, lease_owner = NULL, lease_until = NULL,
                    dispatched_at = NULL
                WHERE run_id = %s AND lease_owner = %s
                """,
                (run_id, worker_id),
            )

    async def record_rollback_request(self, request: ApprovalDecision) -> RunRecord:
        """Record a human's request to roll back a DONE run, once (Forge's migration 0002
        added the column). A second request, or one for a run that is not DONE, is a
        conflict naming who asked first."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    """
                    UPDATE crew_runs SET rollback_request = %s
                    WHERE run_id = %s AND state = 'DONE' AND rollback_request IS NULL
                    RETURNING *
                    """,
                    (Jsonb(request.model_dump(mode="json")), request.run_id),
                )
            ).fetchone()
            if row is not None:
                return RunRecord.from_row(row)
            row = await (
                await conn.execute(
                    "SELECT state, rollback_request FROM crew_runs WHERE run_id = %s",
                    (request.run_id,),
                )
            ).fetchone()
        if row is None:
            raise RunNotFoundError(request.run_id)
        if row["rollback_request"]:
            first = ApprovalDecision.model_validate(row["rollback_request"])
            raise RunConflictError(
                request.run_id,
                f"run {request.run_id} was already rolled back on request of {first.actor} "
                f"via {first.channel.value} at {first.at.isoformat()}",
            )
        raise RunConflictError(
            request.run_id,
            f"run {request.run_id} is {row['state']}; only a DONE run can be rolled back",
        )

    async def clear_rollback_request(self, run_id: str) -> None:
        """Forget a rollback request whose state update never made it (so it can be asked
        again); a no-op once the run left DONE."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE crew_runs SET rollback_request = NULL WHERE run_id = %s AND state = 'DONE'",
                (run_id,),
            )

    async def record_failure(self, run_id: str, worker_id: str, error: str) -> float:
        """Count an unexpected error, back the run off exponentially (capped at 5 minutes) and
        let go of it; returns the back-off in seconds."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    """
                    UPDATE crew_runs SET failures = failures + 1, last_error = %s,
                        not_before = now() + make_interval(secs => least(300, 2 ^ failures)),
                        lease_owner = NULL, lease_until = NULL, dispatched_at = NULL
                    WHERE run_id = %s AND lease_owner = %s
                    RETURNING least(300, 2 ^ (failures - 1))::float AS backoff
                    """,
                    (error[:4000], run_id, worker_id),
                )
            ).fetchone()
        return float(row["backoff"]) if row else 0.0

    async def clear_failures(self, run_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                UPDATE crew_runs SET failures = 0, last_error = NULL, not_before = NULL
                WHERE run_id = %s AND failures > 0
                """,
                (run_id,),
            )

    async def record_progress(self, run_id: str, progress: StepProgress, worker_id: str) -> bool:
        """Keep the latest progress of the run's terraform step on its row, while
        `worker_id` holds the run (a worker that lost it writes nothing); False if refused."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                UPDATE crew_runs SET progress = %s, progress_at = %s
                WHERE run_id = %s AND lease_owner = %s
                """,
                (
                    Jsonb(progress.model_dump(mode="json")),
                    progress.updated_at,
                    run_id,
                    worker_id,
                ),
            )
            return cur.rowcount == 1

    async def mark_apply_started(self, run_id: str, at: datetime) -> bool:
        """True the first time only: an apply interrupted by a crash is never run again."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                UPDATE crew_runs SET apply_started_at = %s
                WHERE run_id = %s AND apply_started_at IS NULL
                """,
                (at, run_id),
            )
            return cur.rowcount == 1

    async def audit(self, run_id: str | None = None, limit: int = 1000) -> list[AuditRecord]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT * FROM crew_audit
                    WHERE (%(run_id)s::text IS NULL OR run_id = %(run_id)s)
                    ORDER BY at, run_id, seq
                    LIMIT %(limit)s
                    """,
                    {"run_id": run_id, "limit": limit},
                )
            ).fetchall()
        return [_audit_from_row(r) for r in rows]

    async def finished_before(self, cutoff: datetime, limit: int = 500) -> list[str]:
        """Finished runs whose intermediate checkpoints are due for pruning."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT run_id FROM crew_runs
                    WHERE state = ANY(%s) AND updated_at < %s
                      AND (checkpoints_pruned_at IS NULL OR checkpoints_pruned_at < updated_at)
                    ORDER BY updated_at LIMIT %s
                    """,
                    ([s.value for s in _TERMINAL], cutoff, limit),
                )
            ).fetchall()
        return [r["run_id"] for r in rows]

    async def mark_pruned(self, run_ids: list[str], at: datetime) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE crew_runs SET checkpoints_pruned_at = %s WHERE run_id = ANY(%s)",
                (at, run_ids),
            )


_TERMINAL = [
    ConductorState.DONE,
    ConductorState.BLOCKED,
    ConductorState.REJECTED,
    ConductorState.FAILED,
]


#: States a cancel may end (crew/lifecycle.py CANCELLABLE): everything before the apply.
_CANCELLABLE = [
    s.value
    for s in (
        ConductorState.PENDING,
        ConductorState.IN_PROGRESS,
        ConductorState.VALIDATING,
        ConductorState.READY_FOR_APPLY,
        ConductorState.WAIT_FOR_APPROVE,
    )
]


def _past(decision: str) -> str:
    return {
        "approve": "approved",
        "reject": "rejected",
        "rollback": "rolled back",
        "cancel": "cancelled",
    }.get(decision, decision)


def _not_cancellable(run: RunRecord) -> str:
    """Why `run` cannot be cancelled now (the 409's message)."""
    state = run.state
    first = run.decision
    if state in (ConductorState.APPLYING, ConductorState.ROLLBACK) or (
        run.apply_started_at is not None and not state.is_terminal
    ):
        return (
            f"run {run.run_id} is {state.value}: terraform is changing the cloud, and a run "
            "being applied cannot be stopped half-way; wait until it ends, then roll it back "
            "if needed"
        )
    if first is not None and (not state.is_terminal or state is ConductorState.REJECTED):
        then = (
            "; it is applied next: roll it back once it is DONE"
            if first.decision == "approve"
            else ""
        )
        return (
            f"run {run.run_id} was already {_past(first.decision.value)} by {first.actor} via "
            f"{first.channel.value} at {first.at.isoformat()}{then}"
        )
    hint = "; roll it back instead" if state is ConductorState.DONE else ""
    return f"run {run.run_id} already ended {state.value}; there is nothing to cancel{hint}"


def audit_fields(row: DictRow) -> dict[str, Any]:
    """A `crew_audit` row as AuditRecord's fields (memory/audit.py builds them unvalidated)."""
    return {
        "run_id": row["run_id"],
        "seq": row["seq"],
        "at": row["at"],
        "actor": row["actor"],
        "event": EventType(row["event"]),
        "from_state": ConductorState(row["from_state"]) if row["from_state"] else None,
        "to_state": ConductorState(row["to_state"]),
        "artifact_type": row["artifact_type"],
        "artifact": row["artifact"],
        "note": row["note"],
    }


def _audit_from_row(row: DictRow) -> AuditRecord:
    return AuditRecord(**audit_fields(row))


async def _insert_audit(cur: AsyncCursor[DictRow], record: AuditRecord) -> None:
    """One audit row and its OpsEvent in the outbox, in the caller's transaction (so the
    bus carries exactly the audit log: memory/events.py)."""
    await cur.execute(
        """
        INSERT INTO crew_audit (run_id, seq, at, actor, event, from_state, to_state,
                                artifact_type, artifact, note)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, seq) DO NOTHING
        """,
        (
            record.run_id,
            record.seq,
            record.at,
            record.actor,
            record.event.value,
            record.from_state.value if record.from_state else None,
            record.to_state.value,
            record.artifact_type,
            Jsonb(record.artifact) if record.artifact is not None else None,
            record.note,
        ),
    )
    if cur.rowcount == 1:
        await insert_events(cur, [event_from_audit(record)])


async def fence_lease(
    cur: AsyncCursor[DictRow], run_id: str, lease_owner: str | None
) -> DictRow | None:
    """Lock the run row for a checkpoint's transaction and refuse a worker that lost the lease.

    Returns the row (`last_seq`, `lease_owner`), or None for a thread that is not a crew run.
    """
    await cur.execute(
        "SELECT last_seq, lease_owner FROM crew_runs WHERE run_id = %s FOR UPDATE", (run_id,)
    )
    row = await cur.fetchone()
    if row is not None and lease_owner is not None and row["lease_owner"] != lease_owner:
        raise LeaseLostError(
            f"run {run_id} is now leased by {row['lease_owner']!r}, not {lease_owner!r}"
        )
    return row


async def write_projection(
    cur: AsyncCursor[DictRow], run_id: str, projection: Projection, lease_owner: str | None
) -> None:
    """Apply a checkpoint's projection inside the checkpoint's transaction.

    Rows already recorded (seq <= last_seq) are skipped, so re-projecting after a crash is a
    no-op. When `lease_owner` is given and another worker now holds the run, the whole
    transaction (checkpoint included) is refused: a stalled worker cannot overwrite a run
    that was taken over.
    """
    row = await fence_lease(cur, run_id, lease_owner)
    if row is None:
        return  # a thread that is not a crew run (e.g. a test graph): nothing to project
    last_seq: int = row["last_seq"]
    for record in projection.records_after(last_seq):
        await _insert_audit(cur, record)
    if projection.last_seq >= last_seq:
        await cur.execute(
            """
            UPDATE crew_runs SET state = %s, last_seq = %s, summary = %s, updated_at = now()
            WHERE run_id = %s
            """,
            (
                projection.state.value,
                projection.last_seq,
                Jsonb(json.loads(json.dumps(projection.summary, default=str))),
                run_id,
            ),
        )
        if lease_owner is None and row["lease_owner"] is None:
            # A state change made outside a worker (a human's rollback request written as a
            # graph update) that leaves the run needing one: hand it on with this commit.
            await dispatch_if_needed(cur, run_id, datetime.now(UTC))
