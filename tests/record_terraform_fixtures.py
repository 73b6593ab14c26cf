"""Re-record tests/fixtures/terraform/ from real terraform runs against moto.

    .venv/bin/python -m tests.record_terraform_fixtures          # all but apply-errored
    .venv/bin/python -m tests.record_terraform_fixtures errored  # apply-errored.jsonl only

Renders examples/artifacts/PlanSpec.json with Forge's templates, starts moto on a free
loopback port and runs the commands the unit tests replay (see the README there). Needs
terraform and the provider mirror, like the integration tests. Not a test itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from moto.server import ThreadedMotoServer

from crew.settings import detect_plugin_dir
from schemas.plan import PlanSpec
from tests.conftest import free_port
from tests.unit.support import ARTIFACT_EXAMPLES, TF_FIXTURES
from tools.stack import StackKey
from tools.workspace import write_workspace

#: The argument the error fixtures add to the bucket: terraform rejects it.
TYPO = '  acl_typo = "private"'


def _cli_config(directory: Path) -> Path:
    mirror = detect_plugin_dir()
    assert mirror is not None, "no provider mirror found (set CREW_TF_PLUGIN_DIR)"
    path = directory / "terraform.rc"
    path.write_text(
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {json.dumps(str(mirror))}\n"
        '    include = ["registry.terraform.io/*/*"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n',
        encoding="utf-8",
    )
    return path


def record(*, errored_only: bool = False) -> None:
    plan = PlanSpec.model_validate_json((ARTIFACT_EXAMPLES / "PlanSpec.json").read_text())
    root = Path(tempfile.mkdtemp(prefix="crew-record-"))
    workspace = root / "ws"
    write_workspace(plan, workspace)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "TF_CLI_CONFIG_FILE": str(_cli_config(root)),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": plan.region,
    }

    def run(name: str | None, *args: str, expect: int = 0, pretty: bool = False) -> str:
        done = subprocess.run(
            ["terraform", *args],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
        if name is not None:
            text = json.dumps(json.loads(done.stdout), indent=2) + "\n" if pretty else done.stdout
            (TF_FIXTURES / name).write_text(text, encoding="utf-8")
        return done.stdout

    plan_args = ("plan", "-json", "-input=false", "-no-color", "-detailed-exitcode")
    apply = ("apply", "-json", "-input=false", "-no-color", "-auto-approve")
    if errored_only:
        try:
            _record_errored(plan, env, run, plan_args, apply)
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
        return
    try:
        run("version.json", "version", "-json")
        run("init.jsonl", "init", "-json", "-input=false", "-no-color")
        run("validate-ok.json", "validate", "-json", "-no-color")
        run("state-empty.json", "state", "pull")
        run("plan-create.jsonl", *plan_args, "-out=crew.tfplan", expect=2)
        run("show-plan.json", "show", "-json", "-no-color", "crew.tfplan", pretty=True)
        (workspace / "terraform.tfvars").write_text('unused_setting = "x"\n', encoding="utf-8")
        run("plan-warning.jsonl", *plan_args, "-out=warning.tfplan", expect=2)
        (workspace / "terraform.tfvars").unlink()
        run("apply.jsonl", *apply, "crew.tfplan")
        run("output.json", "output", "-json", "-no-color", pretty=True)
        run("state-applied.json", "state", "pull", pretty=True)
        run("apply-stale.jsonl", *apply, "warning.tfplan", expect=1)
        run("destroy.jsonl", "apply", "-destroy", *apply[1:])
        main = workspace / "main.tf"
        good = main.read_text(encoding="utf-8")
        lines = good.splitlines()
        at = lines.index('resource "aws_s3_bucket" "objects" {') + 1
        main.write_text("\n".join([*lines[:at], TYPO, *lines[at:]]) + "\n", encoding="utf-8")
        run("validate-error.json", "validate", "-json", "-no-color", expect=1, pretty=True)
        run("plan-error.jsonl", *plan_args, "-out=error.tfplan", expect=1)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _record_errored(
    plan: PlanSpec,
    env: dict[str, str],
    run: Callable[..., str],
    plan_args: tuple[str, ...],
    apply: tuple[str, ...],
) -> None:
    """`apply-errored.jsonl`: the KMS alias the plan creates already exists (made with boto3
    first), so AWS refuses it (apply_errored) while the rest of the stack is created."""
    import boto3

    kms = boto3.client(
        "kms",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=plan.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{StackKey.of(plan).name_prefix}", TargetKeyId=key)
    run(None, "init", "-json", "-input=false", "-no-color")
    run(None, *plan_args, "-out=crew.tfplan", expect=2)
    run("apply-errored.jsonl", *apply, "crew.tfplan", expect=1)


if __name__ == "__main__":
    record(errored_only=sys.argv[1:] == ["errored"])
    print(f"recorded into {TF_FIXTURES}")
