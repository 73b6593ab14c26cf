"""Atlas's memory hook: past PlanSpecs with how their runs ended, as retrieved context.

`PlanMemory` is the small interface the design node depends on. `PostgresPlanMemory` reads
what the audit log already holds (every PlanSpec a run produced, `crew_audit` rows with
artifact_type 'PlanSpec') joined with the run's current state, filtered to the same cloud,
region and workload kind, newest first. The pgvector store of the memory issue will be a
second implementation of the same interface (similar goals by meaning, runbooks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import psycopg
from pydantic import ValidationError

from crew.errors import DatabaseError
from memory.db import Pool
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

    @property
    def ref(self) -> str:
        """The id recorded in a new plan's provenance.retrieved."""
        return f"{self.run_id}/{self.plan.plan_id}"


class PlanMemory(Protocol):
    async def recall(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 3
    ) -> list[PastPlan]:
        """Past plans relevant to `goal`, most relevant first; never the run `exclude_run`."""
        ...


class NoPlanMemory:
    """Remembers nothing: `atlas plan` on its own, and unit tests."""

    async def recall(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 3
    ) -> list[PastPlan]:
        return []


_RECALL = """
    SELECT a.run_id, a.artifact, a.at, r.state
    FROM crew_audit a
    JOIN crew_runs r ON r.run_id = a.run_id
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
            found.append(PastPlan(row["run_id"], plan, ConductorState(row["state"]), row["at"]))
            if len(found) == limit:
                break
        return found
