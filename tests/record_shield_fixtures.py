"""Record tests/fixtures/shield/ from a real terraform apply against moto.

    .venv/bin/python -m tests.record_shield_fixtures

A stack with a VPC and an RDS PostgreSQL pinned to 16.2 (the catalog's minor pin), rendered by
Forge's templates and applied on a moto server on a free loopback port: its PlanSpec, its state
(`terraform state pull`) and the workspace's provider lock file are what Shield-Lite's tests
read as a deployed stack (the inventory reads `engine_version_actual` from the state, the AWS
provider version from the lock file). Not a test itself; needs terraform and the mirror.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from moto.server import ThreadedMotoServer

from fixtures.plans import c, plan_of
from tests.conftest import free_port
from tests.record_terraform_fixtures import _cli_config
from tools.workspace import write_workspace

SHIELD_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "shield"


def record() -> None:
    plan = plan_of(
        [
            c("vpc", "net", nat="none", flow_logs=False),
            c("rds_postgres", "orders", engine_version="16.2", backup_retention_days=1),
        ],
        goal_id="orders-api",
        tags={"team": "orders"},
    )
    root = Path(tempfile.mkdtemp(prefix="crew-record-shield-"))
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

    def run(*args: str) -> str:
        done = subprocess.run(
            ["terraform", *args],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout

    try:
        run("init", "-input=false", "-no-color")
        run("apply", "-input=false", "-no-color", "-auto-approve")
        state = json.loads(run("state", "pull"))
        SHIELD_FIXTURES.mkdir(parents=True, exist_ok=True)
        (SHIELD_FIXTURES / "state-rds.json").write_text(json.dumps(state, indent=2) + "\n")
        (SHIELD_FIXTURES / "plan-rds.json").write_text(
            json.dumps(plan.model_dump(mode="json"), indent=2) + "\n"
        )
        (SHIELD_FIXTURES / "workspace").mkdir(exist_ok=True)
        shutil.copy(workspace / ".terraform.lock.hcl", SHIELD_FIXTURES / "workspace")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    record()
    print(f"recorded into {SHIELD_FIXTURES}")
