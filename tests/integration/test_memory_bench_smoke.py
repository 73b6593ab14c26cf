"""`python -m bench.memory --json` runs end to end (MiniLM, BM25, the embedded PostgreSQL 18
with pgvector) and reports every figure; the recall floor itself is asserted in
tests/unit/test_embeddings.py, never a timing here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Left out of the default run (CI's budget): `pytest -m bench` runs it (about 15 s).
pytestmark = [pytest.mark.integration, pytest.mark.bench]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_memory_bench_reports_quality_cost_and_the_index() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--json", "--repeat", "1", "--fill", "3000"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5_000:]
    report = json.loads(done.stdout)
    assert report["set"] == {"docs": 41, "queries": 27}
    assert report["minilm"]["recall_at_k"] > report["bm25"]["recall_at_k"]
    pg = report["pgvector"]
    assert pg["rows"] == 3041
    assert pg["index_used"], pg["plan"]
    assert pg["quality"]["recall_at_k"] == pytest.approx(report["minilm"]["recall_at_k"], abs=0.05)
    assert set(report["cost"]) == {"single_p50_ms", "single_p95_ms", "batch_ms_per_text"}
