"""The real stack the benchmark runs on: moto, Postgres, an API process and a timed worker.

Everything is started here on loopback and stopped again: moto (ThreadedMotoServer on a free
port, dummy credentials), Postgres (`CREW_DATABASE_URL` when set, else an embedded PostgreSQL
18 in a temporary directory) with one scratch database per phase, the API as a separate
uvicorn process (`bench.api_server`, no worker), and an in-process `Worker` whose drives are
timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from crew.container import Services
from crew.worker import EventSink, Worker
from memory.db import redact
from memory.embedded import EmbeddedPostgres
from memory.runs import RunRecord
from schemas.states import ConductorState

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Dummy credentials and region for terraform's AWS provider (and boto3) talking to moto.
AWS_DUMMY = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto on a free loopback port; AWS_* in this process's environment point at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in [*AWS_DUMMY, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(AWS_DUMMY, AWS_ENDPOINT_URL=endpoint)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@dataclass
class Postgres:
    """Where scratch databases are created: an admin connection string and a label."""

    admin_conninfo: str
    label: str
    created: list[str] = field(default_factory=list)

    def create_database(self, prefix: str) -> str:
        """A new empty database; returns its connection string."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return make_conninfo(self.admin_conninfo, dbname=name)

    def drop_databases(self) -> None:
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            for name in self.created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self.created.clear()


@contextlib.contextmanager
def postgres(data_dir: Path) -> Iterator[Postgres]:
    """CREW_DATABASE_URL's server when set, else an embedded PostgreSQL 18 under data_dir."""
    url = os.environ.get("CREW_DATABASE_URL")
    if url:
        pg = Postgres(url, f"CREW_DATABASE_URL ({redact(url)})")
        try:
            yield pg
        finally:
            pg.drop_databases()
        return
    embedded = EmbeddedPostgres(data_dir / "pg18")
    conninfo = embedded.start()
    try:
        pg = Postgres(conninfo, "embedded PostgreSQL 18 (default)")
        try:
            yield pg
        finally:
            pg.drop_databases()
    finally:
        embedded.stop()


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="crew-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class ApiProcess:
    """`bench.api_server` under uvicorn in a child process, on its own database."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
        env.update(
            CREW_DATABASE_URL=database_url,
            CREW_DATA_DIR=str(data_dir),
            CREW_LOG_LEVEL="WARNING",
            **(extra_env or {}),
        )
        self._env = env
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, limit_s: float = 60) -> None:
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.api_server:app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                cwd=REPO_ROOT,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the API process exited; see {self._log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the API process was not ready in {limit_s:.0f}s")

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=30)


@dataclass
class RunClock:
    """perf_counter() marks for one run, taken in the worker as things happen."""

    gate_at: float | None = None
    """The drive that stopped at the gate returned (checkpoint written, lease released)."""
    apply_started_at: float | None = None
    """The apply node's first progress event: it runs and starts its first terraform command."""
    finished_at: float | None = None
    final_state: ConductorState | None = None
    drive_s: float = 0.0
    """Time the worker spent driving this run (waiting at the gate excluded)."""


class TimedWorker(Worker):
    """The product's Worker, with each drive timed through the `on_event` hook it offers."""

    def __init__(self, services: Services, clocks: dict[str, RunClock]) -> None:
        super().__init__(services)
        self.clocks = clocks

    async def drive_and_release(self, run: RunRecord, on_event: EventSink | None = None) -> None:
        clock = self.clocks.setdefault(run.run_id, RunClock())

        def sink(kind: str, node: str, payload: Any) -> None:
            if kind == "progress" and node == "apply" and clock.apply_started_at is None:
                clock.apply_started_at = time.perf_counter()

        started = time.perf_counter()
        try:
            await super().drive_and_release(run, sink)
        finally:
            ended = time.perf_counter()
            clock.drive_s += ended - started
        state = (await self.services.runs.get(run.run_id)).state
        if state is ConductorState.WAIT_FOR_APPROVE:
            clock.gate_at = clock.gate_at or ended
        elif state.is_terminal:
            clock.finished_at = ended
            clock.final_state = state


class CheckpointTimer:
    """Wraps a saver's `aput`/`aput_writes` to add up their time per thread (= run)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.writes: dict[str, int] = defaultdict(int)

    def install(self, saver: Any) -> None:
        for name in ("aput", "aput_writes"):
            setattr(saver, name, self._timed(getattr(saver, name)))

    def _timed(self, method: Any) -> Any:
        async def timed(config: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(config, *args, **kwargs)
            finally:
                thread = str(config["configurable"]["thread_id"])
                self.seconds[thread] += time.perf_counter() - started
                self.writes[thread] += 1

        return timed


@contextlib.asynccontextmanager
async def running_worker(worker: Worker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        yield
    finally:
        stop.set()
        await task
