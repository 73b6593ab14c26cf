"""Serverless: Lambda functions and the API Gateway HTTP APIs in front of them.

A function runs outside any VPC (it reaches AWS APIs only, with IAM grants), as a role only
Lambda can assume with exactly: its log stream, its dead-letter queue, the stack key (its
environment is encrypted with it) and its grants. Its code comes from a zip in an S3 bucket of
the design: Forge puts a small bootstrap package there (a handler answering 503 "not deployed
yet") so the first apply succeeds before the team's pipeline uploads the real package to the
same key and calls `update-function-code`; Terraform never reads the package back, so later
applies leave that code alone.

A function with a `schedule` is also invoked by an EventBridge rule, allowed to invoke exactly
that function.

An HTTP API routes every request (`$default`) to one function with the payload format 2.0,
logs each request as one JSON line to an encrypted log group, throttles the stage, and may
invoke only its own function, from its own execution ARN.
"""

from __future__ import annotations

import base64
import io
import zipfile
from functools import cache

from catalog.components import HttpApiParams, LambdaFunctionParams
from schemas.plan import Component
from tools.hcl import Attr, Block, Call, Ref, Template, Value
from tools.render.context import Fragment, RenderContext, output, resource
from tools.render.iam import grant_statements, role, statement

_HANDLER = "index.handler"
#: The bootstrap handler per runtime family: it answers 503 until real code is deployed.
_BOOTSTRAP: dict[str, tuple[str, str]] = {
    "python": (
        "index.py",
        "import json\n\n\n"
        "def handler(event, context):\n"
        '    """infra-crew bootstrap: replaced when the team deploys its package."""\n'
        "    return {\n"
        '        "statusCode": 503,\n'
        '        "headers": {"content-type": "application/json"},\n'
        '        "body": json.dumps({"message": "not deployed yet"}),\n'
        "    }\n",
    ),
    "nodejs": (
        "index.mjs",
        "// infra-crew bootstrap: replaced when the team deploys its package.\n"
        "export const handler = async () => ({\n"
        "  statusCode: 503,\n"
        '  headers: { "content-type": "application/json" },\n'
        '  body: JSON.stringify({ message: "not deployed yet" }),\n'
        "});\n",
    ),
}
#: One JSON line per request (fields from API Gateway's $context; no request bodies).
_ACCESS_LOG_FORMAT: dict[str, Value] = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationError": "$context.integrationErrorMessage",
}


@cache
def bootstrap_package(runtime: str) -> str:
    """The bootstrap zip for `runtime`, base64: byte-identical on every render (fixed
    timestamps and permissions), so plans do not drift."""
    family = "python" if runtime.startswith("python") else "nodejs"
    name, source = _BOOTSTRAP[family]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, source)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def function_name(ctx: RenderContext, name: str) -> Template:
    return ctx.aws_name(name, limit=64)


def _environment(ctx: RenderContext, p: LambdaFunctionParams) -> dict[str, Value]:
    """How the code finds its grants: `<NAME>_TABLE`, `<NAME>_BUCKET`, `<NAME>_QUEUE_URL`."""
    variables: dict[str, Value] = {}
    for grant in p.grants:
        target, kind = grant.component, ctx.type_of(grant.component)
        key = target.upper()
        if kind == "dynamodb_table":
            variables[f"{key}_TABLE"] = Ref(f"aws_dynamodb_table.{target}.name")
        elif kind == "s3_bucket":
            variables[f"{key}_BUCKET"] = Ref(f"aws_s3_bucket.{target}.id")
        elif kind == "sqs_queue":
            variables[f"{key}_QUEUE_URL"] = Ref(f"aws_sqs_queue.{target}.url")
    return variables


