"""Workload shapes end to end on moto: goal -> Atlas -> Forge -> Sentinel -> gate -> approve ->
apply -> what exists (boto3) -> rollback -> nothing left. One apply and one rollback per shape,
every assertion on that one run (CI time).

- the README's headline example (`examples/goal-web-api.json`: ALB, an autoscaling ECS
  service, multi-AZ Postgres). moto 5.2 lacks Application Auto Scaling's
  `ListTagsForResource`; the session's moto answers it (tests/moto_server.py), so the apply
  finishes instead of retrying until CREW_APPLY_TIMEOUT_S.
- the serverless API (API Gateway HTTP API -> Lambda -> DynamoDB) with a scheduled function
  beside it (EventBridge rule -> Lambda), planned from a description that asks for both in
  words, with checkov and trivy both active at the gate.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from crew.container import Services, open_services
from crew.service import decide, request_rollback, run_detail, submit_goal
from crew.settings import Settings
from crew.worker import Worker
from schemas.approval import Channel, Decision
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec, RequirementStatus
from schemas.states import ConductorState
from schemas.validation import Verdict
from tests.conftest import example_goal
from tests.integration.forge_support import aws
from tools.stack import StackKey

pytestmark = pytest.mark.integration

S = ConductorState
#: An apply that retried a missing moto API would hit this instead of the 30-minute default.
APPLY_TIMEOUT_S = 900


@pytest.fixture
async def crew(
    aws_env: dict[str, str], database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Services]:
    settings = make_settings(database_url=database_url, apply_timeout_s=APPLY_TIMEOUT_S)
    async with open_services(settings, role="test") as svc:
        yield svc


async def drive(services: Services, run_id: str) -> ConductorState:
    """Lease the run and drive it to its next stop, as a worker does; always let go."""
    worker = Worker(services)
    run = await services.runs.claim(run_id, worker.worker_id, services.settings.lease_ttl_s)
    assert run is not None, f"run {run_id} could not be leased"
    try:
        return await worker.drive(run)
    finally:
        await services.runs.release(run_id, worker.worker_id)


async def to_the_gate(services: Services, goal: GoalStatement) -> tuple[str, PlanSpec]:
    record, _ = await submit_goal(services, goal, actor="local")
    state = await drive(services, record.run_id)
    detail = await run_detail(services, record.run_id, with_audit=False)
    assert state is S.WAIT_FOR_APPROVE, (detail.error, detail.artifacts.validation)
    report = detail.artifacts.validation
    assert report is not None
    assert report.verdict is Verdict.PASS, report.reasons
    assert {"checkov:hcl", "checkov:plan", "trivy"} <= set(report.checks_run)
    assert not [f for f in report.findings if f.blocking]
    plan = detail.artifacts.plan
    assert plan is not None
    return record.run_id, plan


async def apply(services: Services, run_id: str) -> dict[str, Any]:
    await decide(services, run_id, Decision.APPROVE, actor="alice", channel=Channel.CLI)
    state = await drive(services, run_id)
    detail = await run_detail(services, run_id, with_audit=False)
    assert state is S.DONE, (detail.error, detail.artifacts.apply_result)
    applied = detail.artifacts.apply_result
    assert applied is not None
    assert applied.ok, applied.error
    return dict(applied.outputs)


async def roll_back(services: Services, run_id: str) -> int:
    await request_rollback(services, run_id, actor="alice", channel=Channel.CLI)
    state = await drive(services, run_id)
    detail = await run_detail(services, run_id, with_audit=False)
    assert state is S.DONE, (detail.error, detail.artifacts.rollback_result)
    undone = detail.artifacts.rollback_result
    assert undone is not None
    assert undone.ok, undone.error
    assert undone.restored == "empty stack"
    return undone.resources.destroyed


def goal_of(data: dict[str, Any]) -> GoalStatement:
    return GoalStatement.model_validate(
        {**data, "goal_id": f"{data.get('goal_id', 'shape')}-{os.urandom(3).hex()}"}
    )


async def test_the_readme_headline_example_applies_and_rolls_back_on_moto(
    crew: Services, moto_endpoint: str
) -> None:
    """The example is a prod goal: its database and load balancer carry deletion protection,
    so the rollback stops at them and pages a human (as on AWS); the human lifts the
    protection and finishes the destroy."""
    run_id, plan = await to_the_gate(crew, goal_of(example_goal("goal-web-api.json")))
    types = {c.type for c in plan.components}
    assert {"alb", "ecs_service", "rds_postgres"} <= types
    outputs = await apply(crew, run_id)

    prefix = StackKey.of(plan).name_prefix
    scaling = aws("application-autoscaling", moto_endpoint)
    (target,) = [
        t
        for t in scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
        if t["ResourceId"].endswith(f"/{prefix}-api")
    ]
    assert target["MinCapacity"] >= 2  # multi-AZ: at least two tasks
    tags = scaling.list_tags_for_resource(ResourceARN=target["ScalableTargetARN"])["Tags"]
    assert tags["team"] == "orders"  # the goal's required tags reached the target
    rds = aws("rds", moto_endpoint)
    (db,) = rds.describe_db_instances(DBInstanceIdentifier=f"{prefix}-db")["DBInstances"]
    assert db["MultiAZ"]
    assert db["StorageEncrypted"]
    assert not db["PubliclyAccessible"]
    assert db["DeletionProtection"]
    assert outputs["lb_dns_name"]

    await request_rollback(crew, run_id, actor="alice", channel=Channel.CLI)
    assert await drive(crew, run_id) is S.FAILED
    undone = (await run_detail(crew, run_id, with_audit=False)).artifacts.rollback_result
    assert undone is not None
    assert undone.page_human
    assert "protected" in (undone.error or "")
    assert "aws_db_instance.db" in (undone.remaining or [])

    # the human: lift the protection, finish the destroy
    rds.modify_db_instance(DBInstanceIdentifier=f"{prefix}-db", DeletionProtection=False)
    elb = aws("elbv2", moto_endpoint)
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        if lb["LoadBalancerName"].startswith(prefix):
            elb.modify_load_balancer_attributes(
                LoadBalancerArn=lb["LoadBalancerArn"],
                Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}],
            )
    workspace = crew.settings.workspaces_dir / run_id / f"r{plan.revision}"
    finished = await crew.context.terraform.destroy(workspace)
    assert finished.ok, finished
    assert not [
        t
        for t in scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
        if t["ResourceId"].endswith(f"/{prefix}-api")
    ]
    assert not [
        d
        for d in rds.describe_db_instances()["DBInstances"]
        if d["DBInstanceIdentifier"].startswith(prefix)
    ]


SERVERLESS_GOAL: dict[str, Any] = {
    "schema_version": "0.1",
    "title": "Device registry",
    "description": "A serverless HTTP API on API Gateway: Lambda functions that keep device "
    "state in a DynamoDB table, about 50 requests per second. Logs kept 90 days. Every night "
    "at 03:00 a function removes stale devices.",
    "cloud": "aws",
    "region": "eu-west-1",
    "environment": "dev",
    "budget": {"monthly_usd": 200},
    "constraints": {"required_tags": {"team": "devices"}},
    "requested_by": "carol@example.com",
    "goal_id": "devices-serverless",
}


async def test_a_serverless_api_goal_applies_and_rolls_back_on_moto(
    crew: Services, moto_endpoint: str
) -> None:
    run_id, plan = await to_the_gate(crew, goal_of(SERVERLESS_GOAL))
    by_type = {c.type: c for c in plan.components}
    shape = {"http_api", "lambda_function", "dynamodb_table", "s3_bucket", "cloudwatch_alarms"}
    assert set(by_type) == shape
    status = {r.ask.name: r.status for r in plan.requirements}
    asked = (
        "workload.api",
        "compute.serverless",
        "store.nosql",
        "edge.api_gateway",
        "throughput.rps",
        "retention.logs",
        "schedule",
    )
    for ask in asked:
        assert status[ask] is RequirementStatus.MET, (ask, plan.requirements)
    assert not [r for r in plan.requirements if r.status is RequirementStatus.UNSUPPORTED]

    outputs = await apply(crew, run_id)
    prefix = StackKey.of(plan).name_prefix

    lam = aws("lambda", moto_endpoint)
    fn = lam.get_function(FunctionName=outputs["handler_function_name"])
    config = fn["Configuration"]
    assert fn["Concurrency"]["ReservedConcurrentExecutions"] >= 10
    assert config["Runtime"].startswith("python")
    assert config["Architectures"] == ["arm64"]
    assert config["KMSKeyArn"] == outputs["kms_key_arn"]
    assert config["Environment"]["Variables"]["TABLE_TABLE"] == outputs["table_table_name"]
    policy = json.loads(lam.get_policy(FunctionName=config["FunctionName"])["Policy"])
    (invoke,) = policy["Statement"]
    assert invoke["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "SourceArn" in json.dumps(invoke["Condition"])

    iam = aws("iam", moto_endpoint)
    role = config["Role"].rsplit("/", 1)[1]
    granted = iam.get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"]
    for stmt in granted["Statement"]:
        actions = [stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"]
        resources = [stmt["Resource"]] if isinstance(stmt["Resource"], str) else stmt["Resource"]
        assert "*" not in resources, stmt
        assert not any(a.endswith("*") for a in actions), stmt
    assert any(outputs["table_table_arn"] in json.dumps(s) for s in granted["Statement"])
    dlq = outputs["handler_dlq_url"].rsplit("/", 1)[1]
    assert any(dlq in json.dumps(s) for s in granted["Statement"])

    ddb = aws("dynamodb", moto_endpoint)
    table = ddb.describe_table(TableName=outputs["table_table_name"])["Table"]
    assert table["SSEDescription"]["SSEType"] == "KMS"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    backups = ddb.describe_continuous_backups(TableName=table["TableName"])
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"

    apigw = aws("apigatewayv2", moto_endpoint)
    (api,) = [a for a in apigw.get_apis()["Items"] if a["Name"] == f"{prefix}-api"]
    assert api["ProtocolType"] == "HTTP"
    assert outputs["api_endpoint"] == api["ApiEndpoint"]
    (stage,) = apigw.get_stages(ApiId=api["ApiId"])["Items"]
    assert stage["AccessLogSettings"]["DestinationArn"].endswith("/apigateway/api")
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] >= 75  # 1.5 x 50 rps
    (route,) = apigw.get_routes(ApiId=api["ApiId"])["Items"]
    assert route["RouteKey"] == "$default"

    logs = aws("logs", moto_endpoint)
    groups = {
        g["logGroupName"]: g
        for g in logs.describe_log_groups()["logGroups"]
        if prefix in g["logGroupName"]
    }
    assert groups[f"/aws/lambda/{prefix}-handler"]["retentionInDays"] == 90
    assert all(g.get("kmsKeyId") == outputs["kms_key_arn"] for g in groups.values())

    # the scheduled function: a rule that invokes exactly it, allowed from that rule only
    events = aws("events", moto_endpoint)
    rule = events.describe_rule(Name=f"{prefix}-job-schedule")
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == outputs["job_function_arn"]
    (allowed,) = json.loads(lam.get_policy(FunctionName=outputs["job_function_name"])["Policy"])[
        "Statement"
    ]
    assert allowed["Principal"] == {"Service": "events.amazonaws.com"}
    assert rule["Arn"] in json.dumps(allowed["Condition"])

    assert await roll_back(crew, run_id) > 0
    assert not [a for a in apigw.get_apis()["Items"] if a["Name"] == f"{prefix}-api"]
    assert table["TableName"] not in ddb.list_tables()["TableNames"]
    assert not [
        f for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(prefix)
    ]
