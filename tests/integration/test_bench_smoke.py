"""`python -m bench.conductor --quick` runs end to end and prints every row of its table.

A smoke check of the benchmark itself (real embedded Postgres, terraform, moto): it asserts
the exit code and the table's rows, never a timing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: Left out of the default run (CI's 15-minute budget): `pytest -m bench` runs it.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.bench]

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Rows of the table in --quick mode (2 concurrent runs), in order.
EXPECTED_ROWS = [
    "POST /v1/goals p50 (worker off)",
    "POST /v1/goals p99 (worker off)",
    "approve -> apply start p50, 1 waiting",
    "approve -> apply start p95, 1 waiting",
    "approve -> apply start p50, 2 waiting",
    "approve -> apply start p95, 2 waiting",
    "runs at the gate, 1 run",
    "runs at the gate, 2 concurrent",
    "wall time ratio 2 vs 1 run",
    "checkpoint aput p50, stock saver",
    "checkpoint aput p50, auditing saver",
    "checkpoint aput ratio auditing/stock",
    "checkpoint time share of run wall time",
]
WITH_TARGET = {
    "POST /v1/goals p99 (worker off)",
    "approve -> apply start p95, 1 waiting",
    "approve -> apply start p95, 2 waiting",
    "runs at the gate, 2 concurrent",
}


def test_quick_bench_prints_the_table(terraform_bin: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.conductor", "--quick", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-10_000:]}"
    assert done.returncode == 0, report

    lines = done.stdout.splitlines()
    rows = [line for line in lines if any(line.startswith(r) for r in EXPECTED_ROWS)]
    assert [next(r for r in EXPECTED_ROWS if line.startswith(r)) for line in rows] == (
        EXPECTED_ROWS
    ), report
    for line in rows:
        label = next(r for r in EXPECTED_ROWS if line.startswith(r))
        if label in WITH_TARGET:
            assert re.search(r"\s(PASS|MISS)$", line), line
        assert "n/a" not in line, line
        assert "nan" not in line, line
    assert "embedded PostgreSQL 18" in done.stdout, report

    written = re.search(r"^wrote (bench/results/\S+\.json)$", done.stdout, re.MULTILINE)
    assert written, report
    path = REPO_ROOT / written.group(1)
    try:
        results = json.loads(path.read_text())
        assert [row["label"] for row in results["rows"]] == EXPECTED_ROWS
        assert results["figures"]["to_gate"]["concurrent_reached"] == 2
    finally:
        path.unlink(missing_ok=True)
