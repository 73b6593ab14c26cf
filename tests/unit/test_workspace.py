"""tools/workspace.py: PlanSpec -> Terraform files, deterministic and from vetted templates."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from nodes.atlas import plan_goal
from schemas.plan import Component, PlanSpec
from tests.unit.support import FIXTURES, goal_dict, make_goal
from tools.workspace import (
    RENDERED_RESOURCE_TYPES,
    UnsupportedComponentError,
    file_digest,
    load_plan_json,
    render_workspace_files,
    save_plan_json,
    write_workspace,
)

GOLDEN = FIXTURES / "golden" / "object-storage"
REGENERATE_GOLDEN = (
    "the rendered workspace differs from tests/fixtures/golden/object-storage/{name}. If the "
    "change is intended, regenerate with:\n"
    '  .venv/bin/python -c "from pathlib import Path; from schemas.plan import PlanSpec; '
    "from tools.workspace import write_workspace; write_workspace(PlanSpec.model_validate_json("
    "Path('examples/artifacts/PlanSpec.json').read_text()), "
    "Path('tests/fixtures/golden/object-storage'))\"\n"
    "then check it with `terraform fmt -check tests/fixtures/golden/object-storage` and review "
    "the diff."
)


def plan_for(**changes: Any) -> PlanSpec:
    plan = plan_goal(make_goal(**changes), goal_id="run-1", plan_id="run-1-r1")
    assert isinstance(plan, PlanSpec), plan
    return plan


def default_tags(main_tf: str) -> dict[str, str]:
    block = re.search(r"default_tags \{\n    tags = \{\n(.*?)\n    \}", main_tf, re.S)
    assert block is not None, main_tf
    pairs = re.findall(r'^\s*"([^"]+)"\s*= "([^"]*)"$', block.group(1), re.M)
    return dict(pairs)


@pytest.mark.parametrize("name", ["versions.tf", "main.tf", "outputs.tf"])
def test_golden_object_storage_workspace(example_plan: PlanSpec, name: str) -> None:
    rendered = render_workspace_files(example_plan)
    assert sorted(rendered) == ["main.tf", "outputs.tf", "versions.tf"]
    golden = (GOLDEN / name).read_text(encoding="utf-8")
    assert rendered[name] == golden, REGENERATE_GOLDEN.format(name=name)


def test_rendering_is_deterministic(example_plan: PlanSpec, tmp_path: Path) -> None:
    first = render_workspace_files(example_plan)
    again = render_workspace_files(PlanSpec.model_validate_json(example_plan.model_dump_json()))
    assert first == again
    # tag order in the PlanSpec does not change a byte
    reordered = example_plan.model_copy(update={"tags": dict(reversed(example_plan.tags.items()))})
    assert render_workspace_files(reordered) == first
    # nor does writing twice
    write_workspace(example_plan, tmp_path / "a")
    write_workspace(reordered, tmp_path / "b")
    for name in first:
        assert file_digest(tmp_path / "a" / name) == file_digest(tmp_path / "b" / name)


def test_unknown_component_type_is_refused(example_plan: PlanSpec) -> None:
    extra = Component(type="iam_admin_user", name="backdoor")
    plan = example_plan.model_copy(update={"components": [*example_plan.components, extra]})
    with pytest.raises(UnsupportedComponentError, match=r"'iam_admin_user'.*'backdoor'"):
        render_workspace_files(plan)


def test_required_tags_are_provider_default_tags() -> None:
    tags = {"team": "platform", "cost-center": "cc-1234", "data class": "internal"}
    plan = plan_for(constraints={"required_tags": tags})
    found = default_tags(render_workspace_files(plan)["main.tf"])
    assert tags.items() <= found.items()
    assert found["managed-by"] == "infra-crew"
    assert found["crew-goal"] == "run-1"
    assert found["environment"] == "dev"


def test_no_escape_hatches_in_the_rendered_terraform() -> None:
    hostile = "provisioner local-exec external ${run}"
    plan = plan_for(
        description=hostile, title=hostile, constraints={"required_tags": {"note": hostile}}
    )
    files = render_workspace_files(plan)
    text = "\n".join(files.values())
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # everything outside string literals
    for word in ("provisioner", "local-exec", "external", "data", "module", "${"):
        assert word not in code
    # and the example's files carry none of them at all
    for word in ("provisioner", "local-exec", "external"):
        assert word not in "\n".join(render_workspace_files(plan_for()).values())


def test_rendered_resource_types_are_the_allow_list(example_plan: PlanSpec) -> None:
    main = render_workspace_files(example_plan)["main.tf"]
    types = set(re.findall(r'^resource "([a-z0-9_]+)" "objects"', main, re.M))
    assert types == RENDERED_RESOURCE_TYPES


def test_bucket_is_private_encrypted_and_versioned(example_plan: PlanSpec) -> None:
    main = render_workspace_files(example_plan)["main.tf"]
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls"):
        assert re.search(rf"^\s+{flag}\s+= true$", main, re.M)
    assert 'sse_algorithm = "AES256"' in main
    assert 'status = "Enabled"' in main
    assert 'object_ownership = "BucketOwnerEnforced"' in main


@pytest.mark.parametrize(("environment", "force"), [("dev", "true"), ("prod", "false")])
def test_force_destroy_follows_the_environment(environment: str, force: str) -> None:
    main = render_workspace_files(plan_for(environment=environment))["main.tf"]
    assert f"force_destroy = {force}" in main


def test_region_is_the_plans(example_plan: PlanSpec) -> None:
    plan = plan_for(region="ap-southeast-2")
    assert 'region = "ap-southeast-2"' in render_workspace_files(plan)["main.tf"]


def test_write_workspace_writes_every_file(example_plan: PlanSpec, tmp_path: Path) -> None:
    target = tmp_path / "ws" / "r1"
    written = write_workspace(example_plan, target)
    assert sorted(p.name for p in written) == ["main.tf", "outputs.tf", "versions.tf"]
    for path in written:
        assert path.read_text(encoding="utf-8") == (GOLDEN / path.name).read_text("utf-8")


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


def test_goal_data_used_in_the_example_is_in_the_golden_files() -> None:
    """The golden files are the example goal's, not some other plan's."""
    tags = goal_dict()["constraints"]["required_tags"]
    main = (GOLDEN / "main.tf").read_text(encoding="utf-8")
    assert tags.items() <= default_tags(main).items()
