"""Real `crew` processes for the bus tests: an API (`crew serve --no-worker`) and workers
(`crew worker`) as subprocesses on one Postgres and one bus, killed and stopped like in
production (SIGKILL, SIGTERM), with their output kept for a failing test; or `crew serve` in
this event loop; and helpers to read runs and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import uvicorn

from api.app import create_app
from crew.settings import Settings
from tests.conftest import free_port

CREW = Path(sys.executable).parent / "crew"

#: Safety nets against hangs, not timing checks (the machine is small and shared).
START_LIMIT_S = 120.0


class CrewProcess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(CREW), *self.argv],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs; its leases stay until the others notice."""
        assert self.proc is not None
        assert self.running
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> None:
        if self.proc is None or not self.running:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def crew_env(base: dict[str, str], **crew: str) -> dict[str, str]:
    """This environment without CREW_* (the developer's own settings), plus `base` and `crew`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env.update(base)
    env.update({f"CREW_{k.upper()}": v for k, v in crew.items()})
    return env


def wait_ready(api: CrewProcess, url: str) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    with httpx.Client(base_url=url, timeout=10) as http:
        while time.monotonic() < deadline:
            if not api.running:
                pytest.fail(f"{api.name} exited while starting:\n{api.output()[-5000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get("/readyz").status_code == 200:
                    return
            time.sleep(0.2)
    pytest.fail(f"{api.name} was not ready within {START_LIMIT_S:.0f}s")


def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def wait_rows(database_url: str, sql: str, done: Any, what: str, limit_s: float = 300) -> Any:
    deadline = time.monotonic() + limit_s
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        rows = query(database_url, sql)
        if done(rows):
            return rows
        time.sleep(0.25)
    pytest.fail(f"gave up waiting for {what}; last rows: {rows}"[:4000])


def kill_orphans(data_dir: Path) -> None:
    """terraform and provider processes a SIGKILLed worker left behind in `data_dir`."""
    for proc in psutil.process_iter(["pid", "cwd"]):
        with contextlib.suppress(psutil.Error):
            if (proc.info.get("cwd") or "").startswith(str(data_dir)):
                proc.kill()


@contextlib.asynccontextmanager
async def serve_in_process(
    settings: Settings, *, run_worker: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """`crew serve` (API + worker; API only without `run_worker`) with uvicorn in this event
    loop; a client once /healthz answers; always shut down."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, run_worker=run_worker),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + START_LIMIT_S
            while True:
                if task.done():
                    pytest.fail(f"uvicorn stopped during start-up: {task.exception()!r}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail("the API did not start")
                await asyncio.sleep(0.2)
            yield client
    finally:
        server.should_exit = True
        await task


async def run_states(api: httpx.AsyncClient, run_ids: list[str]) -> dict[str, str]:
    response = await api.get("/v1/runs", params={"limit": 500})
    response.raise_for_status()
    return {r["run_id"]: r["state"] for r in response.json() if r["run_id"] in run_ids}


async def wait_states(
    api: httpx.AsyncClient, want: dict[str, str], *, limit_s: float = 400
) -> dict[str, str]:
    """Until every run in `want` is in its state (a hang guard, not a timing check)."""
    deadline = time.monotonic() + limit_s
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = await run_states(api, list(want))
        if states == want:
            return states
        await asyncio.sleep(0.3)
    pytest.fail(f"gave up waiting for {want}; last seen {states}")


async def submit(api: httpx.AsyncClient, goal: dict[str, Any]) -> str:
    response = await api.post("/v1/goals", json=goal)
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


Samples = dict[str, list[tuple[dict[str, str], float]]]
"""Scraped /metrics: sample name -> [(labels, value)]."""


def scrape(text: str) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def metric(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of `name` that carry `labels`."""
    return sum(v for got, v in samples.get(name, []) if labels.items() <= got.items())
