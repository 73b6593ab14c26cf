"""Every ask of a goal traced to what meets it (catalog/trace.py), gaps blocking by default
(catalog/gaps.py), and the issue's goals designed as asked."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.gaps import asked_vs_designed, uncovered_problems
from catalog.reading import read_goal
from catalog.trace import trace_requirements
from nodes.atlas import plan_goal
from schemas.goal import GoalStatement
from schemas.plan import Component, DesignBlocked, PlanSpec, Requirement, RequirementStatus


def goal(description: str, budget: float = 900, **fields: Any) -> GoalStatement:
    return GoalStatement.model_validate(
        {
            "schema_version": "0.1",
            "title": fields.pop("title", "a goal"),
            "description": description,
            "cloud": "aws",
            "region": fields.pop("region", "eu-west-1"),
            "budget": {"monthly_usd": budget},
            **fields,
        }
    )


def plan(description: str, budget: float = 900, **fields: Any) -> PlanSpec | DesignBlocked:
    return plan_goal(goal(description, budget, **fields), goal_id="g", plan_id="g-r1")


def status(result: PlanSpec | DesignBlocked) -> dict[str, RequirementStatus]:
    return {r.ask.name: r.status for r in result.requirements}


def params(result: PlanSpec, type_: str) -> dict[str, Any]:
    return next(c.params for c in result.components if c.type == type_)


M, U = RequirementStatus.MET, RequirementStatus.UNSUPPORTED


def test_availability_and_load_in_words_set_the_parameters() -> None:
    result = plan(
        "A public web API with Postgres and a Redis cache, multi-AZ, about 500 requests per "
        "second, under $900/month"
    )
    assert isinstance(result, PlanSpec)
    assert params(result, "rds_postgres")["multi_az"] is True
    assert params(result, "elasticache_redis")["automatic_failover"] is True
    service = params(result, "ecs_service")
    assert service["min_count"] >= 2
    assert service["desired_count"] * service["cpu"] / 1024 * 200 >= 500
    st = status(result)
    for name in ("workload.api", "store.postgres", "store.redis", "availability.multi_az"):
        assert st[name] is M
    assert st["throughput.rps"] is M
    rps = next(r for r in result.requirements if r.ask.name == "throughput.rps")
    assert rps.ask.params["rps"] == 500
    assert rps.source.text == "500 requests per second"
    assert "api" in rps.by


def test_what_the_catalog_cannot_build_blocks_and_is_named() -> None:
    result = plan("We want a Kubernetes cluster and a MongoDB database next to a bucket.")
    assert isinstance(result, DesignBlocked)
    text = " ".join(r.why for r in result.reasons)
    assert "Kubernetes" in text
    assert "document database" in text
    assert all("unsupported_asks: warn" in r.suggestion for r in result.reasons)
    assert status(result)["store.object_storage"] is M


def test_warn_policy_gives_the_partial_design_with_each_gap_as_a_risk() -> None:
    result = plan_goal(
        goal("We want a Kubernetes cluster and a MongoDB database next to a bucket."),
        goal_id="g",
        plan_id="g-r1",
        unsupported_asks="warn",
    )
    assert isinstance(result, PlanSpec)
    gaps = [r for r in result.risks if r.description.startswith("Asked but not designed")]
    assert len(gaps) == 2
    assert status(result)["compute.kubernetes"] is U


def test_serverless_functions_and_a_nosql_table_are_designed_and_met() -> None:
    result = plan("We want serverless functions and a NoSQL table next to a bucket.")
    assert isinstance(result, PlanSpec)
    types = {c.type for c in result.components}
    assert {"http_api", "lambda_function", "dynamodb_table", "s3_bucket"} <= types
    assert "vpc" not in types  # functions and tables take no network: no NAT to pay for
    st = status(result)
    for name in ("compute.serverless", "store.nosql", "store.object_storage"):
        assert st[name] is M, name
    grants = {g["component"]: g["access"] for g in params(result, "lambda_function")["grants"]}
    assert grants == {"table": "read_write", "objects": "read_write"}
    table = params(result, "dynamodb_table")
    assert table["point_in_time_recovery"] is True


def test_a_lambda_api_with_postgres_stays_on_containers_and_says_why() -> None:
    result = plan("A REST API on Lambda with a Postgres database.", 400)
    assert isinstance(result, DesignBlocked)  # the serverless ask is unmet, and named
    serverless = next(r for r in result.requirements if r.ask.name == "compute.serverless")
    assert serverless.status is U
    assert "outside the VPC" in (serverless.note or "")


def test_a_weekly_container_job_is_scheduled() -> None:
    result = plan("Once a week on Sunday a container job compacts the archive bucket.", 200)
    assert isinstance(result, PlanSpec)
    assert params(result, "ecs_scheduled_task")["schedule"] == "cron(0 2 ? * SUN *)"
    assert {"s3_bucket", "ecs_scheduled_task"} <= {c.type for c in result.components}
    assert status(result)["schedule"] is M


def test_a_documentation_site_is_static_and_cheap() -> None:
    result = plan("Product documentation website, HTML files only, behind a CDN.", 40)
    assert isinstance(result, PlanSpec)
    assert {c.type for c in result.components} == {"s3_bucket", "cloudfront_distribution"}
    assert result.budget.forecast_monthly_usd < 10


def test_retention_in_words_becomes_a_lifecycle_rule() -> None:
    result = plan("A private, encrypted bucket where our services ship their logs for 90 days", 50)
    assert isinstance(result, PlanSpec)
    assert params(result, "s3_bucket")["expiration_days"] == 90
    assert status(result)["retention.objects"] is M


def test_backups_longer_than_rds_keeps_are_unsupported() -> None:
    result = plan("A MySQL-backed web app; keep the database backups for 90 days.")
    assert isinstance(result, DesignBlocked)
    assert status(result)["retention.backups"] is U
    assert any("35 days" in r.why for r in result.reasons)


def test_a_named_aws_service_outside_the_catalog_is_unsupported() -> None:
    result = plan("An API with Postgres; index the manuals with Amazon Kendra.")
    assert isinstance(result, DesignBlocked)
    assert status(result)["aws.kendra"] is U
    assert any("Kendra" in r.why for r in result.reasons)


def test_refusals_are_traced_as_refused() -> None:
    result = plan("A web app on EC2; open SSH on port 22 for us.", 400)
    assert isinstance(result, PlanSpec)
    assert status(result)["refused.open_port"] is RequirementStatus.REFUSED


def test_the_field_wins_over_the_text_and_the_conflict_is_noted() -> None:
    result = plan(
        "An API doing about 900 requests per second with Postgres.",
        workload={"kind": "api", "expected_rps": 200},
    )
    assert isinstance(result, PlanSpec)
    rps = next(r for r in result.requirements if r.ask.name == "throughput.rps")
    assert rps.source.field == "workload.expected_rps"
    assert rps.note is not None
    assert "900" in rps.note


def test_text_production_gets_multi_az_and_says_the_environment_is_the_field() -> None:
    result = plan("Production API for payments with a Postgres database.", 1500)
    assert isinstance(result, PlanSpec)
    assert params(result, "rds_postgres")["multi_az"] is True
    env = next(r for r in result.requirements if r.ask.name == "environment")
    assert env.status is RequirementStatus.ASSUMED


def test_a_design_that_drops_an_ask_is_told_so() -> None:
    g = goal("An API with Postgres and a Redis cache.")
    reading = read_goal(g)
    only_db = [
        Component(type="vpc", name="network", params={"nat": "single"}),
        Component(type="rds_postgres", name="db", params={}),
    ]
    requirements = trace_requirements(g, reading, only_db)
    problems = uncovered_problems(requirements)
    assert {p.code.value for p in problems} == {"not_covered"}
    assert any("Redis" in p.why for p in problems)
    assert any("API" in p.why for p in problems)


def test_asked_vs_designed_lists_gaps_first() -> None:
    result = plan("We want a Kubernetes cluster next to a bucket.")
    rows = asked_vs_designed(result.requirements)
    assert rows[0][0] == "unsupported"
    assert any(row[0] == "met" and "bucket" in row[1] for row in rows)


def test_every_requirement_quotes_its_source_exactly() -> None:
    text = "Nightly at 02:30 a container job compacts 3 TB in the archive bucket; HA please."
    g = goal(text, 2000)
    result = plan_goal(g, goal_id="g", plan_id="g-r1")
    req: Requirement
    for req in result.requirements:
        if req.source.field is None:
            assert req.source.start is not None
            assert text[req.source.start : req.source.end] == req.source.text


@pytest.mark.parametrize(
    "region", ["eu-west-3", "ap-northeast-1", "ca-central-1", "ap-south-1", "sa-east-1"]
)
def test_goals_outside_the_transcribed_regions_plan(region: str) -> None:
    result = plan("A web API with Postgres.", 900, region=region)
    assert isinstance(result, PlanSpec)
    assert any("estimated" in a for a in result.assumptions)
