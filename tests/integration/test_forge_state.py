"""Where state lives: the S3 backend (bucket + DynamoDB lock table, or an S3 lock file) in
moto, as a team would configure it; and the RDS-heavy case (slow: moto takes its time)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crew.container import Services, build_state_backend, node_config
from fixtures.plans import c
from nodes import forge
from schemas.states import ConductorState
from tests.conftest import free_port
from tests.integration.forge_support import approved, aws, initial, new_run, stack_plan, step
from tools.stack import StackKey

pytestmark = pytest.mark.integration

S = ConductorState
STATE_BUCKET = "crew-tf-state"
LOCK_TABLE = "crew-tf-locks"


@pytest.fixture(scope="module")
def state_store(moto_endpoint: str) -> str:
    """The team's state bucket and lock table, in moto."""
    aws("s3", moto_endpoint).create_bucket(
        Bucket=STATE_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    aws("dynamodb", moto_endpoint).create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return STATE_BUCKET


async def test_state_in_s3_for_teams(
    services: Services, moto_endpoint: str, state_store: str
) -> None:
    """DynamoDB locking (the lock-file variant is the same path with `use_lockfile=true`;
    tests/unit/test_workspace.py checks its settings)."""
    locking = "dynamodb"
    settings = services.settings.model_copy(
        update={
            "tf_backend": "s3",
            "tf_state_bucket": state_store,
            "tf_state_key_prefix": "teams/platform",
            "tf_state_region": "eu-west-1",
            "tf_state_dynamodb_table": LOCK_TABLE if locking == "dynamodb" else None,
            "tf_state_use_lockfile": locking == "lockfile",
            "tf_state_use_path_style": True,
        }
    )
    ctx = dataclasses.replace(
        services.context,
        config=node_config(settings),
        state_backend=build_state_backend(settings),
    )
    run_id = await new_run(services)
    plan = stack_plan([c("iam_role", "svc", service="lambda.amazonaws.com")], goal_id=run_id)
    state = await step(forge.build, initial(run_id, plan), ctx)
    assert state["build"].ok, state["build"].errors  # type: ignore[union-attr]
    versions = (Path(state["build"].workspace) / "versions.tf").read_text()  # type: ignore[union-attr]
    assert 'backend "s3" {' in versions
    state = await step(forge.apply, approved(state), ctx)
    assert state["conductor_state"] is S.DONE, state.get("error")

    key = f"teams/platform/{StackKey.of(plan).id}/terraform.tfstate"
    s3 = aws("s3", moto_endpoint)
    stored = json.loads(s3.get_object(Bucket=state_store, Key=key)["Body"].read())
    managed = [r["type"] for r in stored["resources"] if r["mode"] == "managed"]
    assert managed == ["aws_iam_role"]
    assert not (settings.tf_state_dir / StackKey.of(plan).id).exists(), "no local state"
    if locking == "dynamodb":
        items = aws("dynamodb", moto_endpoint).scan(TableName=LOCK_TABLE)["Items"]
        assert f"{state_store}/{key}-md5" in {i["LockID"]["S"] for i in items}

    state = await step(forge.rollback, {**state, "conductor_state": S.ROLLBACK}, ctx)
    assert state["rollback_result"].ok, state["rollback_result"].error  # type: ignore[union-attr]
    emptied = json.loads(s3.get_object(Bucket=state_store, Key=key)["Body"].read())
    assert [r for r in emptied["resources"] if r["mode"] == "managed"] == []


@pytest.fixture
def own_moto(monkeypatch: pytest.MonkeyPatch, aws_env: dict[str, str]) -> Iterator[str]:
    """A moto of its own: moto gives every DB instance the same resource id, and the AWS
    provider finds instances by it, so an RDS test must not share moto with another."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.mark.slow
async def test_postgres_in_private_subnets_end_to_end(
    own_moto: str, database_url: str, make_settings: object
) -> None:
    from crew.container import open_services

    settings = make_settings(database_url=database_url)  # type: ignore[operator]
    async with open_services(settings, role="test") as services:
        ctx = services.context
        run_id = await new_run(services)
        plan = stack_plan(
            [
                c("vpc", "net", nat="none", flow_logs=False),
                c("ecs_scheduled_task", "job", grants=[{"component": "db", "access": "read"}]),
                c("rds_postgres", "db", allow_from=["job"], backup_retention_days=3),
            ],
            goal_id=run_id,
        )
        state = await step(forge.build, initial(run_id, plan), ctx)
        assert state["build"].ok, state["build"].errors  # type: ignore[union-attr]
        state = await step(forge.apply, approved(state), ctx)
        assert state["conductor_state"] is S.DONE, state.get("error")

        rds = aws("rds", own_moto)
        (db,) = rds.describe_db_instances()["DBInstances"]
        assert db["DBInstanceIdentifier"] == f"{StackKey.of(plan).name_prefix}-db"
        assert db["StorageEncrypted"] is True
        assert db["PubliclyAccessible"] is False
        assert db["MasterUserSecret"]["SecretStatus"] == "active"
        assert db["BackupRetentionPeriod"] == 3
        groups = {g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]}
        ec2 = aws("ec2", own_moto)
        (group,) = ec2.describe_security_groups(GroupIds=list(groups))["SecurityGroups"]
        (ingress,) = group["IpPermissions"]
        assert ingress["FromPort"] == 5432
        assert [p["GroupId"] for p in ingress["UserIdGroupPairs"]] != []
        assert ingress["IpRanges"] == []

        state = await step(forge.rollback, {**state, "conductor_state": S.ROLLBACK}, ctx)
        assert state["rollback_result"].ok, state["rollback_result"].error  # type: ignore[union-attr]
        assert rds.describe_db_instances()["DBInstances"] == []
