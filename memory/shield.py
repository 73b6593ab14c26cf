"""Shield-Lite's tables: feed validators and failures, advisories read, matches per stack."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.types.json import Jsonb

from memory.db import Pool
from schemas.shield import Advisory, FeedFormat, OpenAdvisory, ShieldMatch


@dataclass(frozen=True)
class FeedState:
    """What the last polls of one feed left: validators for the next conditional GET, and the
    failures in a row (the back-off)."""

    feed: str
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    polled_at: datetime | None = None
    ok_at: datetime | None = None
    entries: int = 0
    format: str | None = None


#: pg_advisory_lock key of a poll ("shld" in ASCII): one poll at a time across processes.
POLL_LOCK_KEY = 0x73686C64


class ShieldStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def poll_lock(self, *, wait_s: float) -> AsyncIterator[bool]:
        """Hold the poll lock for the block; yields False when another process held it for
        all of `wait_s`. A transaction-level advisory lock on one pooled connection: however
        the block ends (a cancelled request included), returning the connection ends the
        transaction and frees the lock. Tries without blocking in Postgres, so a waiting
        poll holds no server-side wait."""
        async with self._pool.connection() as conn, conn.transaction():
            deadline = asyncio.get_running_loop().time() + wait_s
            while True:
                row = await (
                    await conn.execute(
                        "SELECT pg_try_advisory_xact_lock(%s) AS held", (POLL_LOCK_KEY,)
                    )
                ).fetchone()
                held = bool(row and row["held"])
                if held or asyncio.get_running_loop().time() >= deadline:
                    break
                await asyncio.sleep(0.25)
            yield held

    # -- feeds ----------------------------------------------------------------------------

    async def feed_states(self) -> dict[str, FeedState]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute("SELECT * FROM crew_shield_feeds")).fetchall()
        return {r["feed"]: FeedState(**r) for r in rows}

    async def feed_ok(
        self,
        feed: str,
        at: datetime,
        *,
        etag: str | None,
        last_modified: str | None,
        format: FeedFormat | None,
        entries: int | None,
    ) -> None:
        """A fetch that worked (a body or a 304): new validators, failures reset."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                INSERT INTO crew_shield_feeds (feed, etag, last_modified, format, entries,
                                               polled_at, ok_at, failures)
                VALUES (%(feed)s, %(etag)s, %(lm)s, %(format)s, COALESCE(%(entries)s, 0),
                        %(at)s, %(at)s, 0)
                ON CONFLICT (feed) DO UPDATE SET
                    etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified,
                    format = COALESCE(EXCLUDED.format, crew_shield_feeds.format),
                    entries = COALESCE(%(entries)s, crew_shield_feeds.entries),
                    polled_at = EXCLUDED.polled_at, ok_at = EXCLUDED.ok_at, failures = 0,
                    last_error = NULL, next_attempt_at = NULL
                """,
                {
                    "feed": feed,
                    "etag": etag,
                    "lm": last_modified,
                    "format": format.value if format else None,
                    "entries": entries,
                    "at": at,
                },
            )

    async def feed_failed(self, feed: str, at: datetime, error: str, wait: timedelta) -> int:
        """A fetch or parse that failed; returns the failures in a row now."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    """
                    INSERT INTO crew_shield_feeds (feed, polled_at, failures, last_error,
                                                   next_attempt_at)
                    VALUES (%(feed)s, %(at)s, 1, %(error)s, %(at)s::timestamptz + %(wait)s)
                    ON CONFLICT (feed) DO UPDATE SET
                        polled_at = EXCLUDED.polled_at,
                        failures = crew_shield_feeds.failures + 1,
                        last_error = EXCLUDED.last_error,
                        next_attempt_at = EXCLUDED.next_attempt_at
                    RETURNING failures
                    """,
                    {"feed": feed, "at": at, "error": error[:1000], "wait": wait},
                )
            ).fetchone()
        assert row is not None
        failures: int = row["failures"]
        return failures

    async def reschedule(self, feed: str, next_at: datetime) -> None:
        """Push a failing feed's next try to the back-off the caller computed."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE crew_shield_feeds SET next_attempt_at = %s WHERE feed = %s",
                (next_at, feed),
            )

    # -- advisories -----------------------------------------------------------------------

    async def save_advisories(self, advisories: list[Advisory], at: datetime) -> None:
        """Insert or refresh advisories (a later feed entry for the same id wins)."""
        if not advisories:
            return
        latest = {a.advisory_id: a for a in advisories}
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                """
                INSERT INTO crew_shield_advisories (advisory_id, feed, severity, advisory, seen_at)
                VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (advisory_id) DO UPDATE SET
                    feed = EXCLUDED.feed, severity = EXCLUDED.severity,
                    advisory = EXCLUDED.advisory
                """,
                [
                    (a.advisory_id, a.feed, a.severity.value, Jsonb(a.model_dump(mode="json")), at)
                    for a in latest.values()
                ],
            )

    async def advisories(self, limit: int = 20_000) -> list[Advisory]:
        """Known advisories, newest first (every poll matches them against every stack, so
        a stack deployed today hears of last week's advisory)."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT advisory FROM crew_shield_advisories ORDER BY seen_at DESC, "
                    "advisory_id LIMIT %s",
                    (limit,),
                )
            ).fetchall()
        return [Advisory.model_validate(r["advisory"]) for r in rows]

    # -- matches --------------------------------------------------------------------------

    async def record_match(self, match: ShieldMatch) -> bool:
        """Record a match once per (stack, advisory); False when it was known (a resolved one
        found again is open again, and not new)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                INSERT INTO crew_shield_matches (stack_id, advisory_id, run_id, severity,
                                                 first_seen, match)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (stack_id, advisory_id) DO UPDATE SET resolved_at = NULL
                WHERE crew_shield_matches.resolved_at IS NOT NULL
                RETURNING (xmax = 0) AS inserted
                """,
                (
                    match.stack_id,
                    match.advisory.advisory_id,
                    match.run_id,
                    match.advisory.severity.value,
                    match.first_seen,
                    Jsonb(match.model_dump(mode="json")),
                ),
            )
            row = await cur.fetchone()
            return bool(row and row["inserted"])

    async def resolve_missing(self, stack_id: str, current: list[str], at: datetime) -> int:
        """Mark the stack's open matches a poll no longer finds resolved; how many."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                UPDATE crew_shield_matches SET resolved_at = %s
                WHERE stack_id = %s AND resolved_at IS NULL AND NOT (advisory_id = ANY(%s))
                """,
                (at, stack_id, current),
            )
            return cur.rowcount

    async def matches(self, stack_id: str | None = None, limit: int = 1000) -> list[OpenAdvisory]:
        """Open matches (of one stack, or all), newest first."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT match, slack_ts, slack_error FROM crew_shield_matches
                    WHERE (%(stack)s::text IS NULL OR stack_id = %(stack)s)
                      AND resolved_at IS NULL
                    ORDER BY first_seen DESC, stack_id, advisory_id LIMIT %(limit)s
                    """,
                    {"stack": stack_id, "limit": limit},
                )
            ).fetchall()
        return [
            OpenAdvisory(
                match=ShieldMatch.model_validate(r["match"]),
                slack_posted=r["slack_ts"] is not None,
                slack_error=r["slack_error"],
            )
            for r in rows
        ]

    async def get_match(self, stack_id: str, advisory_id: str) -> ShieldMatch | None:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT match FROM crew_shield_matches "
                    "WHERE stack_id = %s AND advisory_id = %s",
                    (stack_id, advisory_id),
                )
            ).fetchone()
        return ShieldMatch.model_validate(row["match"]) if row else None

    async def unposted(self, now: datetime, limit: int = 50) -> list[ShieldMatch]:
        """Matches whose Slack message is still to go out (and not backing off)."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """
                    SELECT match FROM crew_shield_matches
                    WHERE slack_ts IS NULL AND resolved_at IS NULL
                      AND (slack_next_at IS NULL OR slack_next_at <= %s)
                    ORDER BY first_seen LIMIT %s
                    """,
                    (now, limit),
                )
            ).fetchall()
        return [ShieldMatch.model_validate(r["match"]) for r in rows]

    async def mark_posted(self, stack_id: str, advisory_id: str, channel: str, ts: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                UPDATE crew_shield_matches SET slack_channel = %s, slack_ts = %s,
                    slack_error = NULL, slack_next_at = NULL
                WHERE stack_id = %s AND advisory_id = %s
                """,
                (channel, ts, stack_id, advisory_id),
            )

    async def mark_post_failed(
        self, stack_id: str, advisory_id: str, error: str, now: datetime, *, retryable: bool
    ) -> None:
        """Keep the error; the next try waits 1, 2, 4 ... minutes (an hour at most, and an
        hour for an error retrying cannot fix, such as an unknown channel)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                UPDATE crew_shield_matches SET slack_attempts = slack_attempts + 1,
                    slack_error = %(error)s,
                    slack_next_at = %(now)s::timestamptz + make_interval(secs => CASE
                        WHEN %(retryable)s THEN least(3600, 60 * power(2, slack_attempts))
                        ELSE 3600 END)
                WHERE stack_id = %(stack)s AND advisory_id = %(advisory)s
                """,
                {
                    "error": error[:1000],
                    "now": now,
                    "retryable": retryable,
                    "stack": stack_id,
                    "advisory": advisory_id,
                },
            )

    async def open_by_severity(self) -> dict[tuple[str, str], int]:
        """Open matches by (stack, severity): the per-stack advisories gauge."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT stack_id, severity, count(*) AS n FROM crew_shield_matches "
                    "WHERE resolved_at IS NULL GROUP BY stack_id, severity"
                )
            ).fetchall()
        return {(r["stack_id"], r["severity"]): int(r["n"]) for r in rows}
