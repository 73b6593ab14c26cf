"""The `crew` and `atlas` console scripts as subprocesses, on the embedded PostgreSQL (no
CREW_DATABASE_URL), with terraform applying to moto."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from schemas.plan import DesignBlocked, PlanSpec
from tests.conftest import EXAMPLES, example_goal
from tests.integration._support import (
    buckets_tagged,
    embedded_data_dir,
    pid_alive,
    postmaster_pid,
)
from tests.unit.support import venv_tool

pytestmark = pytest.mark.integration

ROOT = EXAMPLES.parent
OBJECT_STORAGE = EXAMPLES / "goal-object-storage.json"
BLOCKED_GOAL = EXAMPLES / "goal-blocked.json"


def script(name: str) -> str:
    """The console script installed next to this interpreter (the project's virtualenv)."""
    return venv_tool(name, "a console script of this project: make install")


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """One embedded Postgres data dir for the module; stopped and removed afterwards."""
    with embedded_data_dir() as path:
        yield path


@pytest.fixture(scope="module")
def cli_env(data_dir: Path, moto_endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREW_", "AWS_"))}
    env.update(
        {
            "CREW_DATA_DIR": str(data_dir),
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
            "COLUMNS": "200",  # keep rich from wrapping the lines the tests look for
        }
    )
    return env


def run_cli(env: dict[str, str], name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(name), *map(str, args)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def crew(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_cli(env, "crew", *args)


def assert_exit(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, (
        f"exit {result.returncode}, expected {code}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture(scope="module")
def waiting_run(cli_env: dict[str, str]) -> dict[str, Any]:
    """`crew run --json` of the object-storage example: stops at the gate."""
    result = crew(cli_env, "run", OBJECT_STORAGE, "--json")
    assert_exit(result, 0)
    detail: dict[str, Any] = json.loads(result.stdout)
    return detail


@pytest.fixture(scope="module")
def approved_run(cli_env: dict[str, str], waiting_run: dict[str, Any]) -> dict[str, Any]:
    result = crew(cli_env, "approve", waiting_run["run_id"], "--actor", "bob", "--json")
    assert_exit(result, 0)
    detail: dict[str, Any] = json.loads(result.stdout)
    return detail


def test_help_lists_the_commands(cli_env: dict[str, str]) -> None:
    result = crew(cli_env, "--help")
    assert_exit(result, 0)
    commands = ("serve", "run", "approve", "reject", "cancel", "runs", "show", "audit", "schema")
    for command in commands:
        assert re.search(rf"^\W*{command}\b", result.stdout, re.MULTILINE), (command, result.stdout)

    atlas = run_cli(cli_env, "atlas", "--help")
    assert_exit(atlas, 0)
    assert "plan" in atlas.stdout


def test_run_json_stops_at_the_gate(waiting_run: dict[str, Any]) -> None:
    assert waiting_run["state"] == "WAIT_FOR_APPROVE"
    assert waiting_run["waiting_for_approval"] is True
    artifacts = waiting_run["artifacts"]
    assert artifacts["plan"]["components"][0]["type"] == "s3_bucket"
    assert artifacts["build"]["ok"] is True
    assert artifacts["validation"]["verdict"] == "PASS"
    assert [r["seq"] for r in waiting_run["audit"]] == [0, 1, 2, 3, 4]
    assert waiting_run["diagram"].startswith("flowchart")


def test_run_prints_a_summary_at_the_gate(cli_env: dict[str, str]) -> None:
    result = crew(cli_env, "run", OBJECT_STORAGE)
    assert_exit(result, 0)
    assert "WAIT_FOR_APPROVE" in result.stdout
    assert "Log archive bucket" in result.stdout
    assert "validation PASS" in result.stdout
    match = re.search(r"waiting for approval: crew approve (\S+)", result.stdout)
    assert match, result.stdout

    # That run can be rejected from the CLI: nothing is applied.
    rejected = crew(cli_env, "reject", match.group(1), "--actor", "carol", "--json")
    assert_exit(rejected, 0)
    detail = json.loads(rejected.stdout)
    assert detail["state"] == "REJECTED"
    assert detail["artifacts"]["apply_result"] is None
    assert detail["decision"]["actor"] == "carol"


def test_runs_json_lists_the_run(cli_env: dict[str, str], waiting_run: dict[str, Any]) -> None:
    result = crew(cli_env, "runs", "--json")
    assert_exit(result, 0)
    runs = {r["run_id"]: r for r in json.loads(result.stdout)}
    assert waiting_run["run_id"] in runs
    listed = runs[waiting_run["run_id"]]
    assert listed["title"] == "Log archive bucket"
    assert listed["summary"]["verdict"] == "PASS"

    only_waiting = crew(cli_env, "runs", "--state", "WAIT_FOR_APPROVE", "--json")
    assert_exit(only_waiting, 0)
    assert {r["state"] for r in json.loads(only_waiting.stdout)} <= {"WAIT_FOR_APPROVE"}


@pytest.mark.parametrize("columns", ["80", "40"])
def test_runs_prints_whole_run_ids_and_one_figure(
    cli_env: dict[str, str], waiting_run: dict[str, Any], columns: str
) -> None:
    """The id `crew approve` needs is never cut (it was `20261207T…` at 80 columns), and the
    cost shown is the validated plan's, as at the gate, not Atlas's design estimate."""
    result = crew({**cli_env, "COLUMNS": columns}, "runs")
    assert_exit(result, 0)
    assert any(waiting_run["run_id"] in line for line in result.stdout.splitlines()), result.stdout
    assert "…" not in result.stdout
    artifacts = waiting_run["artifacts"]
    forecast = artifacts["validation"]["cost"]["monthly_usd"]
    assert forecast == artifacts["approval_request"]["forecast_monthly_usd"]
    assert f"${forecast:,.2f} / $" in result.stdout

    listed = {r["run_id"]: r for r in json.loads(crew(cli_env, "runs", "--json").stdout)}
    summary = listed[waiting_run["run_id"]]["summary"]
    assert (summary["forecast_monthly_usd"], summary["forecast_source"]) == (forecast, "validated")
    assert (
        summary["design_estimate_monthly_usd"]
        == (artifacts["plan"]["budget"]["forecast_monthly_usd"])
    )


def test_version(cli_env: dict[str, str]) -> None:
    for name in ("crew", "atlas"):
        result = run_cli(cli_env, name, "--version")
        assert_exit(result, 0)
        assert result.stdout == f"{name} {metadata.version('infra-crew')}\n"


def test_approve_applies_to_moto(approved_run: dict[str, Any], moto_endpoint: str) -> None:
    assert approved_run["state"] == "DONE"
    assert approved_run["decision"]["actor"] == "bob"
    assert approved_run["decision"]["channel"] == "cli"
    result = approved_run["artifacts"]["apply_result"]
    assert result["ok"] is True, result
    build = approved_run["artifacts"]["build"]
    assert result["resources"]["added"] == build["plan"]["create"] > 0
    bucket = result["outputs"]["objects_bucket"]
    # the bucket and the stack's access-log bucket, both carrying the required tags
    tagged = buckets_tagged(moto_endpoint, "crew-goal", approved_run["goal_id"])
    assert bucket in tagged
    assert tagged == {bucket, result["outputs"].get("access_log_bucket", bucket)}


def test_second_approval_is_a_conflict(
    cli_env: dict[str, str], approved_run: dict[str, Any]
) -> None:
    result = crew(cli_env, "approve", approved_run["run_id"], "--actor", "mallory")
    assert_exit(result, 4)
    assert "already approved by bob" in result.stderr


def test_show_and_audit(cli_env: dict[str, str], approved_run: dict[str, Any]) -> None:
    run_id = approved_run["run_id"]
    shown = crew(cli_env, "show", run_id, "--json")
    assert_exit(shown, 0)
    assert json.loads(shown.stdout)["state"] == "DONE"

    human = crew(cli_env, "show", run_id)
    assert_exit(human, 0)
    assert "DONE" in human.stdout
    assert "approve by bob via cli" in human.stdout

    audit = crew(cli_env, "audit", "--run", run_id, "--json")
    assert_exit(audit, 0)
    rows = json.loads(audit.stdout)
    assert [r["seq"] for r in rows] == list(range(7))
    assert {r["run_id"] for r in rows} == {run_id}
    assert [r["event"] for r in rows][-2:] == ["apply.request", "apply.done"]
    assert rows[5]["actor"] == "bob"

    text = crew(cli_env, "audit", "--run", run_id)
    assert_exit(text, 0)
    assert "apply.request" in text.stdout
    assert "by bob" in text.stdout


def test_show_unknown_run(cli_env: dict[str, str]) -> None:
    result = crew(cli_env, "show", "no-such-run")
    assert_exit(result, 2)
    assert "no run" in result.stderr
    assert "no-such-run" in result.stderr


def test_bad_goal_file_names_field_and_fix(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad-goal.json"
    goal = example_goal(budget={"monthly_usd": 0})
    goal["titel"] = goal.pop("title")
    bad.write_text(json.dumps(goal))

    for name, args in (("crew", ("run", bad)), ("atlas", ("plan", bad))):
        result = run_cli(cli_env, name, *args)
        assert_exit(result, 2)
        assert "budget.monthly_usd" in result.stderr, result.stderr
        assert "use a number > 0" in result.stderr
        assert "titel" in result.stderr
        assert "did you mean 'title'" in result.stderr
        assert "fix:" in result.stderr

    not_json = tmp_path / "not-json.json"
    not_json.write_text("{ this is not json")
    result = crew(cli_env, "run", not_json)
    assert_exit(result, 2)
    assert "not valid JSON" in result.stderr


def test_missing_goal_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = crew(cli_env, "run", missing)
    assert_exit(result, 2)
    assert "cannot read" in result.stderr
    assert "nope.json" in result.stderr


def test_blocked_goal_exits_1(cli_env: dict[str, str]) -> None:
    result = crew(cli_env, "run", BLOCKED_GOAL)
    assert_exit(result, 1)
    assert "BLOCKED" in result.stdout
    assert "design blocked" in result.stdout


def test_atlas_plan(cli_env: dict[str, str]) -> None:
    planned = run_cli(cli_env, "atlas", "plan", OBJECT_STORAGE, "--json")
    assert_exit(planned, 0)
    plan = PlanSpec.model_validate_json(planned.stdout)
    assert [c.type for c in plan.components] == ["s3_bucket"]
    assert plan.region == "eu-west-1"

    blocked = run_cli(cli_env, "atlas", "plan", BLOCKED_GOAL)
    assert_exit(blocked, 3)
    design_blocked = DesignBlocked.model_validate_json(blocked.stdout)
    assert design_blocked.goal_id == "orders-api-blocked"
    assert design_blocked.reasons


def test_contract_files_are_current(cli_env: dict[str, str]) -> None:
    schemas = crew(cli_env, "schema", "export", "--check")
    assert_exit(schemas, 0)
    assert "up to date" in schemas.stdout
    diagrams = crew(cli_env, "diagram", "export", "--check")
    assert_exit(diagrams, 0)
    assert "up to date" in diagrams.stdout


def test_stacks_show_what_the_goal_deployed(
    cli_env: dict[str, str], approved_run: dict[str, Any]
) -> None:
    """`crew stacks` / `crew stack ID`: the applied run's stack, deployed, with the resources
    and outputs its state holds (before test_rollback_of_a_done_run undoes it)."""
    listed = crew(cli_env, "stacks", "--json")
    assert_exit(listed, 0)
    stacks = {s["goal_id"]: s for s in json.loads(listed.stdout)}
    stack = stacks[approved_run["goal_id"]]
    assert stack["status"] == "deployed"
    assert stack["latest_run_id"] == approved_run["run_id"]
    assert stack["region"] == approved_run["goal"]["region"]

    shown = crew(cli_env, "stack", stack["stack_id"], "--json")
    assert_exit(shown, 0)
    detail = json.loads(shown.stdout)
    assert [r["outcome"] for r in detail["revisions"]] == ["applied"]
    bucket = approved_run["artifacts"]["apply_result"]["outputs"]["objects_bucket"]
    assert detail["outputs"]["objects_bucket"] == bucket
    types = {r["type"] for r in detail["resources"]}
    assert "aws_s3_bucket" in types
    assert len(detail["resources"]) >= approved_run["artifacts"]["build"]["plan"]["create"]

    human = crew(cli_env, "stack", stack["stack_id"])
    assert_exit(human, 0)
    assert "deployed" in human.stdout
    assert "aws_s3_bucket." in human.stdout

    runs = crew(cli_env, "runs")
    assert_exit(runs, 0)
    assert "DONE (applied)" in runs.stdout

    unknown = crew(cli_env, "stack", "no-such-stack")
    assert_exit(unknown, 2)
    assert "no stack with id 'no-such-stack'" in unknown.stderr


def test_rollback_of_a_done_run(
    cli_env: dict[str, str], approved_run: dict[str, Any], moto_endpoint: str
) -> None:
    """`crew rollback RUN_ID`: DONE -> ROLLBACK -> DONE, the stack back to empty (revision 1),
    audited; a second request and a run that is not DONE are conflicts (exit 4)."""
    run_id = approved_run["run_id"]
    assert buckets_tagged(moto_endpoint, "crew-goal", approved_run["goal_id"])
    result = crew(
        cli_env, "rollback", run_id, "--actor", "erin", "--reason", "wrong bucket", "--json"
    )
    assert_exit(result, 0)
    detail = json.loads(result.stdout)
    assert detail["state"] == "DONE"
    rolled = detail["artifacts"]["rollback_result"]
    assert rolled["ok"] is True, rolled
    assert rolled["operation"] == "rollback"
    assert rolled["restored"] == "empty stack"
    assert rolled["resources"]["destroyed"] == approved_run["artifacts"]["build"]["plan"]["create"]
    assert detail["artifacts"]["rollback_request"]["actor"] == "erin"
    assert buckets_tagged(moto_endpoint, "crew-goal", approved_run["goal_id"]) == set()
    events = [(r["event"], r["from_state"], r["to_state"], r["actor"]) for r in detail["audit"]]
    assert events[-2:] == [
        ("rollback.started", "DONE", "ROLLBACK", "erin"),
        ("rollback.done", "ROLLBACK", "DONE", "forge"),
    ]
    again = crew(cli_env, "rollback", run_id)
    assert_exit(again, 4)
    assert "already rolled back" in again.stderr
    unknown = crew(cli_env, "rollback", "no-such-run")
    assert_exit(unknown, 2)

    # what is listed tells the truth: DONE, but rolled back; the stack's state is empty
    runs = crew(cli_env, "runs")
    assert_exit(runs, 0)
    assert "DONE (rolled back)" in runs.stdout
    stacks = {s["goal_id"]: s for s in json.loads(crew(cli_env, "stacks", "--json").stdout)}
    stack = stacks[approved_run["goal_id"]]
    assert stack["status"] == "rolled back"
    emptied = json.loads(crew(cli_env, "stack", stack["stack_id"], "--json").stdout)
    assert emptied["resources"] == []
    assert [r["outcome"] for r in emptied["revisions"]] == ["rolled back"]


def test_no_embedded_server_left_running(cli_env: dict[str, str], data_dir: Path) -> None:
    """Every command lets go of the embedded server on exit; the last one stops it."""
    assert_exit(crew(cli_env, "runs"), 0)
    pid = postmaster_pid(data_dir / "pg18")
    assert pid is None or not pid_alive(pid), f"embedded postmaster {pid} is still running"
