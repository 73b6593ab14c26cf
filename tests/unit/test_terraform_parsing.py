"""tools/terraform.py: environment filtering, and parsing recorded `-json` output.

The last tests run TerraformRunner against a /bin/sh stand-in that prints the recorded output,
so the command lines, the CLI configuration and the environment are checked without terraform.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from crew.container import build_terraform_runner
from crew.settings import Settings
from schemas.build import DiagnosticSeverity
from schemas.errors import ToolError, ToolNotFoundError
from tests.unit.support import TF_FIXTURES, recorded_typo_line, tf_fixture
from tools.process import ProcessResult
from tools.terraform import (
    TerraformRunner,
    _apply_outcome,
    _diagnostic,
    _json_message,
    _stream_diagnostics,
    managed_addresses,
    passthrough_env,
)


def result(stdout: str, returncode: int = 0, stderr: str = "") -> ProcessResult:
    return ProcessResult(("terraform",), returncode, stdout, stderr, 1.25)


# -- environment ------------------------------------------------------------------------------


def test_passthrough_env_keeps_only_what_providers_need() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "AKIA...",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "PATH": "/usr/bin",
        "HOME": "/home/alice",
        "TF_VAR_region": "eu-west-1",
        "TF_LOG": "DEBUG",
        "HTTPS_PROXY": "http://proxy:3128",
        "OPENAI_API_KEY": "sk-...",
        "DATABASE_URL": "postgresql://u:p@db/crew",
        "CREW_DATABASE_URL": "postgresql://u:p@db/crew",
        "CREW_SLACK_BOT_TOKEN": "xoxb-...",
        "GITHUB_TOKEN": "ghp_...",
        "aws_lowercase": "x",
        "MY_AWS_THING": "x",
    }
    kept = passthrough_env(environ)
    assert kept == {
        "AWS_ACCESS_KEY_ID": "AKIA...",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "PATH": "/usr/bin",
        "HOME": "/home/alice",
        "TF_VAR_region": "eu-west-1",
        "TF_LOG": "DEBUG",
        "HTTPS_PROXY": "http://proxy:3128",
    }


# -- diagnostics ------------------------------------------------------------------------------


def test_plan_with_changes_has_no_diagnostics() -> None:
    assert _stream_diagnostics(result(tf_fixture("plan-create.jsonl"), 2)) == []


def test_plan_warning_is_parsed() -> None:
    (warning,) = _stream_diagnostics(result(tf_fixture("plan-warning.jsonl"), 2))
    assert warning.severity is DiagnosticSeverity.WARNING
    assert warning.summary == "Value for undeclared variable"
    assert 'variable named "unused_setting"' in warning.detail
    assert warning.filename is None
    assert warning.line is None


def test_plan_error_carries_its_source_range() -> None:
    (error,) = _stream_diagnostics(result(tf_fixture("plan-error.jsonl"), 1))
    assert error.severity is DiagnosticSeverity.ERROR
    assert error.summary == "Unsupported argument"
    assert error.detail == 'An argument named "acl_typo" is not expected here.'
    assert (error.filename, error.line) == ("main.tf", recorded_typo_line())


def test_failure_before_the_json_ui_keeps_stderr() -> None:
    stderr = "Error: Invalid CLI configuration\n\nThe file terraform.rc is not valid HCL.\n"
    (error,) = _stream_diagnostics(result("", 1, stderr))
    assert error.severity is DiagnosticSeverity.ERROR
    assert error.summary == "terraform exited with code 1"
    assert "Invalid CLI configuration" in error.detail


def test_failure_with_only_warnings_still_reports_an_error() -> None:
    diagnostics = _stream_diagnostics(result(tf_fixture("plan-warning.jsonl"), 1, "boom"))
    assert [d.severity for d in diagnostics] == [
        DiagnosticSeverity.WARNING,
        DiagnosticSeverity.ERROR,
    ]
    assert diagnostics[1].detail == "boom"


def test_non_json_lines_are_ignored() -> None:
    lines = "not json\n[1, 2]\n" + tf_fixture("plan-error.jsonl") + "\n\n"
    assert [d.summary for d in _stream_diagnostics(result(lines, 1))] == ["Unsupported argument"]


def test_validate_output_diagnostics() -> None:
    doc = json.loads(tf_fixture("validate-error.json"))
    assert doc["valid"] is False
    (error,) = [_diagnostic(d) for d in doc["diagnostics"]]
    assert (error.summary, error.filename, error.line) == (
        "Unsupported argument",
        "main.tf",
        recorded_typo_line(),
    )


def test_diagnostic_defaults() -> None:
    diagnostic = _diagnostic({"severity": "fatal", "summary": "x", "address": "aws_s3_bucket.a"})
    assert diagnostic.severity is DiagnosticSeverity.ERROR
    assert diagnostic.detail == ""
    assert diagnostic.address == "aws_s3_bucket.a"
    assert (diagnostic.filename, diagnostic.line) == (None, None)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"@message": "aws_s3_bucket.objects: Creating...", "type": "apply_start"}',
            "aws_s3_bucket.objects: Creating...",
        ),
        ('{"type": "version"}', None),
        ("[1]", None),
        ("plain text line", "plain text line"),
        ("   ", None),
    ],
)
def test_progress_messages(line: str, message: str | None) -> None:
    assert _json_message(line) == message


# -- apply outcomes ---------------------------------------------------------------------------


def test_apply_outcome_from_a_recorded_apply() -> None:
    outcome = _apply_outcome(result(tf_fixture("apply.jsonl"), 0))
    assert outcome.ok
    assert (outcome.added, outcome.changed, outcome.destroyed) == (16, 0, 0)
    recorded = json.loads(tf_fixture("output.json"))
    assert outcome.outputs == {name: item["value"] for name, item in recorded.items()}
    assert outcome.outputs["objects_bucket"].startswith("crew-")
    assert outcome.errors == []
    assert outcome.duration_s == 1.25


def test_apply_outcome_of_a_stale_plan() -> None:
    outcome = _apply_outcome(result(tf_fixture("apply-stale.jsonl"), 1))
    assert not outcome.ok
    assert [e.summary for e in outcome.errors] == ["Saved plan is stale"]
    assert (outcome.added, outcome.outputs) == (0, {})


def test_destroy_outcome_uses_the_last_summary() -> None:
    outcome = _apply_outcome(result(tf_fixture("destroy.jsonl"), 0))
    assert outcome.ok
    assert (outcome.added, outcome.changed, outcome.destroyed) == (0, 0, 16)
    assert outcome.outputs == {}


def test_sensitive_outputs_are_masked() -> None:
    line = json.dumps(
        {
            "type": "outputs",
            "outputs": {
                "password": {"sensitive": True, "type": "string", "value": "hunter2"},
                "endpoint": {"sensitive": False, "type": "string", "value": "db:5432"},
            },
        }
    )
    outcome = _apply_outcome(result(line, 0))
    assert outcome.outputs == {"password": "<sensitive>", "endpoint": "db:5432"}


# -- check() ----------------------------------------------------------------------------------


def runner(tmp_path: Path, binary: Path | None, plugin_dir: Path | None) -> TerraformRunner:
    return TerraformRunner(
        binary=binary,
        plugin_dir=plugin_dir,
        plugin_cache_dir=tmp_path / "cache",
        cli_config_path=tmp_path / "terraform.rc",
        env={},
        plan_timeout_s=30,
        apply_timeout_s=30,
    )


def test_check_without_terraform_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFoundError, match="CREW_TERRAFORM_BIN"):
        runner(tmp_path, None, None).check()


def test_check_with_a_missing_binary_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "bin" / "terraform"
    with pytest.raises(ToolNotFoundError, match=f"CREW_TERRAFORM_BIN={missing} does not exist"):
        runner(tmp_path, missing, None).check()


def test_check_with_a_missing_mirror_names_the_setting(tmp_path: Path) -> None:
    binary = tmp_path / "terraform"
    binary.write_text("#!/bin/sh\n")
    missing = tmp_path / "no-mirror"
    with pytest.raises(ToolNotFoundError, match=f"CREW_TF_PLUGIN_DIR={missing} does not exist"):
        runner(tmp_path, binary, missing).check()


def test_check_passes_with_binary_and_mirror(tmp_path: Path) -> None:
    binary = tmp_path / "terraform"
    binary.write_text("#!/bin/sh\n")
    assert runner(tmp_path, binary, tmp_path).check() == binary
    assert runner(tmp_path, binary, None).check() == binary


async def test_missing_binary_is_raised_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFoundError, match="CREW_TERRAFORM_BIN"):
        await runner(tmp_path, None, None).version()
    assert not (tmp_path / "terraform.rc").exists()


# -- the runner against a stand-in binary -----------------------------------------------------

FAKE_TERRAFORM = """#!/bin/sh
# Stand-in for terraform: prints recorded output; notes its argv, cwd and environment.
printf '%s\\n' "$@" > "$HOME/argv-$1"
env > "$HOME/env-$1"
pwd > "$HOME/cwd-$1"
fx="$TF_VAR_fixtures"
case "$1" in
  version) cat "$fx/version.json" ;;
  init) cat "$fx/init.jsonl" ;;
  validate) cat "$fx/validate-$VALIDATE.json"; [ "$VALIDATE" = ok ] || exit 1 ;;
  plan) cat "$fx/plan-create.jsonl"; echo plan > crew.tfplan; exit "${TF_VAR_plan_exit:-2}" ;;
  show) cat "$fx/show-plan.json" ;;
  apply) case "$2" in -destroy) cat "$fx/destroy.jsonl" ;; *) cat "$fx/apply.jsonl" ;; esac ;;
  output) cat "$fx/output.json" ;;
  state) cat "$fx/state-applied.json" ;;
  *) echo "unknown command $1" >&2; exit 64 ;;
