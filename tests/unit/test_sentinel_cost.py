"""Cost forecast from a plan: every priced type in every region, not priced, diff, usage."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.prices import load_prices
from schemas.plan import Component, PlanSpec
from sentinel.cost import DEFAULT_USAGE, forecast_cost, from_infracost
from sentinel.pricing import FREE, PRICED_TYPES
from tests.unit.sentinel_support import change, plan_doc
from tests.unit.support import FIXTURES
from tools.infracost import parse_infracost_json
from tools.render.allowlist import RESOURCE_TYPES

TD = "aws_ecs_task_definition.app"
#: Planned values of one resource of each priced type (and what it refers to).
SAMPLES: dict[str, tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]] = {
    "aws_db_instance": (
        {"engine": "postgres", "instance_class": "db.t4g.micro", "allocated_storage": 20},
        [],
        {},
    ),
    "aws_elasticache_replication_group": (
        {"node_type": "cache.t4g.micro", "num_cache_clusters": 2},
        [],
        {},
    ),
    "aws_nat_gateway": ({}, [], {}),
    "aws_eip": ({"domain": "vpc"}, [], {}),
    "aws_lb": (
        {"load_balancer_type": "application", "internal": False, "subnets": ["a", "b"]},
        [],
        {},
    ),
    "aws_alb": ({"internal": True}, [], {}),
    "aws_ecs_service": (
        {"desired_count": 2},
        [change(TD, {"cpu": "256", "memory": "512"})],
        {"task_definition": {"references": [f"{TD}.arn", TD]}},
    ),
    "aws_cloudwatch_event_target": (
        {"ecs_target": [{"task_count": 1}]},
        [
            change(TD, {"cpu": "512", "memory": "1024"}),
            change("aws_cloudwatch_event_rule.nightly", {"schedule_expression": "rate(1 day)"}),
        ],
        {
            "ecs_target.task_definition_arn": {"references": [f"{TD}.arn", TD]},
            "rule": {
                "references": [
                    "aws_cloudwatch_event_rule.nightly.name",
                    "aws_cloudwatch_event_rule.nightly",
                ]
            },
        },
    ),
    "aws_instance": (
        {
            "instance_type": "t3.micro",
            "root_block_device": [{"volume_size": 20, "volume_type": "gp3"}],
        },
        [],
        {},
    ),
    "aws_autoscaling_group": (
        {"desired_capacity": 2},
        [
            change(
                "aws_launch_template.app",
                {
                    "instance_type": "t3.small",
                    "block_device_mappings": [{"ebs": [{"volume_size": 20, "volume_type": "gp3"}]}],
                },
            )
        ],
        {
            "launch_template.id": {
                "references": ["aws_launch_template.app.id", "aws_launch_template.app"]
            }
        },
    ),
    "aws_ebs_volume": ({"size": 100, "type": "gp3"}, [], {}),
    "aws_s3_bucket": ({}, [], {}),
    "aws_cloudfront_distribution": ({}, [], {}),
    "aws_sqs_queue": ({"fifo_queue": True}, [], {}),
    "aws_cloudwatch_log_group": ({"retention_in_days": 30}, [], {}),
    "aws_cloudwatch_metric_alarm": ({}, [], {}),
    "aws_sns_topic": ({}, [], {}),
    "aws_kms_key": ({}, [], {}),
    "aws_secretsmanager_secret": ({}, [], {}),
    "aws_lambda_function": ({"memory_size": 256, "architectures": ["arm64"]}, [], {}),
    "aws_apigatewayv2_api": ({"protocol_type": "HTTP"}, [], {}),
    "aws_dynamodb_table": (
        {"billing_mode": "PAY_PER_REQUEST", "point_in_time_recovery": [{"enabled": True}]},
        [],
        {},
    ),
}
REGIONS = load_prices().regions


def test_samples_cover_every_priced_type() -> None:
    assert set(SAMPLES) == PRICED_TYPES


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("rtype", sorted(PRICED_TYPES))
def test_every_priced_type_is_priced_in_every_region(rtype: str, region: str) -> None:
    after, others, refs = SAMPLES[rtype]
    address = f"{rtype}.x"
    doc = plan_doc(change(address, after), *others, region=region, references={address: refs})
    report = forecast_cost(doc, region=None)
    (line,) = [r for r in report.per_resource if r.address == address]
    assert line.monthly_usd is not None, line.basis
    # SNS topics are published at $0 (first million requests free); everything else costs
    assert line.monthly_usd > 0 or rtype == "aws_sns_topic"
    assert report.not_priced == []
    assert line.action == "create"
    assert line.previous_monthly_usd == 0


def test_known_prices_us_east_1() -> None:
    after, others, refs = SAMPLES["aws_ecs_service"]
    doc = plan_doc(
        change("aws_ecs_service.x", after), *others, references={"aws_ecs_service.x": refs}
    )
    line = forecast_cost(doc, region=None).per_resource[0]
    # 2 tasks x (0.25 vCPU x $0.04048 + 0.5 GB x $0.004445) x 730 h
    assert line.monthly_usd == round(2 * (0.25 * 0.04048 + 0.5 * 0.004445) * 730, 2) == 18.02
    assert line.basis == "2 Fargate task(s) of 0.25 vCPU / 0.5 GB, 730 h"


def test_every_type_forge_renders_is_priced_or_free() -> None:
    assert PRICED_TYPES | set(FREE) >= RESOURCE_TYPES, sorted(
        RESOURCE_TYPES - PRICED_TYPES - set(FREE)
    )


def test_unknown_types_and_unpriced_values_are_not_priced_never_zero() -> None:
    doc = plan_doc(
        change("aws_quantum_widget.q", {}),
        change("aws_db_instance.big", {"engine": "postgres", "instance_class": "db.x2iedn.metal"}),
        change("aws_ebs_volume.fast", {"size": 10, "type": "io2"}),
        change("aws_kms_key.k", {}),
    )
    report = forecast_cost(doc, region=None)
    assert report.not_priced == [
        "aws_quantum_widget.q",
        "aws_db_instance.big",
        "aws_ebs_volume.fast",
    ]
    assert report.monthly_usd == 1.0  # the key alone
    assert any("3 resource(s) not priced" in a for a in report.assumptions)


def test_a_region_outside_the_transcribed_table_is_priced_by_a_stated_estimate() -> None:
    doc = plan_doc(
        change(
            "aws_db_instance.db",
            {"engine": "postgres", "instance_class": "db.t4g.micro", "allocated_storage": 20},
        ),
        region="ap-south-2",
    )
    report = forecast_cost(doc, region=None)
    assert report.not_priced == []
    assert report.monthly_usd > 0
    assert any("estimated for ap-south-2" in a for a in report.assumptions)


def test_cost_diff_against_what_is_applied() -> None:
    small = {"engine": "postgres", "instance_class": "db.t4g.micro", "allocated_storage": 20}
    large = {**small, "instance_class": "db.t4g.small"}
    doc = plan_doc(
        change("aws_db_instance.db", large, ["update"], before=small),
        change("aws_kms_key.old", None, ["delete"], before={}),
        change("aws_secretsmanager_secret.s", {}, ["no-op"], before={}),
        change("aws_cloudwatch_metric_alarm.new", {}),
    )
    report = forecast_cost(doc, region=None)
    lines = {
        r.address: (r.action, r.previous_monthly_usd, r.monthly_usd) for r in report.per_resource
    }
    assert lines == {
        "aws_db_instance.db": ("update", 13.98, 25.66),
        "aws_kms_key.old": ("delete", 1.0, 0.0),
        "aws_secretsmanager_secret.s": ("no-op", 0.4, 0.4),
        "aws_cloudwatch_metric_alarm.new": ("create", 0.0, 0.1),
    }
    assert report.previous_monthly_usd == 15.38
    assert report.monthly_usd == 26.16
    assert report.delta_monthly_usd == 10.78


def test_usage_comes_from_the_planspec_component_else_defaults(example_plan: PlanSpec) -> None:
    bucket = Component(
        type="s3_bucket", name="objects", params={"size_gb": 1000, "monthly_requests_million": 0}
    )
    plan = example_plan.model_copy(update={"components": [bucket]})
    doc = plan_doc(
        change("aws_s3_bucket.objects", {}),
        change("aws_s3_bucket.objects_logs", {}),
        change("aws_s3_bucket.unrelated", {}),
    )
    report = forecast_cost(doc, region=None, plan=plan)
    lines = {r.address: (r.component, r.monthly_usd) for r in report.per_resource}
    assert lines["aws_s3_bucket.objects"] == ("objects", 23.0)  # 1000 GB x $0.023
    default = round(DEFAULT_USAGE.storage_gb * 0.023 + DEFAULT_USAGE.requests_million * 1.32, 2)
    assert lines["aws_s3_bucket.objects_logs"] == ("objects", default)
    assert lines["aws_s3_bucket.unrelated"] == (None, default)
    assert (
        "aws_s3_bucket.objects: 1000 GB Standard, 0M requests a month (component objects)"
        in report.assumptions
    )
    assert (
        f"aws_s3_bucket.unrelated: {DEFAULT_USAGE.storage_gb:g} GB Standard, "
        "1M requests a month (default)" in report.assumptions
    )


def test_infracost_breakdown_becomes_the_cost_report() -> None:
    breakdown = parse_infracost_json((FIXTURES / "scanners" / "infracost.json").read_text())
    doc = plan_doc(
        change("aws_db_instance.db", {}),
        change("aws_sqs_queue.jobs", {}),
        change("aws_security_group.db", {}),
        change("aws_quantum_widget.q", {}),
    )
    report = from_infracost(breakdown, doc, None)
    assert report.source == "infracost"
    lines = {r.address: (r.monthly_usd, r.basis) for r in report.per_resource}
    assert lines == {
        "aws_db_instance.db": (16.64, "infracost"),
        "aws_sqs_queue.jobs": (None, "infracost: usage-based, no usage given"),
        "aws_security_group.db": (0.0, "infracost: no price (free)"),
        "aws_quantum_widget.q": (None, "infracost does not price this type"),
    }
    assert report.not_priced == ["aws_sqs_queue.jobs", "aws_quantum_widget.q"]
    assert (report.previous_monthly_usd, report.delta_monthly_usd) == (0.0, 16.64)
