"""Scale-out: one API (`crew serve --no-worker`) and two `crew worker` processes on one
Postgres and one Redis share the runs through the bus; one worker is killed with SIGKILL in
the middle and the other finishes its runs, each exactly once.

The issue asks for 40 goals. Terraform really runs (moto is the cloud), so CI runs 4 to stay
within its time budget; set `CREW_IT_SCALE_GOALS` for more, e.g. the issue's 40 (expect tens of
minutes on 2 CPUs; the waits below grow with the count):

    CREW_IT_SCALE_GOALS=40 .venv/bin/pytest tests/integration/test_scale_out.py

`python -m bench.bus` runs 40 goals with 1 and 2 workers to compare their throughput.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, free_port
from tests.integration._bus import REDIS_URL, cleanup_redis, require
from tests.integration._fleet import (
    CrewProcess,
    crew_env,
    kill_orphans,
    query,
    wait_ready,
    wait_rows,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Goals submitted: CREW_IT_SCALE_GOALS, default 4 (CI's time budget; the issue says 40).
GOALS = int(os.environ.get("CREW_IT_SCALE_GOALS", "4"))
if GOALS < 2:
    raise ValueError(f"CREW_IT_SCALE_GOALS={GOALS}: two workers need at least 2 goals to share")
#: Hang guards for the waits that grow with the goal count (not timing checks).
RUNS_LIMIT_S = max(600.0, 60.0 * GOALS)
ACTIVE = ("PENDING", "IN_PROGRESS", "VALIDATING", "READY_FOR_APPLY", "APPLYING")


class Fleet:
    def __init__(self, tmp_path: Path, database_url: str, aws_env: dict[str, str]) -> None:
        self.prefix = f"t{secrets.token_hex(4)}"
        self.database_url = database_url
        self.data_dir = tmp_path / "data"  # shared: one machine here, S3 state for real fleets
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = crew_env(
            aws_env,
            database_url=database_url,
            bus_url=REDIS_URL,
            bus_prefix=self.prefix,
            data_dir=str(self.data_dir),
            port=str(port),
            heartbeat_s="1",
            # Far longer than 3 heartbeats: a take-over must come from the heartbeat path.
            lease_ttl_s="120",
            poll_interval_s="0.5",
            worker_concurrency="2",
            log_level="INFO",
        )
        self.api = CrewProcess("api", ["serve", "--no-worker"], env, tmp_path / "api.log")
        self.workers = [
            CrewProcess(f"worker-{i}", ["worker"], env, tmp_path / f"worker-{i}.log")
            for i in (1, 2)
        ]

    def all(self) -> list[CrewProcess]:
        return [self.api, *self.workers]

    def worker_id(self, proc: CrewProcess) -> str:
        rows = query(
            self.database_url, "SELECT worker_id FROM crew_workers WHERE pid = %s", proc.pid
        )
        assert rows, f"{proc.name} has not beaten yet"
        return str(rows[0][0])


@pytest.fixture
def fleet(
    tmp_path: Path, database_url: str, aws_env: dict[str, str], terraform_bin: Path
) -> Iterator[Fleet]:
    require("redis")
    fleet = Fleet(tmp_path, database_url, aws_env)
    try:
        yield fleet
    except BaseException:
        for proc in fleet.all():
            print(f"----- {proc.name} ({proc.log}) -----\n{proc.output()[-15_000:]}")
        raise
    finally:
        for proc in fleet.all():
            proc.terminate()
        kill_orphans(fleet.data_dir)
        import asyncio

        asyncio.run(cleanup_redis(REDIS_URL, fleet.prefix))


def _goals() -> list[dict[str, Any]]:
    base = json.loads((EXAMPLES / "goal-object-storage.json").read_text())
    tag = secrets.token_hex(4)
    return [{**base, "goal_id": f"fleet-{tag}-{i}", "title": f"fleet {i}"} for i in range(GOALS)]


def _states(fleet: Fleet) -> dict[str, str]:
    return dict(query(fleet.database_url, "SELECT run_id, state FROM crew_runs"))  # type: ignore[arg-type]


def test_two_workers_share_the_runs_and_take_over_from_a_dead_one(fleet: Fleet) -> None:
    fleet.api.start()
    wait_ready(fleet.api, fleet.url)
    for worker in fleet.workers:
        worker.start()
    wait_rows(
        fleet.database_url,
        "SELECT worker_id FROM crew_workers WHERE role = 'worker' AND dead_at IS NULL",
        lambda rows: len(rows) == 2,
        "two workers beating",
    )
    doomed, survivor = fleet.workers
    doomed_id, survivor_id = fleet.worker_id(doomed), fleet.worker_id(survivor)

    with httpx.Client(base_url=fleet.url, timeout=30) as http:
        run_ids = []
        for goal in _goals():
            response = http.post("/v1/goals", json=goal)
            assert response.status_code == 202, response.text
            run_ids.append(response.json()["run_id"])

        # Mid-way: the doomed worker is driving runs (it took them from the bus, and has
        # checkpointed at least one step of one it still holds) ...
        held = wait_rows(
            fleet.database_url,
            "SELECT DISTINCT r.run_id FROM crew_runs r JOIN checkpoints c "
            "ON c.thread_id = r.run_id "
            f"WHERE r.lease_owner = '{doomed_id}' AND r.state IN {ACTIVE!r} "
            f"AND c.metadata->>'crew_lease_owner' = '{doomed_id}'",
            bool,
            "the doomed worker to hold a run in flight that it has checkpointed",
        )
        taken_over = {row[0] for row in held}
        doomed.kill9()

        # ... it misses 3 heartbeats, is declared dead, and its runs go back on the queue.
        wait_rows(
            fleet.database_url,
            f"SELECT dead_at FROM crew_workers WHERE worker_id = '{doomed_id}'",
            lambda rows: rows and rows[0][0] is not None,
            "the killed worker to be declared dead",
        )
        wait_rows(
            fleet.database_url,
            "SELECT state FROM crew_runs",
            lambda rows: len(rows) == GOALS and {r[0] for r in rows} == {"WAIT_FOR_APPROVE"},
            "every run at the gate",
            limit_s=RUNS_LIMIT_S,
        )
        for run_id in run_ids:
            response = http.post(f"/v1/runs/{run_id}/approve", json={"reason": "scale-out"})
            assert response.status_code == 202, response.text
        wait_rows(
            fleet.database_url,
            "SELECT state FROM crew_runs",
            lambda rows: {r[0] for r in rows} == {"DONE"},
            "every run applied",
            limit_s=RUNS_LIMIT_S,
        )
        details = [http.get(f"/v1/runs/{run_id}").json() for run_id in run_ids]

    assert survivor.running, "the surviving worker died"
    for detail in details:
        events = Counter(row["event"] for row in detail["audit"])
        assert [row["seq"] for row in detail["audit"]] == list(range(len(detail["audit"])))
        assert events["run.created"] == events["apply.done"] == 1, events
        assert max(events.values()) == 1, f"{detail['run_id']}: an event twice: {events}"
        assert detail["artifacts"]["apply_result"]["ok"] is True

    # The runs the dead worker held were finished by the survivor: the last checkpoint
    # transaction of each was written under the survivor's lease.
    for run_id in taken_over:
        (owner,) = query(
            fleet.database_url,
            "SELECT metadata->>'crew_lease_owner' FROM checkpoints WHERE thread_id = %s "
            "ORDER BY checkpoint_id DESC LIMIT 1",
            run_id,
        )[0]
        assert owner == survivor_id, (run_id, owner)

    # Both workers drove runs, and every run was handed out through the bus.
    owners = {
        row[0]
        for row in query(
            fleet.database_url,
            "SELECT DISTINCT metadata->>'crew_lease_owner' FROM checkpoints",
        )
    }
    assert {doomed_id, survivor_id} <= owners, owners
    readies = query(
        fleet.database_url, "SELECT count(*) FROM crew_events WHERE type = 'run.ready'"
    )[0][0]
    assert readies >= 2 * GOALS  # created + approved, at least