esac
"""


@pytest.fixture
def fake_runner(tmp_path: Path) -> TerraformRunner:
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text(FAKE_TERRAFORM, encoding="utf-8")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings(data_dir=tmp_path / "data", terraform_bin=binary, tf_plugin_dir=mirror)
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TF_VAR_fixtures": str(TF_FIXTURES),
        "AWS_REGION": "eu-west-1",
        "OPENAI_API_KEY": "sk-must-not-leak",
        "DATABASE_URL": "postgresql://u:p@db/crew",
        "VALIDATE": "ok",  # not passed through: the script sees it unset
    }
    return build_terraform_runner(settings, environ)


def read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def seen(runner: TerraformRunner, what: str, command: str) -> str:
    home = Path(runner._base_env["HOME"])
    return (home / f"{what}-{command}").read_text(encoding="utf-8")


async def test_runner_commands_parse_recorded_output(
    fake_runner: TerraformRunner, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    progress: list[str] = []

    assert await fake_runner.version() == "1.11.4"
    init = await fake_runner.init(workspace, progress.append)
    assert init.ok
    assert [w.summary for w in init.warnings] == ["Incomplete lock file information for providers"]
    assert "Terraform has been successfully initialized!" in progress

    plan = await fake_runner.plan(workspace, "crew.tfplan", progress.append)
    assert plan.ok
    assert plan.has_changes
    assert "Plan: 16 to add, 0 to change, 0 to destroy." in progress
    assert (workspace / "crew.tfplan").exists()
    assert seen(fake_runner, "argv", "plan").split() == [
        "plan",
        "-json",
        "-input=false",
        "-no-color",
        "-detailed-exitcode",
        "-out=crew.tfplan",
    ]
    assert seen(fake_runner, "cwd", "plan").strip() == str(workspace)

    shown = await fake_runner.show_plan(workspace, "crew.tfplan")
    # 16 resources to create, and the two policy documents read at apply time
    assert len(shown["resource_changes"]) == 18

    applied = await fake_runner.apply(workspace, "crew.tfplan")
    assert (applied.ok, applied.added) == (True, 16)
    assert seen(fake_runner, "argv", "apply").split()[-1] == "crew.tfplan"
    assert "-auto-approve" in seen(fake_runner, "argv", "apply").split()
    # after a crash, the resumed run waits for the orphaned apply's state lock
    assert "-lock-timeout=1800s" in seen(fake_runner, "argv", "apply").split()

    outputs = await fake_runner.outputs(workspace)
    recorded = json.loads(tf_fixture("output.json"))
    assert outputs["objects_bucket"] == recorded["objects_bucket"]["value"]

    state = await fake_runner.state_pull(workspace)
    assert managed_addresses(state) >= {"aws_s3_bucket.objects", "aws_kms_key.stack"}
    assert len(managed_addresses(state)) == 16
    assert seen(fake_runner, "argv", "state").split() == ["state", "pull"]

    destroyed = await fake_runner.destroy(workspace, targets=["aws_s3_bucket.objects"])
    assert (destroyed.ok, destroyed.destroyed) == (True, 16)
    argv = seen(fake_runner, "argv", "apply").split()
    assert argv[:2] == ["apply", "-destroy"]
    assert argv[-1] == "-target=aws_s3_bucket.objects"

    # every step streamed its output to a log file in the workspace, as it ran, beside the
    # raw output terraform wrote to a file (not a pipe: it must survive a crash of crew)
    steps = {"init", "plan", "show", "apply", "output", "state-pull", "destroy"}
    logs = {p.name: p.read_text() for p in (workspace / "logs").iterdir()}
    assert set(logs) == {f"{step}.{kind}" for step in steps for kind in ("log", "stdout", "stderr")}
    assert "Apply complete! Resources: 16 added" in logs["apply.stdout"]
    assert "Plan: 16 to add, 0 to change, 0 to destroy." in logs["plan.log"]
    assert "Apply complete! Resources: 16 added" in logs["apply.log"]
    assert "exit 0 after" in logs["init.log"]


async def test_runner_environment_and_cli_config(fake_runner: TerraformRunner) -> None:
    await fake_runner.version()
    env = dict(
        line.split("=", 1)
        for line in seen(fake_runner, "env", "version").splitlines()
        if "=" in line
    )
    assert "OPENAI_API_KEY" not in env
    assert "DATABASE_URL" not in env
    assert "VALIDATE" not in env
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["TF_IN_AUTOMATION"] == "1"
    assert env["TF_INPUT"] == "0"
    assert env["CHECKPOINT_DISABLE"] == "1"
    config = read_text(env["TF_CLI_CONFIG_FILE"])
    # with a mirror, workspaces link straight to it: no shared plugin cache to race on
    assert "plugin_cache_dir" not in config
    assert f"path    = {json.dumps(str(fake_runner.plugin_dir))}" in config
    assert 'exclude = ["registry.terraform.io/*/*"]' in config  # never the public registry


async def test_validate_without_json_is_a_tool_error(
    fake_runner: TerraformRunner, tmp_path: Path
) -> None:
    # VALIDATE is not passed through, so the stand-in cats validate-.json: no JSON at all
    with pytest.raises(ToolError, match="terraform validate printed no JSON"):
        await fake_runner.validate(tmp_path)


async def test_validate_error_diagnostics(fake_runner: TerraformRunner, tmp_path: Path) -> None:
    fake_runner._base_env["VALIDATE"] = "error"
    checked = await fake_runner.validate(tmp_path)
    assert not checked.ok
    assert [(e.summary, e.line) for e in checked.errors] == [
        ("Unsupported argument", recorded_typo_line())
    ]


async def test_the_observer_counts_a_plan_with_changes_as_a_success(
    fake_runner: TerraformRunner, tmp_path: Path
) -> None:
    """`plan -detailed-exitcode` exits 2 for changes: metrics once called every plan an error."""
    seen_commands: list[tuple[str, bool]] = []
    fake_runner.observer = lambda command, _seconds, ok: seen_commands.append((command, ok))
    workspace = tmp_path / "ws"
    workspace.mkdir()

    assert (await fake_runner.plan(workspace, "crew.tfplan")).has_changes
    fake_runner._base_env["TF_VAR_plan_exit"] = "0"
    assert not (await fake_runner.plan(workspace, "crew.tfplan")).has_changes
    fake_runner._base_env["TF_VAR_plan_exit"] = "1"
    assert not (await fake_runner.plan(workspace, "crew.tfplan")).ok
    fake_runner._base_env["VALIDATE"] = "error"
    assert not (await fake_runner.validate(workspace)).ok  # exit 1 is an error elsewhere too

    assert seen_commands == [("plan", True), ("plan", True), ("plan", False), ("validate", False)]


def test_without_a_mirror_the_cli_config_shares_one_plugin_cache(tmp_path: Path) -> None:
    tf = runner(tmp_path, Path("/bin/true"), None)
    tf._ensure_cli_config()
    config = (tmp_path / "terraform.rc").read_text(encoding="utf-8")
    assert f"plugin_cache_dir = {json.dumps(str(tmp_path / 'cache'))}" in config
    # workspaces have no lock file: without this terraform would not use the cache at all
    assert "plugin_cache_may_break_dependency_lock_file = true" in config
    assert "filesystem_mirror" not in config
    assert (tmp_path / "cache").is_dir()
