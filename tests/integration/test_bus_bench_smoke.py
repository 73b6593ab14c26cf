"""`python -m bench.bus` runs end to end and prints every row of its table (the event rates
only: the run-throughput part is the same product path as tests/integration/test_scale_out.py).
A smoke check of the benchmark itself; it asserts rows, never a timing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration._bus import require

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_bus_bench_prints_the_event_rates(admin_url: str) -> None:
    require("redis")
    require("nats")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env["CREW_DATABASE_URL"] = admin_url  # scratch databases on the shared server
    done = subprocess.run(
        [sys.executable, "-m", "bench.bus", "--events", "200", "--goals", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [line.split("  ")[0] for line in done.stdout.splitlines()]
    for row in (
        "postgres: publish + consume + ack",
        "redis: publish + consume + ack",
        "nats: publish + consume + ack",
        "outbox -> relay -> redis",
        "outbox -> relay -> nats",
    ):
        assert row in rows, done.stdout
    assert "events/s" in done.stdout
