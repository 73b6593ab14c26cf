"""tools/terraform.TerraformRunner against the real terraform binary, with moto as AWS."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from crew.container import build_terraform_runner
from crew.settings import Settings
from schemas.build import DiagnosticSeverity
from schemas.errors import ToolNotFoundError, ToolTimeoutError
from schemas.plan import PlanSpec
from tests.integration._support import bucket_names
from tests.unit.support import ARTIFACT_EXAMPLES
from tools.guard import WorkspaceRefusedError
from tools.process import run_process
from tools.terraform import TerraformRunner
from tools.workspace import PLAN_FILE, write_workspace

pytestmark = pytest.mark.integration

#: The example's bucket (with its 90-day lifecycle rule), the stack's KMS key + alias and
#: access-log bucket (tests/fixtures/terraform/README.md).
RESOURCES = 16


def example_plan() -> PlanSpec:
    """The committed example PlanSpec, on a stack of its own (names are per stack)."""
    plan = PlanSpec.model_validate_json((ARTIFACT_EXAMPLES / "PlanSpec.json").read_text())
    return plan.model_copy(update={"goal_id": f"tf-it-{secrets.token_hex(4)}"})


@pytest.fixture
def runner_for(
    make_settings: Callable[..., Settings], terraform_bin: Path, aws_env: dict[str, str]
) -> Callable[..., TerraformRunner]:
    """A runner wired exactly as the service wires it (settings + passed-through env)."""

    def make(**overrides: object) -> TerraformRunner:
        return build_terraform_runner(make_settings(**overrides), dict(os.environ))

    return make


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "ws"
    write_workspace(example_plan(), directory)
    return directory


async def test_full_lifecycle_against_moto(
    runner_for: Callable[..., TerraformRunner],
    workspace: Path,
    terraform_bin: Path,
    moto_endpoint: str,
) -> None:
    runner = runner_for()

    fmt = await run_process(
        [str(terraform_bin), "fmt", "-check", "-diff", "-no-color"],
        cwd=workspace,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(workspace)},
        timeout_s=60,
    )
    assert fmt.returncode == 0, f"rendered files are not terraform-fmt clean:\n{fmt.stdout}"

    assert (await runner.version()).startswith("1.")

    init = await runner.init(workspace)
    assert init.ok, init.diagnostics
    assert not init.errors
    if runner.plugin_dir is not None:
        # issue 16: the lock file is written before init, complete for this platform
        assert [w.summary for w in init.warnings] == []
        lock = (workspace / ".terraform.lock.hcl").read_text()
        assert 'provider "registry.terraform.io/hashicorp/aws"' in lock
        assert "h1:" in lock
        assert "Incomplete lock file" not in (workspace / "logs" / "init.log").read_text()

    # The provider is linked from the shared plugin cache, not copied into the workspace.
    provider_root = workspace / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp"
    platform_dirs = list((provider_root / "aws").glob("*/*"))
    assert platform_dirs, f"no provider installed under {provider_root}"
    for platform_dir in platform_dirs:
        assert platform_dir.is_symlink(), f"{platform_dir} was copied, not linked"
        target = platform_dir.resolve()
        assert target.is_relative_to(runner.plugin_cache_dir.resolve()) or (
            runner.plugin_dir is not None and target.is_relative_to(runner.plugin_dir.resolve())
        ), target
    copied = sum(
        p.stat().st_size
        for p in (workspace / ".terraform").rglob("*")
        if p.is_file() and not any(parent.is_symlink() for parent in [p, *p.parents])
    )
    assert copied < 5_000_000, f"{copied} bytes of provider copied into the workspace"

    checked = await runner.validate(workspace)
    assert checked.ok, checked.diagnostics

    progress: list[str] = []
    plan = await runner.plan(workspace, PLAN_FILE, progress.append)
    assert plan.ok, plan.diagnostics
    assert plan.has_changes
    assert (workspace / PLAN_FILE).is_file()
    assert any("Plan:" in line for line in progress), progress

    shown = await runner.show_plan(workspace, PLAN_FILE)
    changes = shown["resource_changes"]
    created = [c for c in changes if c["change"]["actions"] == ["create"]]
    assert len(created) == RESOURCES
    assert {c["change"]["actions"][0] for c in changes} <= {"create", "read"}

    before = bucket_names(moto_endpoint)
    applied = await runner.apply(workspace, PLAN_FILE)
    assert applied.ok, applied.diagnostics
    assert applied.added == RESOURCES
    assert applied.changed == 0
    assert applied.destroyed == 0

    outputs = await runner.outputs(workspace)
    bucket = outputs["objects_bucket"]
    assert bucket.startswith("crew-")
    assert "-objects-" in bucket
    assert outputs["objects_arn"] == f"arn:aws:s3:::{bucket}"
    assert applied.outputs.get("objects_bucket", bucket) == bucket
    assert bucket not in before
    assert bucket in bucket_names(moto_endpoint)

    destroyed = await runner.destroy(workspace)
    assert destroyed.ok, destroyed.diagnostics
    assert destroyed.destroyed == RESOURCES
    assert bucket not in bucket_names(moto_endpoint)


async def test_an_error_terraform_finds_is_a_parsed_diagnostic(
    runner_for: Callable[..., TerraformRunner], workspace: Path
) -> None:
    runner = runner_for()
    assert (await runner.init(workspace)).ok
    main_tf = workspace / "main.tf"
    lines = main_tf.read_text().splitlines()
    at = lines.index('resource "aws_s3_bucket" "objects" {') + 1
    main_tf.write_text("\n".join([*lines[:at], '  acl_typo = "private"', *lines[at:]]) + "\n")

    outcome = await runner.plan(workspace, PLAN_FILE)

    assert not outcome.ok
    assert not outcome.has_changes
    located = [d for d in outcome.errors if d.filename == "main.tf"]
    assert [(d.summary, d.line) for d in located] == [("Unsupported argument", at + 1)]
    assert all(d.severity is DiagnosticSeverity.ERROR for d in located)
    assert not (workspace / PLAN_FILE).exists()


async def test_a_syntax_error_is_refused_before_terraform_runs(
    runner_for: Callable[..., TerraformRunner], workspace: Path
) -> None:
    main_tf = workspace / "main.tf"
    main_tf.write_text(main_tf.read_text() + 'resource "aws_s3_bucket" "broken" {\n')
    with pytest.raises(WorkspaceRefusedError, match=r"main\.tf.*cannot be parsed"):
        await runner_for().plan(workspace, PLAN_FILE)
    assert not (workspace / ".terraform").exists()
    assert not (workspace / "logs").exists(), "terraform never started"


async def test_tiny_timeout_stops_terraform(
    runner_for: Callable[..., TerraformRunner], workspace: Path
) -> None:
    runner = runner_for(plan_timeout_s=0.001)
    with pytest.raises(ToolTimeoutError, match="ran longer than"):
        await runner.init(workspace)


async def test_missing_binary_names_the_setting(workspace: Path, tmp_path: Path) -> None:
    def runner(binary: Path | None) -> TerraformRunner:
        return TerraformRunner(
            binary=binary,
            plugin_dir=None,
            plugin_cache_dir=tmp_path / "cache",
            cli_config_path=tmp_path / "terraform.rc",
            env={},
            plan_timeout_s=60,
            apply_timeout_s=60,
        )

    with pytest.raises(ToolNotFoundError, match="CREW_TERRAFORM_BIN"):
        await runner(None).init(workspace)
    with pytest.raises(ToolNotFoundError, match="CREW_TERRAFORM_BIN=/nonexistent/terraform"):
        await runner(Path("/nonexistent/terraform")).plan(workspace, PLAN_FILE)
    assert not (workspace / ".terraform").exists()
