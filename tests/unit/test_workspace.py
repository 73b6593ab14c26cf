"""tools/workspace.py: rendered files on disk, plan-file digests, the plan JSON; tools/stack.py
and tools/backend.py: where a stack's state lives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fixtures.plans import c, plan_of
from schemas.plan import Component, PlanSpec
from tests.unit.support import FIXTURES
from tools.backend import StateBackend
from tools.render import FILES, RenderError
from tools.stack import StackKey
from tools.workspace import (
    file_digest,
    foreign_config_files,
    load_plan_json,
    save_plan_json,
    write_workspace,
)

GOLDEN = FIXTURES / "golden" / "object-storage"


def test_write_workspace_writes_the_golden_files(example_plan: PlanSpec, tmp_path: Path) -> None:
    target = tmp_path / "ws" / "r1"
    written = write_workspace(example_plan, target)
    assert sorted(p.name for p in written) == sorted(FILES)
    for path in written:
        assert path.read_text(encoding="utf-8") == (GOLDEN / path.name).read_text("utf-8")


def test_rewriting_removes_configuration_forge_did_not_write(
    example_plan: PlanSpec, tmp_path: Path
) -> None:
    (tmp_path / "extra.tf").write_text('data "external" "x" {}\n')
    (tmp_path / "override.tf.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("kept")
    assert [p.name for p in foreign_config_files(tmp_path)] == ["extra.tf", "override.tf.json"]
    write_workspace(example_plan, tmp_path)
    assert foreign_config_files(tmp_path) == []
    assert (tmp_path / "notes.txt").read_text() == "kept"


def test_a_plan_the_templates_refuse_writes_nothing(example_plan: PlanSpec, tmp_path: Path) -> None:
    extra = Component(type="iam_admin_user", name="backdoor")
    plan = example_plan.model_copy(update={"components": [*example_plan.components, extra]})
    with pytest.raises(ValueError, match=r"'backdoor' has type 'iam_admin_user'"):
        write_workspace(plan, tmp_path / "ws")
    with pytest.raises(RenderError):
        write_workspace(plan_of([c("ecs_service", "svc")]), tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


def test_file_digest_is_sha256(tmp_path: Path) -> None:
    path = tmp_path / "crew.tfplan"
    data = bytes(range(256)) * 5000  # more than one read chunk
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()


def test_plan_json_round_trips(tmp_path: Path) -> None:
    doc = {"resource_changes": [{"address": "a.b", "type": "a", "change": {"actions": []}}]}
    path = save_plan_json(tmp_path, doc)
    assert path.name == "plan.json"
    assert load_plan_json(tmp_path) == doc


def test_stack_key_is_stable_readable_and_path_safe() -> None:
    stack = StackKey("Orders API / 2026-11", "eu-west-1")
    assert stack.id.startswith("orders-api-2026-11.eu-west-1.")
    assert stack.id == StackKey("Orders API / 2026-11", "eu-west-1").id
    assert stack.id != StackKey("Orders API / 2026-11", "eu-central-1").id
    assert StackKey("a b", "eu-west-1").id != StackKey("a-b", "eu-west-1").id  # hash differs
    assert "/" not in StackKey("../../etc", "eu-west-1").id
    assert len(stack.name_prefix) == 13


def test_backend_settings_per_stack(tmp_path: Path) -> None:
    stack = StackKey("goal-1", "eu-west-1")
    local = StateBackend.local(tmp_path / "state")
    assert local.init_config(stack) == {
        "path": str(tmp_path / "state" / stack.id / "terraform.tfstate")
    }
    assert (tmp_path / "state" / stack.id).is_dir()
    s3 = StateBackend(
        kind="s3",
        bucket="tf-state",
        key_prefix="/teams/x/",
        region="eu-central-1",
        dynamodb_table="locks",
        use_path_style=True,
    )
    assert s3.init_config(stack) == {
        "bucket": "tf-state",
        "key": f"teams/x/{stack.id}/terraform.tfstate",
        "region": "eu-central-1",
        "encrypt": "true",
        "dynamodb_table": "locks",
        "use_path_style": "true",
    }
    assert s3.describe(stack) == f"s3://tf-state/teams/x/{stack.id}/terraform.tfstate"
    lockfile = StateBackend(kind="s3", bucket="b", region="r", use_lockfile=True)
    assert lockfile.init_config(stack)["use_lockfile"] == "true"
    assert "dynamodb_table" not in lockfile.init_config(stack)
