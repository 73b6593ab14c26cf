"""Drift checks of stacks: recorded, the latest per stack, and accepted drift."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from memory.db import Pool
from schemas.drift import DriftReport


@dataclass(frozen=True)
class DriftCheck:
    report: DriftReport
    accepted_by: str | None
    accepted_at: datetime | None


class DriftStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record(self, report: DriftReport) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                INSERT INTO crew_drift_checks (stack_id, run_id, checked_at, drifted,
                                               fingerprint, report)
                VALUES (%s, %s, %s, %s, %s, %s)
                """,
                (
                    report.stack_id,
                    report.run_id,
                    report.checked_at,
                    report.drifted,
                    report.fingerprint,
                    Jsonb(report.model_dump(mode="json")),
                ),
            )

    async def latest(self, stack_id: str) -> DriftCheck | None:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    """
                    SELECT report, accepted_by, accepted_at FROM crew_drift_checks
                    WHERE stack_id = %s ORDER BY checked_at DESC, id DESC LIMIT 1
                    """,
                    (stack_id,),
                )
            ).fetchone()
        if row is None:
            return None
        return DriftCheck(
            DriftReport.model_validate(row["report"]), row["accepted_by"], row["accepted_at"]
        )

    async def accept(self, stack_id: str, fingerprint: str, actor: str, at: datetime) -> int:
        """Mark every unaccepted check of this drift (same fingerprint) accepted; how many."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                UPDATE crew_drift_checks SET accepted_by = %s, accepted_at = %s
                WHERE stack_id = %s AND fingerprint = %s AND drifted AND accepted_by IS NULL
                """,
                (actor, at, stack_id, fingerprint),
            )
            return cur.rowcount

    async def accepted(self, stack_id: str, fingerprint: str) -> bool:
        """Whether this exact drift was accepted before (a later check then does not alert)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    """
                    SELECT 1 FROM crew_drift_checks WHERE stack_id = %s AND fingerprint = %s
                    AND accepted_by IS NOT NULL LIMIT 1
                    """,
                    (stack_id, fingerprint),
                )
            ).fetchone()
        return row is not None
