"""LangGraph Studio: `langgraph dev` serves the Conductor from langgraph.json, and a run is
started, interrupted at the gate and resumed through the LangGraph API (`langgraph_sdk`), with
real terraform applying to moto. The server runs as a subprocess on a free port, in its own
process group, killed at the end."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from graph.state import RunState, initial_state
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.goal import GoalStatement
from tests.conftest import example_goal, free_port
from tests.integration._support import buckets_tagged, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GRAPH_ID = "conductor"
#: Environment the server must not inherit: it would send traces or analytics out.
NO_NETWORK_ENV = {
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
}
DROPPED_ENV = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGGRAPH_CLOUD_LICENSE_KEY")


def langgraph_cli() -> Path:
    """The `langgraph` CLI of this environment, with the in-memory API server it runs."""
    found = Path(sys.executable).with_name("langgraph")
    if not found.exists():
        which = shutil.which("langgraph")
        if which is None:
            pytest.skip("the langgraph CLI is not installed (pip install 'langgraph-cli[inmem]')")
        found = Path(which)
    # (looked up, not imported: importing the in-memory runtime creates `.langgraph_api/`)
    missing = [m for m in ("langgraph_api", "langgraph_runtime_inmem") if find_spec(m) is None]
    if missing:
        pytest.skip(f"langgraph dev needs langgraph-cli[inmem]; missing: {', '.join(missing)}")
    return found


@pytest.fixture
def studio_server(
    tmp_path: Path, terraform_bin: Path, aws_env: dict[str, str]
) -> Iterator[tuple[str, Path]]:
    """`langgraph dev` on a free port, started from a temp dir (it keeps its in-memory
    checkpoints under `.langgraph_api/` there), with its own CREW_DATA_DIR; yields the URL
    once /ok answers, and the server's log."""
    cli = langgraph_cli()
    port = free_port()
    workdir = tmp_path / "studio"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(NO_NETWORK_ENV)
    env.update(aws_env)
    env["CREW_DATA_DIR"] = str(tmp_path / "data")
    env["PATH"] = f"{cli.parent}{os.pathsep}{env.get('PATH', '')}"
    log_path = tmp_path / "langgraph-dev.log"
    argv = [
        str(cli),
        "dev",
        "--config",
        str(ROOT / "langgraph.json"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
        # The nodes do small synchronous file writes (workspaces, snapshots) and run checkov
        # in-process, as the product's worker does; blockbuster would refuse them.
        "--allow-blocking",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"langgraph dev exited ({process.returncode}):\n{tail(log_path)}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not answer /ok in 60 s:\n{tail(log_path)}")
            time.sleep(0.2)
        yield url, log_path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
async def client(studio_server: tuple[str, Path]) -> AsyncIterator[Any]:
    from langgraph_sdk import get_client

    url, _ = studio_server
    sdk = get_client(url=url, timeout=httpx.Timeout(120.0))
    try:
        yield sdk
    finally:
        await sdk.http.client.aclose()


async def test_run_interrupts_at_the_gate_and_applies_on_resume(
    client: Any, studio_server: tuple[str, Path], moto_endpoint: str
) -> None:
    _, log_path = studio_server
    # What Studio shows: the Conductor's nodes, and RunState as the input form.
    [assistant] = await client.assistants.search(graph_id=GRAPH_ID)
    drawn = await client.assistants.get_graph(assistant["assistant_id"])
    assert {n["id"] for n in drawn["nodes"]} >= {
        "design",
        "build",
        "validate",
        "request_approval",
        "await_approval",
        "apply",
        "rollback",
    }
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert "goal" in schemas["input_schema"]["properties"]

    thread = await client.threads.create()
    run_id = thread["thread_id"]
    goal_id = f"studio-{secrets.token_hex(4)}"
    goal = GoalStatement.model_validate(example_goal(goal_id=goal_id))
    start = initial_state(run_id, goal_id, goal, datetime.now(UTC))
    payload = TypeAdapter(RunState).dump_python(start, mode="json")

    await client.runs.wait(run_id, GRAPH_ID, input=payload, raise_error=False)
    state = await client.threads.get_state(run_id)
    if state["next"] != ["await_approval"]:
        pytest.fail(f"run did not reach the gate: {state['values']}\n{tail(log_path)}")
    assert (await client.threads.get(run_id))["status"] == "interrupted"
    values = state["values"]
    assert values["conductor_state"] == "WAIT_FOR_APPROVE"
    assert values["validation"]["verdict"] == "PASS"
    [interrupt] = state["interrupts"]
    request = interrupt["value"]
    assert request == values["approval_request"]
    assert request["run_id"] == run_id
    assert request["plan_file_digest"] == values["build"]["plan_file_digest"]
    assert request["create"] > 0
    assert buckets_tagged(moto_endpoint, "crew-goal", goal_id) == set()

    decision = ApprovalDecision(
        run_id=run_id,
        decision=Decision.APPROVE,
        actor="alice@example.com",
        channel=Channel.CLI,
        reason="looks right in Studio",
        at=datetime.now(UTC),
    )
    final = await client.runs.wait(
        run_id,
        GRAPH_ID,
        command={"resume": decision.model_dump(mode="json")},
        raise_error=False,
    )
    if final.get("conductor_state") != "DONE":
        pytest.fail(f"run did not end DONE: {final}\n{tail(log_path)}")
    result = final["apply_result"]
    assert result["ok"] is True, result
    assert result["resources"]["added"] == request["create"]
    bucket = result["outputs"]["objects_bucket"]
    assert bucket in buckets_tagged(moto_endpoint, "crew-goal", goal_id)
    assert final["decision"]["actor"] == "alice@example.com"
    assert [t["to_state"] for t in final["transitions"]] == [
        "IN_PROGRESS",
        "VALIDATING",
        "READY_FOR_APPLY",
        "WAIT_FOR_APPROVE",
        "APPLYING",
        "DONE",
    ]

    thread = await wait_until(
        lambda: client.threads.get(run_id),
        lambda t: t["status"] == "idle",
        what="the thread to be idle",
        limit_s=30,
    )
    assert thread["values"]["conductor_state"] == "DONE"
