"""A worker is declared dead after 3 missed heartbeats (3 x its own CREW_HEARTBEAT_S without a
beat) and not one moment sooner, once; its leases are then taken away and its runs handed to
the others (`run.ready`). The rule is SQL against the database clock (memory/workers.py), so
this runs on the real Postgres with the last beats set back in time, not on a fake clock.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from crew import __version__
from crew.conductor import Conductor
from crew.container import Services, open_services
from crew.settings import Settings
from memory import workers
from schemas.goal import GoalStatement
from schemas.heartbeat import Heartbeat
from tests.conftest import example_goal

pytestmark = pytest.mark.integration


@pytest.fixture
async def services(
    database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Services]:
    async with open_services(make_settings(database_url=database_url), role="test") as svc:
        yield svc


async def beat(services: Services, worker_id: str, heartbeat_s: float) -> None:
    now = datetime.now(UTC)
    heartbeat = Heartbeat(
        worker_id=worker_id,
        role="worker",
        host="test",
        pid=os.getpid(),
        started_at=now,
        at=now,
        version=__version__,
    )
    await workers.beat(services.pool, heartbeat, heartbeat_s)


async def silent_for(services: Services, worker_id: str, beats: float) -> None:
    """Set the worker's last beat `beats` of its own intervals back (database clock)."""
    async with services.pool.connection() as conn:
        await conn.execute(
            """
            UPDATE crew_workers SET last_beat = now() - make_interval(secs => %s * heartbeat_s)
            WHERE worker_id = %s
            """,
            (beats, worker_id),
        )


async def lease(services: Services, worker_id: str, goal_id: str) -> str:
    goal = GoalStatement.model_validate(example_goal(goal_id=goal_id))
    record, _ = await services.runs.create(goal, run_id=goal_id, at=datetime.now(UTC))
    # a lease far longer than the beats: only the heartbeat path can take the run back
    assert await services.runs.claim(record.run_id, worker_id, 3600) is not None
    return record.run_id


async def lease_owner(services: Services, run_id: str) -> str | None:
    return (await services.runs.get(run_id)).lease_owner


async def run_ready_events(services: Services, run_id: str) -> int:
    async with services.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) AS n FROM crew_events WHERE type = 'run.ready' AND run_id = %s",
                (run_id,),
            )
        ).fetchone()
    assert row is not None
    return int(row["n"])


async def test_dead_after_three_missed_beats_and_not_sooner(services: Services) -> None:
    assert workers.MISSED_BEATS == 3
    # Intervals of 60 s: 0.1 beat either side of the line is 6 s, far more than this test takes.
    for worker_id in ("w-nearly", "w-past", "w-slow", "w-stopped"):
        await beat(services, worker_id, 60)
    await beat(services, "w-fast", 2)  # a worker's own interval counts, not this process's
    await silent_for(services, "w-nearly", 2.9)
    await silent_for(services, "w-past", 3.1)
    await silent_for(services, "w-fast", 3.5)  # 7 s: dead at 2 s a beat ...
    await beat(services, "w-slow", 600)
    await silent_for(services, "w-slow", 0.9)  # ... 540 s: alive at 600 s a beat
    await workers.mark_stopped(services.pool, "w-stopped")  # a clean stop is no death
    await silent_for(services, "w-stopped", 100)

    assert sorted(await workers.declare_dead(services.pool)) == ["w-fast", "w-past"]
    assert await workers.declare_dead(services.pool) == []  # declared once

    await silent_for(services, "w-nearly", 3.1)
    assert await workers.declare_dead(services.pool) == ["w-nearly"]

    # A beat from a worker declared dead (it was only stalled) makes it alive again.
    await beat(services, "w-past", 60)
    beats = {b.worker_id: b for b in await workers.recent_workers(services.pool)}
    assert not beats["w-past"].dead
    assert beats["w-fast"].dead
    assert beats["w-nearly"].dead
    assert not beats["w-slow"].dead
    assert "w-stopped" not in beats


async def test_the_sweep_hands_a_dead_workers_runs_to_the_others(services: Services) -> None:
    for worker_id in ("w-doomed", "w-alive"):
        await beat(services, worker_id, 60)
    doomed_run = await lease(services, "w-doomed", "live-doomed")
    kept_run = await lease(services, "w-alive", "live-kept")
    conductor = Conductor(services, role="serve")

    await silent_for(services, "w-doomed", 2.9)
    report = await conductor.sweep()
    assert (report.dead, report.reassigned) == ([], [])
    assert await lease_owner(services, doomed_run) == "w-doomed"
    assert await run_ready_events(services, doomed_run) == 1  # the one from its creation

    await silent_for(services, "w-doomed", 3.1)
    report = await conductor.sweep()
    assert report.dead == ["w-doomed"]
    assert report.reassigned == [doomed_run]
    assert await lease_owner(services, doomed_run) is None
    assert await run_ready_events(services, doomed_run) == 2  # back on the run queue
    assert await lease_owner(services, kept_run) == "w-alive"
    assert await run_ready_events(services, kept_run) == 1

    # Released once: the next sweep finds nobody newly dead and nothing to hand on.
    report = await conductor.sweep()
    assert (report.dead, report.reassigned) == ([], [])
    assert await run_ready_events(services, doomed_run) == 2
