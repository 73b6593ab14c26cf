"""Stacks read from the runs table: the runs of every goal that reached a plan.

A stack is derived, not stored: its id is a function of the goal id and region
(tools/stack.py), so the runs of a stack are the runs of its goal id in its region.
"""

from __future__ import annotations

from memory.db import Pool
from memory.runs import RunRecord


class StackStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def planned_runs(self, limit: int = 2000) -> list[RunRecord]:
        """Runs that reached a plan (a stack exists only from there), newest first."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT * FROM crew_runs WHERE summary ? 'plan_id'
                    ORDER BY created_at DESC, run_id DESC LIMIT %s
                    """,
                    (limit,),
                )
            ).fetchall()
        return [RunRecord.from_row(r) for r in rows]

    async def runs_of_goal(self, goal_id: str, region: str) -> list[RunRecord]:
        """Every run of one stack that reached a plan, newest revision first."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT * FROM crew_runs
                    WHERE goal_id = %s AND goal->>'region' = %s AND summary ? 'plan_id'
                    ORDER BY revision DESC, created_at DESC
                    """,
                    (goal_id, region),
                )
            ).fetchall()
        return [RunRecord.from_row(r) for r in rows]
