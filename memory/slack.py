"""The Slack message of each run, as an outbox: what was posted (channel, ts) and what is due.

A run gets a row when it reaches the gate; the notifier renders the run whenever the row's
`rendered_seq` is behind the run's `last_seq` (a transition happened since), and posts or
updates the message. Rows are leased like runs, so notifiers on several replicas never post a
run twice, and a failed post backs off (`next_attempt_at`) without holding anything up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import DictRow

from memory.db import Pool
from schemas.states import ConductorState

_WAITING = ConductorState.WAIT_FOR_APPROVE.value
_FAILED = ConductorState.FAILED.value


@dataclass(frozen=True)
class SlackMessage:
    run_id: str
    channel: str | None
    ts: str | None
    rendered_seq: int
    rendered_state: str | None
    attempts: int
    last_error: str | None
    posted_at: datetime | None
    paged_seq: int | None = None
    """The run's `last_seq` when its failure page was posted (None: never paged)."""
    page_ts: str | None = None


@dataclass(frozen=True)
class DueMessage:
    """A claimed row: the message as it stands and the run's sequence number to render."""

    message: SlackMessage
    last_seq: int


class SlackMessageStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def claim_due(
        self, owner: str, lease_s: float, limit: int = 20, *, progress_every_s: float = 10.0
    ) -> list[DueMessage]:
        """Add rows for runs that reached the gate, then lease the rows behind their run: a
        transition since the last render, or newer terraform progress once the message was
        posted and left alone for `progress_every_s` (progress alone updates it no faster)."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                f"""
                INSERT INTO crew_slack_messages (run_id)
                SELECT r.run_id FROM crew_runs r
                WHERE (r.state = '{_WAITING}'
                       OR (r.decision IS NOT NULL AND r.decision->>'decision' <> 'cancel'
                           AND r.updated_at > now() - interval '1 hour')
                       OR (r.state = '{_FAILED}' AND r.updated_at > now() - interval '1 day'))
                  AND NOT EXISTS (SELECT 1 FROM crew_slack_messages m WHERE m.run_id = r.run_id)
                ON CONFLICT (run_id) DO NOTHING
                """
            )
            rows = await (
                await conn.execute(
                    """
                    UPDATE crew_slack_messages m
                    SET lease_owner = %(owner)s,
                        lease_until = now() + make_interval(secs => %(lease)s)
                    FROM crew_runs r
                    WHERE r.run_id = m.run_id AND m.run_id IN (
                        SELECT m2.run_id FROM crew_slack_messages m2
                        JOIN crew_runs r2 ON r2.run_id = m2.run_id
                        WHERE (m2.rendered_seq < r2.last_seq
                               OR (m2.ts IS NOT NULL AND r2.progress_at IS NOT NULL
                                   AND r2.progress_at > coalesce(m2.progress_rendered_at,
                                                                 '-infinity')
                                   AND m2.updated_at
                                       <= now() - make_interval(secs => %(every)s)))
                          AND (m2.next_attempt_at IS NULL OR m2.next_attempt_at <= now())
                          AND (m2.lease_until IS NULL OR m2.lease_until < now())
                        ORDER BY r2.updated_at
                        LIMIT %(limit)s
                        FOR UPDATE OF m2 SKIP LOCKED
                    )
                    RETURNING m.*, r.last_seq
                    """,
                    {
                        "owner": owner,
                        "lease": lease_s,
                        "limit": limit,
                        "every": progress_every_s,
                    },
                )
            ).fetchall()
        return [DueMessage(_message(r), r["last_seq"]) for r in rows]

    async def mark_rendered(
        self,
        run_id: str,
        owner: str,
        *,
        channel: str,
        ts: str,
        seq: int,
        state: str,
        progress_at: datetime | None = None,
    ) -> None:
        """The message now shows the run as of `seq` and its progress as of `progress_at`."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                UPDATE crew_slack_messages
                SET channel = %s, ts = %s, rendered_seq = greatest(rendered_seq, %s),
                    rendered_state = %s, attempts = 0, last_error = NULL,
                    progress_rendered_at = greatest(progress_rendered_at, %s),
                    next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL,
                    posted_at = coalesce(posted_at, now()), updated_at = now()
                WHERE run_id = %s AND lease_owner = %s
                """,
                (channel, ts, seq, state, progress_at, run_id, owner),
            )

    async def mark_paged(self, run_id: str, owner: str, *, seq: int, ts: str) -> None:
        """The failure page for the run as of `seq` was posted (never post it twice)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                UPDATE crew_slack_messages SET paged_seq = %s, page_ts = %s, updated_at = now()
                WHERE run_id = %s AND lease_owner = %s
                """,
                (seq, ts, run_id, owner),
            )

    async def mark_failed(self, run_id: str, owner: str, error: str, backoff_s: float) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                UPDATE crew_slack_messages
                SET attempts = attempts + 1, last_error = %s,
                    next_attempt_at = now() + make_interval(secs => %s),
                    lease_owner = NULL, lease_until = NULL, updated_at = now()
                WHERE run_id = %s AND lease_owner = %s
                """,
                (error[:2000], backoff_s, run_id, owner),
            )

    async def get(self, run_id: str) -> SlackMessage | None:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute("SELECT * FROM crew_slack_messages WHERE run_id = %s", (run_id,))
            ).fetchone()
        return _message(row) if row else None


def _message(row: DictRow) -> SlackMessage:
    return SlackMessage(
        run_id=row["run_id"],
        channel=row["channel"],
        ts=row["ts"],
        rendered_seq=row["rendered_seq"],
        rendered_state=row["rendered_state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        posted_at=row["posted_at"],
        paged_seq=row.get("paged_seq"),
        page_ts=row.get("page_ts"),
    )