def render_lambda(c: Component, p: LambdaFunctionParams, ctx: RenderContext) -> Fragment:
    n = c.name
    ctx.require(n, p.code_bucket, "s3_bucket")
    key = ctx.kms_key_arn()
    name = function_name(ctx, n)
    group = Ref(f"aws_cloudwatch_log_group.{n}.arn")
    dlq = f"{n}_dlq"
    statements = [
        statement(
            "WriteOwnLogs", ("logs:CreateLogStream", "logs:PutLogEvents"), [Template((group, ":*"))]
        ),
        statement("DeadLetter", ("sqs:SendMessage",), [Ref(f"aws_sqs_queue.{dlq}.arn")]),
        statement("StackKey", ("kms:Decrypt", "kms:GenerateDataKey"), [key]),
        *grant_statements(ctx, n, p.grants),
    ]
    blocks = role(
        ctx,
        n,
        (n, "fn"),
        "lambda.amazonaws.com",
        statements,
        f"What the {n} function may do (its grants only)",
    )
    body: list[Attr | Block] = [
        Attr("function_name", name),
        Attr("description", f"infra-crew function {n}"),
        Attr("role", Ref(f"aws_iam_role.{n}.arn")),
        Attr("s3_bucket", Ref(f"aws_s3_bucket.{p.code_bucket}.id")),
        Attr("s3_key", Ref(f"aws_s3_object.{n}_bootstrap.key")),
        Attr("runtime", p.runtime),
        Attr("handler", _HANDLER),
        Attr("architectures", [p.architecture]),
        Attr("memory_size", p.memory_mb),
        Attr("timeout", p.timeout_s),
        Attr("reserved_concurrent_executions", p.reserved_concurrency),
        Attr("kms_key_arn", key),
        Block("dead_letter_config", (), [Attr("target_arn", Ref(f"aws_sqs_queue.{dlq}.arn"))]),
    ]
    variables = _environment(ctx, p)
    if variables:
        body.append(Block("environment", (), [Attr("variables", variables)]))
    body.append(
        Attr(
            "depends_on",
            [Ref(f"aws_cloudwatch_log_group.{n}"), Ref(f"aws_iam_role_policy.{n}")],
        )
    )
    fragment = Fragment(
        data=[b for b in blocks if b.type == "data"],
        resources=[
            resource(
                "aws_cloudwatch_log_group",
                n,
                # Lambda writes to /aws/lambda/<function name>: created here first, so it has
                # the stack key and a finite retention instead of Lambda's unencrypted default.
                Attr("name", Template(("/aws/lambda/", *name.parts))),
                Attr("retention_in_days", p.log_retention_days),
                Attr("kms_key_id", key),
            ),
            resource(
                "aws_sqs_queue",
                dlq,
                Attr("name", ctx.aws_name(n, "dlq", limit=80)),
                Attr("message_retention_seconds", 1_209_600),
                Attr("sqs_managed_sse_enabled", True),
            ),
            *[b for b in blocks if b.type == "resource"],
            resource(
                "aws_s3_object",
                f"{n}_bootstrap",
                Attr("bucket", Ref(f"aws_s3_bucket.{p.code_bucket}.id")),
                Attr("key", p.code_key),
                Attr("content_base64", bootstrap_package(p.runtime)),
                Attr("content_type", "application/zip"),
                Attr("kms_key_id", key),
            ),
            resource("aws_lambda_function", n, *body),
        ],
        outputs=[
            output(
                f"{n}_function_name",
                Ref(f"aws_lambda_function.{n}.function_name"),
                "Lambda function name (deploy with update-function-code).",
            ),
            output(f"{n}_function_arn", Ref(f"aws_lambda_function.{n}.arn"), "Function ARN."),
            output(f"{n}_dlq_url", Ref(f"aws_sqs_queue.{dlq}.url"), "Dead-letter queue URL."),
        ],
    )
    if p.schedule is not None:
        fragment.resources += _schedule(ctx, n, p.schedule)
    return fragment


