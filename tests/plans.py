"""Hand-built PlanSpecs of catalog components, shared by Forge's tests and bench/forge.py.

One plan per workload kind of the GoalStatement contract and per shape beyond them (the
serverless API; together they use every catalog type), one minimal plan per catalog type,
and the quick end-to-end plan moto applies in seconds. Built by hand on purpose: Forge's
tests must not depend on a planner.
"""

from __future__ import annotations

from typing import Any

from schemas.plan import Component, PlanBudget, PlanSpec, Provenance

TAGS = {"managed-by": "infra-crew", "team": "platform", "environment": "dev"}


def c(type_: str, name: str, depends_on: list[str] | None = None, **params: Any) -> Component:
    return Component(type=type_, name=name, params=params, depends_on=depends_on or [])


def plan_of(
    components: list[Component],
    *,
    goal_id: str = "forge-test",
    region: str = "eu-west-1",
    environment: str = "dev",
    revision: int = 1,
    tags: dict[str, str] | None = None,
) -> PlanSpec:
    return PlanSpec(
        plan_id=f"{goal_id}-r{revision}",
        goal_id=goal_id,
        revision=revision,
        summary=f"{len(components)} catalog components",
        rationale="built by hand for Forge's tests",
        region=region,
        environment=environment,  # type: ignore[arg-type]
        components=components,
        budget=PlanBudget(forecast_monthly_usd=1, cap_monthly_usd=1000, brake_monthly_usd=800),
        tags={**TAGS, "environment": environment, **(tags or {})},
        diagram="flowchart LR\n    a --> b",
        provenance=Provenance(planner="catalog"),
    )


VPC = c("vpc", "net")
WORKLOADS: dict[str, list[Component]] = {
    "web_service": [
        VPC,
        c("alb", "front", target="web"),
        c("ec2_asg", "web", grants=[{"component": "assets", "access": "read"}]),
        c("s3_bucket", "assets", force_destroy=True),
        c("rds_mysql", "db", allow_from=["web"]),
        c(
            "cloudwatch_alarms",
            "alarms",
            alarms=[
                {"component": "web", "kind": "cpu_high"},
                {"component": "front", "kind": "http_5xx"},
                {"component": "db", "kind": "db_free_storage_low"},
            ],
        ),
    ],
    "api": [
        c("vpc", "net", az_count=3, nat="per_az"),
        c("alb", "edge", target="api", domain_name="api.example.com"),
        c(
            "ecs_service",
            "api",
            cpu=512,
            memory_mb=1024,
            grants=[
                {"component": "db", "access": "read_write"},
                {"component": "cache", "access": "read_write"},
            ],
        ),
        c("rds_postgres", "db", allow_from=["api"], multi_az=True, performance_insights=True),
        c("elasticache_redis", "cache", allow_from=["api"], num_nodes=2, automatic_failover=True),
        c(
            "cloudwatch_alarms",
            "alarms",
            alarms=[
                {"component": "api", "kind": "cpu_high"},
                {"component": "db", "kind": "db_cpu_high"},
            ],
        ),
    ],
    "static_site": [
        c("s3_bucket", "site", website_origin=True, force_destroy=True),
        c("cloudfront_distribution", "cdn", origin="site", domain_name="www.example.com"),
    ],
    "queue_worker": [
        VPC,
        c("sqs_queue", "jobs", fifo=True),
        c(
            "ecs_service",
            "worker",
            grants=[
                {"component": "jobs", "access": "consume"},
                {"component": "results", "access": "write"},
            ],
        ),
        c("s3_bucket", "results", force_destroy=True),
        c(
            "cloudwatch_alarms",
            "alarms",
            alarms=[
                {"component": "jobs", "kind": "queue_depth"},
                {"component": "jobs", "kind": "dlq_not_empty"},
            ],
        ),
    ],
    "batch": [
        c("vpc", "net", nat="none", az_count=1),
        c("s3_bucket", "data", force_destroy=True),
        c("cloudwatch_log_group", "audit", retention_days=365),
        c(
            "ecs_scheduled_task",
            "nightly",
            schedule="cron(0 3 * * ? *)",
            grants=[
                {"component": "data", "access": "read_write"},
                {"component": "audit", "access": "write"},
            ],
        ),
    ],
    "data_pipeline": [
        VPC,
        c("s3_bucket", "raw", force_destroy=True),
        c("s3_bucket", "curated", force_destroy=True, versioning=False),
        c("sqs_queue", "events"),
        c(
            "iam_role",
            "loader",
            service="lambda.amazonaws.com",
            grants=[
                {"component": "raw", "access": "read"},
                {"component": "curated", "access": "write"},
                {"component": "events", "access": "publish"},
            ],
        ),
        c(
            "ecs_scheduled_task",
            "transform",
            grants=[{"component": "events", "access": "consume"}],
        ),
    ],
    "serverless_api": [
        c("s3_bucket", "code", force_destroy=True),
        c(
            "dynamodb_table",
            "devices",
            range_key="seen_at",
            range_key_type="N",
            ttl_attribute="expires_at",
        ),
        c("sqs_queue", "events"),
        c(
            "lambda_function",
            "handler",
            code_bucket="code",
            runtime="nodejs22.x",
            grants=[
                {"component": "devices", "access": "read_write"},
                {"component": "events", "access": "publish"},
            ],
        ),
        c("http_api", "api", target="handler", throttling_rate_limit=50),
        c(
            "lambda_function",
            "sweeper",
            code_bucket="code",
            code_key="releases/sweeper.zip",
            schedule="cron(0 3 * * ? *)",
            grants=[{"component": "devices", "access": "write"}],
        ),
        c(
            "cloudwatch_alarms",
            "alarms",
            alarms=[
                {"component": "handler", "kind": "function_errors"},
                {"component": "handler", "kind": "dlq_not_empty"},
                {"component": "api", "kind": "http_5xx"},
            ],
        ),
    ],
}


