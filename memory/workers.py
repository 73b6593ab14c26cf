"""The worker registry (`crew_workers`): heartbeats in, dead workers out. All its SQL.

A heartbeat updates the process's row and writes its `heartbeat` OpsEvent to the outbox in one
transaction. Liveness is judged from these rows, not from the bus: a Redis or NATS outage
delays the heartbeat *events* (they wait in the outbox) but never makes a live worker look dead.
"""

from __future__ import annotations

from dataclasses import dataclass

from memory.db import Pool
from memory.events import insert_events
from schemas.events import EventType, OpsEvent
from schemas.heartbeat import Heartbeat

#: Missed beats after which a worker is declared dead.
MISSED_BEATS = 3


@dataclass(frozen=True)
class WorkerBeat:
    worker_id: str
    role: str
    age_s: float
    """Seconds since its last heartbeat."""
    heartbeat_s: float
    runs_in_flight: int
    dead: bool


async def beat(pool: Pool, heartbeat: Heartbeat, heartbeat_s: float) -> None:
    """Record one heartbeat (the row says alive again, even after being declared dead) and
    write its event."""
    event = OpsEvent(
        type=EventType.HEARTBEAT,
        at=heartbeat.at,
        payload_type=heartbeat.artifact_name,
        payload=heartbeat.model_dump(mode="json"),
    )
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            """
            INSERT INTO crew_workers (worker_id, role, host, pid, version, started_at,
                                      last_beat, heartbeat_s, runs_in_flight)
            VALUES (%s, %s, %s, %s, %s, %s, now(), %s, %s)
            ON CONFLICT (worker_id) DO UPDATE SET
                last_beat = now(), heartbeat_s = EXCLUDED.heartbeat_s,
                runs_in_flight = EXCLUDED.runs_in_flight, dead_at = NULL, stopped_at = NULL
            """,
            (
                heartbeat.worker_id,
                heartbeat.role,
                heartbeat.host,
                heartbeat.pid,
                heartbeat.version,
                heartbeat.started_at,
                heartbeat_s,
                heartbeat.runs_in_flight,
            ),
        )
        await insert_events(cur, [event])


async def mark_stopped(pool: Pool, worker_id: str) -> None:
    """A clean shutdown: the process is gone, but it was not a death (no alert)."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE crew_workers SET stopped_at = now() WHERE worker_id = %s", (worker_id,)
        )


async def declare_dead(pool: Pool) -> list[str]:
    """Mark workers silent for MISSED_BEATS of their own intervals as dead (once each);
    returns their ids."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                """
                UPDATE crew_workers SET dead_at = now()
                WHERE dead_at IS NULL AND stopped_at IS NULL
                  AND last_beat < now() - make_interval(secs => %s * heartbeat_s)
                RETURNING worker_id
                """,
                (MISSED_BEATS,),
            )
        ).fetchall()
    return [r["worker_id"] for r in rows]


async def recent_workers(pool: Pool, within_s: float = 3600) -> list[WorkerBeat]:
    """Workers not stopped that beat within `within_s` (dead ones included, for alerts)."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                """
                SELECT worker_id, role, heartbeat_s, runs_in_flight, dead_at IS NOT NULL AS dead,
                       extract(epoch FROM now() - last_beat)::float AS age_s
                FROM crew_workers
                WHERE stopped_at IS NULL
                  AND last_beat > now() - make_interval(secs => %s)
                ORDER BY worker_id
                """,
                (within_s,),
            )
        ).fetchall()
    return [
        WorkerBeat(
            worker_id=r["worker_id"],
            role=r["role"],
            age_s=max(0.0, r["age_s"]),
            heartbeat_s=r["heartbeat_s"],
            runs_in_flight=r["runs_in_flight"],
            dead=r["dead"],
        )
        for r in rows
    ]
