"""`crew build PLAN.json` as a subprocess: no database, real terraform, moto for the plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fixtures.plans import c, plan_of, workload_plan
from schemas.build import BuildStatus
from tests.integration.test_cli import assert_exit, crew

pytestmark = pytest.mark.integration


@pytest.fixture
def build_env(moto_endpoint: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREW_", "AWS_"))}
    env.update(
        {
            "CREW_DATA_DIR": str(tmp_path / "data"),
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "eu-west-1",
            "COLUMNS": "200",
        }
    )
    return env


def test_build_plans_and_prints_the_build_status(build_env: dict[str, str], tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(workload_plan("batch").model_dump_json())
    out = tmp_path / "ws"
    result = crew(build_env, "build", plan_file, "--out", out, "--json")
    assert_exit(result, 0)
    status = BuildStatus.model_validate_json(result.stdout)
    assert status.ok
    assert status.workspace == str(out)
    assert status.plan.create > 10
    assert status.plan_file_digest is not None
    assert (out / "plan.json").is_file()
    assert sorted(p.name for p in out.glob("*.tf")) == [
        "main.tf",
        "outputs.tf",
        "variables.tf",
        "versions.tf",
    ]
    # nothing was applied: the stack's (local) state holds no resources
    assert not any((tmp_path / "data" / "state").rglob("terraform.tfstate"))

    human = crew(build_env, "build", plan_file, "--out", out)
    assert_exit(human, 0)
    assert "to add" in human.stdout


def test_bad_input_exits_2(build_env: dict[str, str], tmp_path: Path) -> None:
    not_a_plan = tmp_path / "goal.json"
    not_a_plan.write_text(json.dumps({"title": "x"}))
    result = crew(build_env, "build", not_a_plan)
    assert_exit(result, 2)
    assert "plan_id" in result.stderr

    refused = tmp_path / "refused.json"
    refused.write_text(plan_of([c("ecs_service", "svc")]).model_dump_json())
    result = crew(build_env, "build", refused)
    assert_exit(result, 2)
    assert "needs a vpc component" in result.stderr

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.tf").write_text('data "external" "x" {\n  program = ["id"]\n}\n')
    ok_plan = tmp_path / "ok.json"
    ok_plan.write_text(plan_of([c("sqs_queue", "q")]).model_dump_json())
    result = crew(build_env, "build", ok_plan, "--out", foreign)
    assert_exit(result, 2)
    assert "mine.tf" in result.stderr
    assert (foreign / "mine.tf").exists(), "never deletes files it did not write"

    missing = crew(build_env, "build", tmp_path / "nope.json")
    assert_exit(missing, 2)


def test_terraform_errors_exit_1_with_the_diagnostics(
    build_env: dict[str, str], tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan_of([c("sqs_queue", "q")]).model_dump_json())
    # the AWS provider cannot be configured: plan fails (after init and validate passed)
    broken = {**build_env, "AWS_PROFILE": "crew-no-such-profile"}
    result = crew(broken, "build", plan_file, "--out", tmp_path / "ws", "--json")
    assert_exit(result, 1)
    status = BuildStatus.model_validate_json(result.stdout)
    assert not status.ok
    assert status.errors
    assert any("crew-no-such-profile" in f"{e.summary} {e.detail}" for e in status.errors)
    assert status.plan_file_digest is None
    human = crew(broken, "build", plan_file, "--out", tmp_path / "ws")
    assert_exit(human, 1)
    assert "error" in human.stdout