def workload_plan(kind: str, **overrides: Any) -> PlanSpec:
    return plan_of(WORKLOADS[kind], goal_id=f"forge-{kind.replace('_', '-')}", **overrides)


#: The smallest plan showing each catalog type (with what it needs to exist).
COMPONENT_PLANS: dict[str, list[Component]] = {
    "vpc": [VPC],
    "alb": [VPC, c("alb", "lb", target="svc"), c("ecs_service", "svc")],
    "ecs_service": [VPC, c("ecs_service", "svc")],
    "ecs_scheduled_task": [VPC, c("ecs_scheduled_task", "job")],
    "ec2_asg": [VPC, c("ec2_asg", "fleet")],
    "rds_postgres": [VPC, c("rds_postgres", "pg")],
    "rds_mysql": [VPC, c("rds_mysql", "my")],
    "elasticache_redis": [VPC, c("elasticache_redis", "cache")],
    "s3_bucket": [c("s3_bucket", "bucket")],
    "cloudfront_distribution": [
        c("s3_bucket", "site"),
        c("cloudfront_distribution", "cdn", origin="site"),
    ],
    "sqs_queue": [c("sqs_queue", "queue")],
    "cloudwatch_log_group": [c("cloudwatch_log_group", "logs")],
    "cloudwatch_alarms": [
        c("sqs_queue", "queue"),
        c("cloudwatch_alarms", "alarms", alarms=[{"component": "queue", "kind": "queue_depth"}]),
    ],
    "iam_role": [c("iam_role", "role", service="ec2.amazonaws.com")],
    "lambda_function": [
        c("s3_bucket", "code"),
        c("lambda_function", "fn", code_bucket="code"),
    ],
    "http_api": [
        c("s3_bucket", "code"),
        c("lambda_function", "fn", code_bucket="code"),
        c("http_api", "api", target="fn"),
    ],
    "dynamodb_table": [
        c("dynamodb_table", "table", billing_mode="provisioned", read_capacity=2, write_capacity=1),
    ],
}


def component_plan(type_: str, **overrides: Any) -> PlanSpec:
    return plan_of(COMPONENT_PLANS[type_], goal_id=f"forge-{type_.replace('_', '-')}", **overrides)


def quick_components() -> list[Component]:
    """What moto creates in seconds: network + security groups (of a scheduled task), a
    bucket, a queue + DLQ, an IAM role with exact grants."""
    return [
        c("vpc", "net", nat="none", flow_logs=False, az_count=2),
        c("s3_bucket", "files", force_destroy=True, access_logging=False),
        c("sqs_queue", "jobs"),
        c(
            "iam_role",
            "app",
            service="lambda.amazonaws.com",
            grants=[
                {"component": "files", "access": "read_write"},
                {"component": "jobs", "access": "consume"},
            ],
        ),
        c(
            "ecs_scheduled_task",
            "sweeper",
            grants=[{"component": "jobs", "access": "publish"}],
        ),
    ]


def golden_plans() -> dict[str, PlanSpec]:
    """Plans whose rendered files are kept in tests/fixtures/golden/<name>/."""
    from tests.unit.support import ARTIFACT_EXAMPLES

    example = PlanSpec.model_validate_json(
        (ARTIFACT_EXAMPLES / "PlanSpec.json").read_text(encoding="utf-8")
    )
    plans = {"object-storage": example}
    plans.update({kind.replace("_", "-"): workload_plan(kind) for kind in WORKLOADS})
    plans["api-prod"] = workload_plan("api", environment="prod")
    return plans


ALL_KINDS = sorted(WORKLOADS)