def _schedule(ctx: RenderContext, n: str, expression: str) -> list[Block]:
    """An EventBridge rule that invokes the function, and the permission for exactly it."""
    rule = f"{n}_schedule"
    return [
        resource(
            "aws_cloudwatch_event_rule",
            rule,
            Attr("name", ctx.aws_name(n, "schedule", limit=64)),
            Attr("description", f"Schedule of the {n} function"),
            Attr("schedule_expression", expression),
        ),
        resource(
            "aws_cloudwatch_event_target",
            rule,
            Attr("rule", Ref(f"aws_cloudwatch_event_rule.{rule}.name")),
            Attr("arn", Ref(f"aws_lambda_function.{n}.arn")),
        ),
        resource(
            "aws_lambda_permission",
            rule,
            Attr("statement_id", "AllowInvokeFromItsSchedule"),
            Attr("action", "lambda:InvokeFunction"),
            Attr("function_name", Ref(f"aws_lambda_function.{n}.function_name")),
            Attr("principal", "events.amazonaws.com"),
            Attr("source_arn", Ref(f"aws_cloudwatch_event_rule.{rule}.arn")),
        ),
    ]


def render_http_api(c: Component, p: HttpApiParams, ctx: RenderContext) -> Fragment:
    n = c.name
    ctx.require(n, p.target, "lambda_function")
    fn = p.target
    api = f"aws_apigatewayv2_api.{n}"
    return Fragment(
        resources=[
            resource(
                "aws_cloudwatch_log_group",
                f"{n}_access",
                Attr(
                    "name",
                    Template(("/infra-crew/", Ref("var.name_prefix"), f"/apigateway/{n}")),
                ),
                Attr("retention_in_days", p.access_log_retention_days),
                Attr("kms_key_id", ctx.kms_key_arn()),
            ),
            resource(
                "aws_apigatewayv2_api",
                n,
                Attr("name", ctx.aws_name(n, limit=128)),
                Attr("description", f"infra-crew HTTP API {n}, in front of {fn}"),
                Attr("protocol_type", "HTTP"),
            ),
            resource(
                "aws_apigatewayv2_integration",
                n,
                Attr("api_id", Ref(f"{api}.id")),
                Attr("integration_type", "AWS_PROXY"),
                Attr("integration_method", "POST"),
                Attr("integration_uri", Ref(f"aws_lambda_function.{fn}.invoke_arn")),
                Attr("payload_format_version", "2.0"),
                Attr("timeout_milliseconds", 30_000),
            ),
            resource(
                "aws_apigatewayv2_route",
                n,
                Attr("api_id", Ref(f"{api}.id")),
                Attr("route_key", "$default"),
                Attr(
                    "target",
                    Template(("integrations/", Ref(f"aws_apigatewayv2_integration.{n}.id"))),
                ),
            ),
            resource(
                "aws_apigatewayv2_stage",
                n,
                Attr("api_id", Ref(f"{api}.id")),
                Attr("name", "$default"),
                Attr("auto_deploy", True),
                Block(
                    "access_log_settings",
                    (),
                    [
                        Attr("destination_arn", Ref(f"aws_cloudwatch_log_group.{n}_access.arn")),
                        Attr("format", Call("jsonencode", (_ACCESS_LOG_FORMAT,))),
                    ],
                ),
                Block(
                    "default_route_settings",
                    (),
                    [
                        Attr("throttling_rate_limit", p.throttling_rate_limit),
                        Attr("throttling_burst_limit", p.throttling_burst_limit),
                    ],
                ),
            ),
            resource(
                "aws_lambda_permission",
                f"{n}_invoke",
                Attr("statement_id", "AllowInvokeFromThisHttpApi"),
                Attr("action", "lambda:InvokeFunction"),
                Attr("function_name", Ref(f"aws_lambda_function.{fn}.function_name")),
                Attr("principal", "apigateway.amazonaws.com"),
                Attr("source_arn", Template((Ref(f"{api}.execution_arn"), "/*/*"))),
            ),
        ],
        outputs=[
            output(f"{n}_endpoint", Ref(f"{api}.api_endpoint"), "The API's HTTPS endpoint."),
        ],
    )
