"""Atlas's memory hook: past PlanSpecs with how their runs ended, and runbook snippets.

`PlanMemory` is the small interface the design node depends on. Two implementations:
`PostgresPlanMemory` reads what the audit log already holds (every PlanSpec a run produced,
`crew_audit` rows with artifact_type 'PlanSpec') joined with the run's current state, filtered
to the same cloud, region and workload kind, newest first: what `CREW_MEMORY=audit` (and a
Postgres without pgvector) uses. `memory.vector_memory.VectorPlanMemory` finds them by meaning
(pgvector), and also recalls runbook snippets (`RunbookMemory`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import psycopg
from pydantic import ValidationError

from memory.db import Pool
from schemas.errors import DatabaseError
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec
from schemas.states import ConductorState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PastPlan:
    """A PlanSpec from an earlier run and where that run ended (or is now)."""

    run_id: str
    plan: PlanSpec
    outcome: ConductorState
    at: datetime
    result: str | None = None
    """How it ended, in words: 'applied', 'rolled back', 'blocked by Sentinel', ... (see
    `describe_outcome`); None when not known."""
    reason: str | None = None
    """Why a run did not end applied: the run's error (failed rules, apply error, ...)."""

    @property
    def ref(self) -> str:
        """The id recorded in a new plan's provenance.retrieved."""
        return f"{self.run_id}/{self.plan.plan_id}"


@dataclass(frozen=True)
class RunbookSnippet:
    """One chunk of a Markdown runbook (CREW_RUNBOOKS_DIR), recalled for a goal."""

    path: str
    """Relative to the runbooks folder."""
    anchor: str
    """The chunk's heading as a slug, unique within the file."""
    heading: str
    """The chunk's heading path, e.g. 'Postgres failover > Promote the replica'."""
    text: str

    @property
    def ref(self) -> str:
        """The id recorded in a new plan's provenance.retrieved."""
        return f"runbook:{self.path}#{self.anchor}"


@dataclass(frozen=True)
class PastGoal:
    """An earlier run that ended without a PlanSpec (blocked at design): the goal as it was
    remembered and why no design could meet it, so that a planner facing a similar goal
    knows which constraints clashed before."""

    run_id: str
    text: str
    """The goal as embedded (title, description, workload hints) and its outcome line."""
    outcome: ConductorState
    at: datetime
    result: str | None = None
    reason: str | None = None

    @property
    def ref(self) -> str:
        """The id recorded in a new plan's provenance.retrieved (the run: it has no plan)."""
        return self.run_id


Recalled = PastPlan | RunbookSnippet | PastGoal
"""What a planner is given as context; each has the `ref` provenance.retrieved cites."""


class PlanMemory(Protocol):
    async def recall(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 3
    ) -> list[PastPlan]:
        """Past plans relevant to `goal`, most relevant first; never the run `exclude_run`."""
        ...


@runtime_checkable
class RunbookMemory(Protocol):
    """A memory that also holds runbooks (the vector memory does; the audit log does not)."""

    async def recall_runbooks(self, goal: GoalStatement, *, limit: int = 3) -> list[RunbookSnippet]:
        """Runbook snippets relevant to `goal`, most relevant first."""
        ...


@runtime_checkable
class GoalMemory(Protocol):
    """A memory that also holds goals that never got a plan (the vector memory does)."""

    async def recall_goals(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 2
    ) -> list[PastGoal]:
        """Past goals without a plan relevant to `goal`, most relevant first."""
        ...


def describe_outcome(state: ConductorState, event: str | None, actor: str | None) -> str:
    """How a run ended, in the words a planner (and a person) reads: from its state and the
    audit event that put it there (a DONE run was applied, or rolled back and restored)."""
    if state is ConductorState.DONE:
        return "rolled back" if event == "rollback.done" else "applied"
    if state is ConductorState.BLOCKED:
        return {
            "design.blocked": "blocked at design",
            "build.failed": "blocked: terraform plan failed",
            "validate.result": "blocked by Sentinel",
        }.get(event or "", "blocked")
    if state is ConductorState.REJECTED:
        return "expired at the gate" if actor == "conductor" else "rejected at the gate"
    if state is ConductorState.FAILED:
        return "rollback failed"
    return f"in progress ({state.value})"


class NoPlanMemory:
    """Remembers nothing: `atlas plan` on its own, and unit tests."""

    async def recall(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 3
    ) -> list[PastPlan]:
        return []


_RECALL = """
    SELECT a.run_id, a.artifact, a.at, r.state, r.summary->>'error' AS error,
           last.event AS last_event, last.actor AS last_actor
    FROM crew_audit a
    JOIN crew_runs r ON r.run_id = a.run_id
    LEFT JOIN crew_audit last ON last.run_id = r.run_id AND last.seq = r.last_seq
    WHERE a.artifact_type = 'PlanSpec'
      AND a.artifact->>'cloud' = %(cloud)s
      AND a.artifact->>'region' = %(region)s
      AND (r.goal->'workload'->>'kind') IS NOT DISTINCT FROM %(kind)s
      AND a.run_id <> %(exclude)s
    ORDER BY a.at DESC, a.run_id, a.seq DESC
    LIMIT %(scan)s
"""


class PostgresPlanMemory:
    """Past PlanSpecs from the audit log (same cloud, region and workload kind)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def recall(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 3
    ) -> list[PastPlan]:
        kind = goal.workload.kind.value if goal.workload and goal.workload.kind else None
        params = {
            "cloud": goal.cloud,
            "region": goal.region,
            "kind": kind,
            "exclude": exclude_run or "",
            "scan": limit * 4,  # a run may hold several revisions; one per run is kept
        }
        try:
            async with self._pool.connection() as conn:
                rows = await (await conn.execute(_RECALL, params)).fetchall()
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot read past plans: {exc}") from exc
        found: list[PastPlan] = []
        for row in rows:
            if any(p.run_id == row["run_id"] for p in found):
                continue
            try:
                plan = PlanSpec.model_validate(row["artifact"])
            except ValidationError:
                # An older contract version: skip it rather than fail a new design.
                logger.warning("skipping an unreadable past PlanSpec of run %s", row["run_id"])
                continue
            state = ConductorState(row["state"])
            found.append(
                PastPlan(
                    row["run_id"],
                    plan,
                    state,
                    row["at"],
                    result=describe_outcome(state, row["last_event"], row["last_actor"]),
                    reason=row["error"],
                )
            )
            if len(found) == limit:
                break
        return found
