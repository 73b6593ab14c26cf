"""catalog/cost.py (forecast per component from the price table), catalog/schedule.py, and
catalog/diagram.py (the Mermaid flowchart generated from components)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import CATALOG
from catalog.cost import brake_for, budget_needed, forecast_lines
from catalog.diagram import flowchart
from catalog.prices import load_prices
from catalog.schedule import runs_per_month
from schemas.plan import Component

PRICES = load_prices()


def c(type_: str, name: str, **params: Any) -> Component:
    return Component(type=type_, name=name, params=params)


def one(component: Component, region: str = "eu-west-1", rps: float | None = None) -> float:
    (line,) = forecast_lines([component], region, expected_rps=rps)
    return line.monthly_usd


def usd(sku: str, region: str = "eu-west-1") -> float:
    return PRICES.price(sku, region).usd


def test_every_catalog_type_has_a_cost_model_priced_in_every_region() -> None:
    examples = {
        "alb": {"target": "x"},
        "cloudfront_distribution": {"origin": "x"},
        "cloudwatch_alarms": {"alarms": [{"component": "x", "kind": "cpu_high"}]},
        "iam_role": {"service": "ecs-tasks.amazonaws.com"},
        "lambda_function": {"code_bucket": "x"},
        "http_api": {"target": "x"},
    }
    for region in PRICES.regions:
        for type_ in CATALOG:
            (line,) = forecast_lines([c(type_, "x", **examples.get(type_, {}))], region)
            assert line.monthly_usd >= 0
            assert line.basis


def test_serverless_costs_follow_usage_and_are_published_in_every_transcribed_region() -> None:
    fn = c(
        "lambda_function",
        "fn",
        code_bucket="code",
        memory_mb=512,
        architecture="x86_64",
        monthly_invocations_million=10,
        average_duration_ms=200,
        log_retention_days=30,
    )
    gb_seconds = 10e6 * 0.2 * 0.5
    logs = 10 * usd("cloudwatch.logs.ingest_gb") + 10 * 30 / 30.4 * usd(
        "cloudwatch.logs.storage_gb_month"
    )
    expected = gb_seconds * usd("lambda.x86.gb_second") + 10 * usd("lambda.requests.million")
    assert one(fn) == round(expected + logs, 2)
    table = c("dynamodb_table", "t", size_gb=10, monthly_reads_million=4, monthly_writes_million=2)
    assert one(table) == round(
        10 * (usd("dynamodb.storage.gb_month") + usd("dynamodb.pitr.gb_month"))
        + 4 * usd("dynamodb.ondemand.read.million")
        + 2 * usd("dynamodb.ondemand.write.million"),
        2,
    )
    provisioned = c(
        "dynamodb_table",
        "t",
        billing_mode="provisioned",
        read_capacity=10,
        write_capacity=5,
        size_gb=0,
        point_in_time_recovery=False,
    )
    assert one(provisioned) == round(
        730
        * (10 * usd("dynamodb.provisioned.rcu_hour") + 5 * usd("dynamodb.provisioned.wcu_hour")),
        2,
    )
    api = c("http_api", "api", target="fn", monthly_requests_million=3)
    assert one(api, "us-east-1") < one(api, "eu-central-1")  # regional prices, not one figure
    skus = (
        "lambda.requests.million",
        "apigateway.http.requests.million",
        "dynamodb.ondemand.write.million",
        "dynamodb.storage.gb_month",
    )
    for sku in skus:
        assert {PRICES.price(sku, r).how for r in PRICES.regions} == {"published"}
        hows = {PRICES.price(sku, r).how for r in PRICES.commercial}
        assert hows <= {"published", "same everywhere", "estimated"}


def test_rds_cost_doubles_with_multi_az_and_counts_storage_and_secret() -> None:
    single = one(c("rds_postgres", "db", instance_class="db.t4g.small", allocated_storage_gb=50))
    multi = one(
        c(
            "rds_postgres",
            "db",
            instance_class="db.t4g.small",
            allocated_storage_gb=50,
            multi_az=True,
        )
    )
    instance = usd("rds.postgres.db.t4g.small.hour") * 730
    storage = 50 * usd("rds.gp3.gb_month")
    secret = usd("secretsmanager.secret.month")
    assert single == round(instance + storage + secret, 2)
    assert multi == round(2 * (instance + storage) + secret, 2)


def test_fargate_service_cost_is_tasks_times_size() -> None:
    cost = one(c("ecs_service", "app", cpu=512, memory_mb=1024, desired_count=3, min_count=2))
    compute = 3 * (0.5 * usd("fargate.vcpu_hour") + 1 * usd("fargate.gb_hour")) * 730
    logs = 3 * usd("cloudwatch.logs.ingest_gb") + 3 * (30 / 30.4) * usd(
        "cloudwatch.logs.storage_gb_month"
    )
    assert cost == round(compute + logs, 2)


def test_nat_gateways_per_az_cost_one_more_gateway_each() -> None:
    single = one(c("vpc", "net", nat="single"))
    per_az = one(c("vpc", "net", nat="per_az"))  # 2 AZs
    none = one(c("vpc", "net", nat="none"))
    gateway = (usd("nat_gateway.hour") + usd("vpc.public_ipv4.hour")) * 730 + 10 * usd(
        "nat_gateway.gb_processed"
    )
    assert per_az - single == pytest.approx(gateway, abs=0.011)
    assert single - none == pytest.approx(gateway, abs=0.011)
    assert none < 2  # flow logs only


def test_load_balancer_cost_grows_with_traffic() -> None:
    idle = one(c("alb", "lb", target="x"))
    busy = one(c("alb", "lb", target="x"), rps=2_000)
    assert idle == round(
        730 * (usd("alb.hour") + usd("alb.lcu_hour") + 2 * usd("vpc.public_ipv4.hour")), 2
    )
    assert busy > idle


def test_prices_differ_by_region() -> None:
    db = c("rds_mysql", "db", instance_class="db.m6g.large")
    assert one(db, "us-east-1") < one(db, "eu-central-1")


@pytest.mark.parametrize(
    ("schedule", "runs"),
    [
        ("rate(1 hour)", 730),
        ("rate(15 minutes)", 2920),
        ("rate(1 day)", 30.4),
        ("cron(0 2 * * ? *)", 30.4),
        ("cron(0 9 ? * MON-FRI *)", 21.8),
        ("cron(0/15 * * * ? *)", 2918.4),
        ("cron(0 8 1 * ? *)", 1),
    ],
)
def test_runs_per_month(schedule: str, runs: float) -> None:
    assert runs_per_month(schedule) == pytest.approx(runs)


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_budget_needed_is_the_smallest_budget_whose_brake_admits_the_forecast(
    forecast: float,
) -> None:
    needed = budget_needed(forecast)
    assert brake_for(needed) >= round(forecast, 2)
    assert brake_for(needed) > 0
    assert needed == 0.01 or brake_for(round(needed - 0.01, 2)) < max(round(forecast, 2), 0.01)


# -- diagram -----------------------------------------------------------------------------------


def test_flowchart_shows_components_and_data_flows() -> None:
    diagram = flowchart(
        [
            c("vpc", "net"),
            c("ecs_service", "app", grants=[{"component": "files", "access": "read_write"}]),
            c("alb", "lb", target="app", domain_name="shop.example.com"),
            c("rds_postgres", "db", allow_from=["app"], multi_az=True),
            c("s3_bucket", "files"),
            c("cloudwatch_alarms", "alarms", alarms=[{"component": "db", "kind": "db_cpu_high"}]),
        ]
    )
    lines = diagram.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    subgraph c_net["VPC net: 10.0.0.0/16, 2 AZ(s), NAT single"]' in lines
    assert '        c_db[("db<br/>RDS PostgreSQL multi-AZ")]' in lines
    assert '    c_files[("files<br/>S3 bucket")]' in lines  # outside the VPC
    for edge in (
        "internet -->|HTTPS| c_lb",
        "c_lb -->|forward| c_app",
        "c_app -->|PostgreSQL 5432| c_db",
        "c_app -->|read_write| c_files",
        "c_alarms -.->|db_cpu_high| c_db",
    ):
        assert f"    {edge}" in lines


def test_flowchart_of_a_static_site_and_a_lone_bucket() -> None:
    site = flowchart(
        [
            c("s3_bucket", "site", website_origin=True),
            c("cloudfront_distribution", "cdn", origin="site"),
        ]
    )
    assert "    internet -->|HTTPS| c_cdn" in site
    assert "    c_cdn -->|origin access control| c_site" in site
    assert "subgraph" not in site
    assert "    internet -->|HTTPS, IAM auth| c_objects" in flowchart([c("s3_bucket", "objects")])


def test_mermaid_keywords_as_names_cannot_break_the_diagram() -> None:
    diagram = flowchart([c("s3_bucket", "end"), c("s3_bucket", "graph")])
    assert "c_end[(" in diagram
    assert "\n    end\n" not in diagram
