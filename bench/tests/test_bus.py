"""`bench.bus` reports a run-throughput figure only from runs that all reached the gate: an
incomplete one is a MISS row, no 2-vs-1 ratio is made from it, and the exit code says so."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import bench.bus
from bench.bus import Results, Row, throughput_rows


def figure(workers: int, seconds: float, at_gate: int, goals: int = 40) -> dict[str, Any]:
    states = {"WAIT_FOR_APPROVE": at_gate}
    if at_gate < goals:
        states["IN_PROGRESS"] = goals - at_gate
    return {
        "workers": workers,
        "goals": goals,
        "concurrency": 4,
        "seconds": seconds,
        "at_gate": at_gate,
        "complete": at_gate == goals,
        "states": states,
    }


def test_complete_runs_give_their_rates_and_the_ratio() -> None:
    rows, speedup = throughput_rows([figure(1, 400.0, 40), figure(2, 250.0, 40)])
    assert speedup == pytest.approx(1.6)
    assert [r.measured for r in rows] == ["400.0 s (6.0/min)", "250.0 s (9.6/min)", "1.60x"]
    assert "MISS" not in " ".join(r.note for r in rows)


def test_runs_left_short_of_the_gate_are_a_miss_and_no_ratio_is_made() -> None:
    # Two workers timed out with 31/40 at the gate: their 3600 s would give a ratio of 0.11x.
    rows, speedup = throughput_rows([figure(1, 400.0, 40), figure(2, 3600.0, 31)])
    assert speedup is None
    assert rows[0].measured == "400.0 s (6.0/min)"
    assert rows[1].measured == "MISS"
    assert "31/40 at the gate" in rows[1].note
    assert "IN_PROGRESS" in rows[1].note
    assert rows[2] == Row(
        "throughput ratio, 2 vs 1 worker", "MISS", "not computed: not every run reached the gate"
    )


def test_a_miss_makes_the_benchmark_exit_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`main` with the stack and the measurements replaced: only its verdict is under test."""

    @contextlib.contextmanager
    def provide(value: object) -> Iterator[object]:
        yield value

    async def short_runs(args: Any, pg: Any, data_dir: Any, results: Results) -> None:
        rows, speedup = throughput_rows([figure(1, 400.0, 40), figure(2, 3600.0, 31)])
        results.rows += rows
        results.complete = speedup is not None

    monkeypatch.setattr(bench.bus, "scratch_dir", lambda: provide(tmp_path))
    monkeypatch.setattr(bench.bus, "moto_server", lambda: provide(None))
    monkeypatch.setattr(bench.bus, "postgres", lambda _: provide(SimpleNamespace(label="pg")))
    monkeypatch.setattr(bench.bus, "_run", short_runs)
    assert bench.bus.main(["--goals", "40"]) == 1
    out = capsys.readouterr()
    assert "MISS" in out.out
    assert "not every run reached the gate" in out.err
