"""Forge end to end against moto: build (render, guard, init, validate, plan), apply exactly
the plan file, check what exists with boto3, roll back, check it is gone; an apply moto
rejects rolls back to the previous revision within the SLA; two applies to one stack never
interleave. Real terraform, real Postgres (ledger, stack locks), moto as the cloud."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from crew.container import Services
from fixtures.plans import c, quick_components
from memory.locks import StackLockedError, StackLocks
from nodes import forge
from schemas.states import ConductorState
from tests.integration.forge_support import (
    approved,
    aws,
    initial,
    new_run,
    stack_plan,
    step,
)
from tools.stack import StackKey
from tools.terraform import managed_addresses

pytestmark = pytest.mark.integration

S = ConductorState


def read_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def first_and_last_line_times(log: Path) -> tuple[str, str]:
    """Timestamps (ISO, sortable) of the first and last terraform output lines of a step."""
    stamps = [ln.split(" ", 1)[0] for ln in log.read_text().splitlines() if ln[:4].isdigit()]
    return stamps[0], stamps[-1]


async def test_quick_stack_plan_apply_check_roll_back(
    services: Services, moto_endpoint: str
) -> None:
    ctx = services.context
    run_id = await new_run(services)
    plan = stack_plan(quick_components(), goal_id=run_id)

    state = await step(forge.build, initial(run_id, plan), ctx)
    build = state["build"]
    assert build is not None
    assert build.ok, build.errors
    workspace = Path(build.workspace)
    assert workspace == services.settings.workspaces_dir / run_id / "r1"
    assert (build.plan.create, build.plan.update, build.plan.delete) == (40, 0, 0)
    assert (workspace / "plan.json").is_file()
    assert "Plan: 40 to add" in (workspace / "logs" / "plan.log").read_text()

    state = await step(forge.apply, approved(state), ctx)
    result = state["apply_result"]
    assert result is not None
    assert result.ok, result.error
    assert state["conductor_state"] is S.DONE
    assert result.resources.added == 40
    assert read_json(Path(result.state_snapshot or "")) == {}
    out = result.outputs
    region = "eu-west-1"

    ec2 = aws("ec2", moto_endpoint)
    vpc_id = out["net_id"]
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == "10.0.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert len(subnets) == 4
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    by_name = {g["GroupName"]: g for g in groups["SecurityGroups"]}
    prefix = StackKey(run_id, region).name_prefix
    sweeper = by_name[f"{prefix}-sweeper"]
    assert sweeper["IpPermissions"] == []
    assert [
        (p["FromPort"], p["IpRanges"][0]["CidrIp"]) for p in sweeper["IpPermissionsEgress"]
    ] == [(443, "0.0.0.0/0")]
    assert by_name["default"]["IpPermissions"] == []
    assert by_name["default"]["IpPermissionsEgress"] == []

    s3 = aws("s3", moto_endpoint)
    bucket = out["files_bucket"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == out["kms_key_arn"]
    blocked = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(blocked.values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Effect"] == "Deny"

    sqs = aws("sqs", moto_endpoint)
    attributes = sqs.get_queue_attributes(QueueUrl=out["jobs_url"], AttributeNames=["All"])
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f"{prefix}-jobs-dlq")
    assert int(redrive["maxReceiveCount"]) == 5
    assert attributes["Attributes"]["SqsManagedSseEnabled"] == "true"

    iam = aws("iam", moto_endpoint)
    role_name = out["app_role_arn"].rsplit("/", 1)[1]
    document = iam.get_role_policy(RoleName=role_name, PolicyName="least-privilege")
    granted = document["PolicyDocument"]["Statement"]
    resources = {
        r
        for s in granted
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    assert out["jobs_arn"] in resources
    assert f"arn:aws:s3:::{bucket}/*" in resources
    assert "*" not in resources

    # a human rolls the DONE run back: everything it created goes
    state = await step(forge.rollback, {**state, "conductor_state": S.ROLLBACK}, ctx)
    undone = state["rollback_result"]
    assert undone is not None
    assert undone.ok, undone.error
    assert state["conductor_state"] is S.DONE
    assert undone.restored == "empty stack"
    assert undone.resources.destroyed == 40
    assert (undone.failure_at, undone.sla_met) == (None, None)
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not any(prefix in u for u in sqs.list_queues().get("QueueUrls", []))
    assert not any(r["RoleName"].startswith(prefix) for r in iam.list_roles()["Roles"])
    assert managed_addresses(await ctx.terraform.state_pull(workspace)) == set()


async def test_an_apply_moto_rejects_rolls_back_to_the_previous_revision(
    services: Services, moto_endpoint: str
) -> None:
    ctx = services.context
    run_id = await new_run(services)
    prefix = StackKey(run_id, "eu-west-1").name_prefix
    files = c("s3_bucket", "files", force_destroy=True, access_logging=False)
    app = c(
        "iam_role",
        "app",
        service="lambda.amazonaws.com",
        grants=[{"component": "files", "access": "read"}],
    )
    first = stack_plan([files, app], goal_id=run_id)
    state = await step(forge.build, initial(run_id, first), ctx)
    state = await step(forge.apply, approved(state), ctx)
    assert state["conductor_state"] is S.DONE, state.get("error")
    r1 = Path(state["build"].workspace)  # type: ignore[union-attr]
    revision_one = managed_addresses(await ctx.terraform.state_pull(r1))
    bucket = state["apply_result"].outputs["files_bucket"]  # type: ignore[union-attr]

    # Someone created a role with the name revision 2 will want: AWS (moto) refuses ours.
    iam = aws("iam", moto_endpoint)
    iam.create_role(RoleName=f"{prefix}-worker", AssumeRolePolicyDocument="{}")
    second = stack_plan(
        [
            c("s3_bucket", "files", force_destroy=True, access_logging=False, versioning=False),
            app,
            c("iam_role", "reporter", service="lambda.amazonaws.com"),
            c("iam_role", "worker", service="lambda.amazonaws.com"),
        ],
        goal_id=run_id,
        revision=2,
    )
    # Revision 2 of the run (revisions are not a product feature yet: starting one would
    # reset the run's apply ledger, as this does).
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE crew_runs SET apply_started_at = NULL WHERE run_id = %s", (run_id,)
        )
    state = {**state, "plan": second, "revision": 2, "conductor_state": S.IN_PROGRESS}
    state = await step(forge.build, state, ctx)
    assert state["build"].ok, state["build"].errors  # type: ignore[union-attr]
    assert state["build"].plan.update == 1  # type: ignore[union-attr]
    state = await step(forge.apply, approved(state), ctx)
    failed = state["apply_result"]
    assert failed is not None
    assert state["conductor_state"] is S.ROLLBACK
    assert "EntityAlreadyExists" in (failed.error or ""), failed.error
    assert failed.failure_at is not None
    r2 = Path(state["build"].workspace)  # type: ignore[union-attr]
    assert r2.name == "r2"
    assert f"{prefix}-reporter" in {r["RoleName"] for r in iam.list_roles()["Roles"]}

    state = await step(forge.rollback, state, ctx)
    undone = state["rollback_result"]
    assert undone is not None
    assert undone.ok, undone.error
    assert state["conductor_state"] is S.DONE
    assert undone.restored == "revision 1"
    # the stack is exactly revision 1 again
    assert managed_addresses(await ctx.terraform.state_pull(r1)) == revision_one
    roles = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert f"{prefix}-reporter" not in roles  # revision 2 made it: gone
    assert f"{prefix}-worker" in roles  # not ours: untouched
    assert f"{prefix}-app" in roles
    versioning = aws("s3", moto_endpoint).get_bucket_versioning(Bucket=bucket)
    assert versioning["Status"] == "Enabled"  # revision 2's change reverted
    assert (r2 / "snapshots" / "post-failure.tfstate").is_file()
    # SLA: began < 5 min and finished < 15 min after the failure
    assert undone.failure_at == failed.failure_at
    assert undone.rollback_started_at is not None
    assert undone.rollback_finished_at is not None
    assert (undone.rollback_started_at - failed.failure_at).total_seconds() < 300
    assert (undone.rollback_finished_at - failed.failure_at).total_seconds() < 900
    assert undone.sla_met is True
    # clean up: roll back revision 1 itself (its snapshot is the empty stack)
    iam.delete_role(RoleName=f"{prefix}-worker")
    revision_one_build = state["build"].model_copy(update={"workspace": str(r1)})  # type: ignore[union-attr]
    cleanup = {**state, "plan": first, "build": revision_one_build, "apply_result": None}
    assert (await step(forge.rollback, cleanup, ctx))["rollback_result"].ok  # type: ignore[union-attr]


async def test_two_applies_to_one_stack_never_interleave(
    services: Services, moto_endpoint: str
) -> None:
    ctx = services.context
    first_run, second_run = await new_run(services), await new_run(services)
    stack = f"{first_run}-shared"  # both runs' plans target one stack
    plans = {
        first_run: stack_plan(
            [c("iam_role", "alpha", service="lambda.amazonaws.com")], goal_id=stack
        ),
        second_run: stack_plan(
            [c("iam_role", "beta", service="lambda.amazonaws.com")], goal_id=stack
        ),
    }
    states = {r: await step(forge.build, initial(r, p), ctx) for r, p in plans.items()}
    assert all(s["build"].ok for s in states.values())  # type: ignore[union-attr]

    done = await asyncio.gather(*(step(forge.apply, approved(s), ctx) for s in states.values()))
    outcomes = {s["run_id"]: s for s in done}
    logs = {
        r: Path(s["build"].workspace) / "logs" / "apply.log"  # type: ignore[union-attr]
        for r, s in outcomes.items()
        if (Path(s["build"].workspace) / "logs" / "apply.log").is_file()  # type: ignore[union-attr]
    }
    applied = [r for r, s in outcomes.items() if s["apply_result"].ok]  # type: ignore[union-attr]
    assert len(applied) == 1, {r: s["apply_result"] for r, s in outcomes.items()}
    (winner,) = applied
    (loser,) = set(outcomes) - {winner}
    # the loser waited for the lock, then terraform refused its plan: the state had moved on
    assert "Saved plan is stale" in (outcomes[loser]["apply_result"].error or "")  # type: ignore[union-attr]
    assert set(logs) == {winner, loser}
    won = first_and_last_line_times(logs[winner])
    lost = first_and_last_line_times(logs[loser])
    assert won[1] <= lost[0], f"applies interleaved: {won} vs {lost}"
    # its rollback has nothing to undo and leaves the winner's role alone
    rolled = await step(forge.rollback, outcomes[loser], ctx)
    assert rolled["rollback_result"].ok  # type: ignore[union-attr]
    assert rolled["rollback_result"].restored == "nothing to undo: the apply created nothing"  # type: ignore[union-attr]
    prefix = StackKey(stack, "eu-west-1").name_prefix
    roles = {r["RoleName"] for r in aws("iam", moto_endpoint).list_roles()["Roles"]}
    assert f"{prefix}-alpha" in roles or f"{prefix}-beta" in roles

    # a try-lock names the holder, and nothing is applied while someone holds the stack
    locks = StackLocks(services.conninfo)
    stack_id = StackKey(stack, "eu-west-1").id
    async with locks.hold(
        stack_id, run_id="run-holding-it", worker_id="w-1", operation="apply", wait_s=0
    ):
        with pytest.raises(StackLockedError, match="locked by run run-holding-it \\(apply by w-1"):
            async with locks.hold(
                stack_id, run_id="x", worker_id="w-2", operation="plan", wait_s=0
            ):
                pytest.fail("a second holder got the lock")
    assert await locks.holder(stack_id) is None
    cleanup = await step(forge.rollback, outcomes[winner], ctx)
    assert cleanup["rollback_result"].ok  # type: ignore[union-attr]
