"""The serverless components (lambda_function, http_api, dynamodb_table): bounded parameters,
typed references, what the goal's rules ask of them, and what Forge renders (least privilege,
no wildcard, a deterministic bootstrap package)."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

import pytest
from pydantic import ValidationError

from catalog.components import DynamoDbTableParams, LambdaFunctionParams
from catalog.design import DesignProposal, assemble_plan
from catalog.diagram import flowchart
from catalog.validate import ProblemCode, validate_components, validate_plan
from fixtures.plans import workload_plan
from schemas.goal import GoalStatement
from schemas.plan import Component, PlanSpec, Provenance
from tests.unit.render_support import blocks, main_of, nested, value
from tests.unit.support import make_goal
from tools.render.serverless import bootstrap_package

P = ProblemCode


def c(type_: str, name: str, **params: Any) -> Component:
    return Component(type=type_, name=name, params=params)


def shape(**overrides: Component) -> list[Component]:
    parts = {
        "code": c("s3_bucket", "code"),
        "table": c("dynamodb_table", "table"),
        "fn": c(
            "lambda_function",
            "fn",
            code_bucket="code",
            grants=[{"component": "table", "access": "read_write"}],
        ),
        "api": c("http_api", "api", target="fn"),
    }
    parts.update(overrides)
    return list(parts.values())


@pytest.mark.parametrize(
    ("model", "params"),
    [
        (LambdaFunctionParams, {"code_bucket": "code", "memory_mb": 64}),
        (LambdaFunctionParams, {"code_bucket": "code", "reserved_concurrency": 0}),
        (LambdaFunctionParams, {"code_bucket": "code", "runtime": "python2.7"}),
        (LambdaFunctionParams, {"code_bucket": "code", "code_key": "app.tar.gz"}),
        (LambdaFunctionParams, {"code_bucket": "code", "code_key": '"; rm -rf /.zip'}),
        (LambdaFunctionParams, {"code_bucket": "code", "log_retention_days": 45}),
        (
            LambdaFunctionParams,
            {"code_bucket": "code", "timeout_s": 1, "average_duration_ms": 2000},
        ),
        (DynamoDbTableParams, {"hash_key": "id", "range_key": "id"}),
        (DynamoDbTableParams, {"ttl_attribute": "pk"}),
        (DynamoDbTableParams, {"hash_key": "${file(x)}"}),
        (DynamoDbTableParams, {"billing_mode": "serverless"}),
    ],
)
def test_parameters_are_bounded_and_never_free_text(model: Any, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(params)


def test_references_are_typed() -> None:
    assert validate_components(shape()) == []
    wrong = shape(
        api=c("http_api", "api", target="table"),
        fn=c(
            "lambda_function",
            "fn",
            code_bucket="table",
            grants=[{"component": "table", "access": "consume"}],
        ),
    )
    problems = {(p.code, p.constraint) for p in validate_components(wrong)}
    assert (P.WRONG_REFERENCE, "components.api.params.target") in problems
    assert (P.WRONG_REFERENCE, "components.fn.params.code_bucket") in problems
    assert (P.BAD_GRANT, "components.fn.params.grants") in problems
    assert "vpc" not in {c.type for c in shape()}  # nothing of the shape needs one


def plan(goal: GoalStatement, components: list[Component]) -> PlanSpec:
    proposal = DesignProposal(summary="s", rationale="r", components=components)
    return assemble_plan(
        goal, proposal, goal_id="g", plan_id="p", revision=1, provenance=Provenance(planner="llm")
    )


def api_goal(**changes: Any) -> GoalStatement:
    return make_goal(**{"workload": {"kind": "api"}, "budget": {"monthly_usd": 500}, **changes})


def test_an_http_api_in_front_of_a_function_covers_an_api_goal() -> None:
    goal = api_goal()
    assert validate_plan(plan(goal, shape()), goal) == []


def test_prod_and_logging_ask_for_recovery_protection_and_retention() -> None:
    goal = api_goal(environment="prod", constraints={"compliance": ["logging", "backups"]})
    weak = shape(table=c("dynamodb_table", "table", point_in_time_recovery=False))
    found = {p.constraint: p.code for p in validate_plan(plan(goal, weak), goal)}
    assert found["components.table.params.point_in_time_recovery"] is P.BACKUPS
    assert found["components.table.params.deletion_protection"] is P.DELETION_PROTECTION
    assert found["components.fn.params.log_retention_days"] is P.LOGGING
    assert found["components.api.params.access_log_retention_days"] is P.LOGGING


def test_the_function_role_names_exact_actions_on_exact_resources() -> None:
    main = main_of(workload_plan("serverless_api"))
    policies = blocks(main, "data", "aws_iam_policy_document")
    role = policies["handler"]
    actions = {a for s in nested(role, "statement") for a in value(s, "actions")}
    resources = [r for s in nested(role, "statement") for r in value(s, "resources")]
    assert "*" not in resources
    assert not [a for a in actions if a.endswith("*")]
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "sqs:SendMessage"} <= actions
    assert "${aws_dynamodb_table.devices.arn}/index/*" in resources
    trust = nested(policies["handler_assume"], "statement")[0]
    assert value(nested(trust, "principals")[0], "identifiers") == ["lambda.amazonaws.com"]

    fn = blocks(main, "resource", "aws_lambda_function")["handler"]
    assert value(fn, "reserved_concurrent_executions") == 10
    assert value(fn, "kms_key_arn") == "${aws_kms_key.stack.arn}"
    assert value(nested(fn, "dead_letter_config")[0], "target_arn") == (
        "${aws_sqs_queue.handler_dlq.arn}"
    )
    variables = value(nested(fn, "environment")[0], "variables")
    assert variables["DEVICES_TABLE"] == "${aws_dynamodb_table.devices.name}"

    table = blocks(main, "resource", "aws_dynamodb_table")["devices"]
    assert value(nested(table, "point_in_time_recovery")[0], "enabled") is True
    sse = nested(table, "server_side_encryption")[0]
    assert value(sse, "kms_key_arn") == "${aws_kms_key.stack.arn}"
    assert value(nested(table, "ttl")[0], "attribute_name") == "expires_at"

    stage = blocks(main, "resource", "aws_apigatewayv2_stage")["api"]
    assert value(nested(stage, "default_route_settings")[0], "throttling_rate_limit") == 50
    permission = blocks(main, "resource", "aws_lambda_permission")["api_invoke"]
    assert value(permission, "source_arn") == "${aws_apigatewayv2_api.api.execution_arn}/*/*"


@pytest.mark.parametrize(
    ("runtime", "file"), [("python3.12", "index.py"), ("nodejs22.x", "index.mjs")]
)
def test_the_bootstrap_package_is_a_deterministic_zip_with_the_handler(
    runtime: str, file: str
) -> None:
    package = bootstrap_package(runtime)
    bootstrap_package.cache_clear()
    assert bootstrap_package(runtime) == package
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(package))) as archive:
        assert archive.namelist() == [file]
        source = archive.read(file).decode()
    assert "handler" in source
    assert "503" in source


def test_the_diagram_draws_the_request_path() -> None:
    chart = flowchart(shape())
    assert "internet -->|HTTPS| c_api" in chart
    assert "c_api -->|invoke| c_fn" in chart
    assert "c_fn -->|read_write| c_table" in chart
    assert "c_code -.->|code package| c_fn" in chart
    assert json.dumps(chart)  # plain text, no free text from the goal


def test_a_serverless_nightly_job_is_a_scheduled_function() -> None:
    from nodes.atlas import plan_goal

    goal = make_goal(
        description="A serverless function that runs every night at 02:00 and cleans up "
        "expired rows in a DynamoDB table.",
        budget={"monthly_usd": 50},
        workload=None,
    )
    result = plan_goal(goal, goal_id="g", plan_id="g-r1")
    assert isinstance(result, PlanSpec)
    assert {c.type for c in result.components} >= {"lambda_function", "dynamodb_table"}
    assert "http_api" not in {c.type for c in result.components}
    job = next(c for c in result.components if c.type == "lambda_function")
    assert job.params["schedule"] == "cron(0 2 * * ? *)"
    assert {"component": "table", "access": "read_write"} in job.params["grants"]
    status = {r.ask.name: r.status.value for r in result.requirements}
    assert status["schedule"] == status["compute.serverless"] == "met"

    main = main_of(workload_plan("serverless_api"))
    rule = blocks(main, "resource", "aws_cloudwatch_event_rule")["sweeper_schedule"]
    assert value(rule, "schedule_expression") == "cron(0 3 * * ? *)"
    target = blocks(main, "resource", "aws_cloudwatch_event_target")["sweeper_schedule"]
    assert value(target, "arn") == "${aws_lambda_function.sweeper.arn}"
    allowed = blocks(main, "resource", "aws_lambda_permission")["sweeper_schedule"]
    assert value(allowed, "principal") == "events.amazonaws.com"
    assert value(allowed, "source_arn") == "${aws_cloudwatch_event_rule.sweeper_schedule.arn}"
