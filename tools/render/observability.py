"""Observability: log groups and metric alarms notifying an encrypted SNS topic.

Each alarm kind is defined for the component types that publish its metric; any other pair
is refused with the list of what is supported, rather than rendered as an alarm that never
fires.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.components import AlarmKind, CloudWatchAlarmsParams, CloudWatchLogGroupParams
from schemas.plan import Component
from tools.hcl import Attr, Ref, Value
from tools.render.context import Fragment, RenderContext, RenderError, output, resource
from tools.render.network import log_group


@dataclass(frozen=True)
class AlarmSpec:
    namespace: str
    metric: str
    statistic: str
    comparison: str
    threshold: float
    description: str


_CPU = AlarmSpec("", "CPUUtilization", "Average", "GreaterThanThreshold", 80, "CPU above 80 %")
ALARMS: dict[tuple[str, AlarmKind], AlarmSpec] = {
    ("ecs_service", AlarmKind.CPU_HIGH): AlarmSpec(
        "AWS/ECS", _CPU.metric, "Average", _CPU.comparison, 80, _CPU.description
    ),
    ("ec2_asg", AlarmKind.CPU_HIGH): AlarmSpec(
        "AWS/EC2", _CPU.metric, "Average", _CPU.comparison, 80, _CPU.description
    ),
    ("alb", AlarmKind.HTTP_5XX): AlarmSpec(
        "AWS/ApplicationELB",
        "HTTPCode_ELB_5XX_Count",
        "Sum",
        "GreaterThanThreshold",
        10,
        "more than 10 load balancer 5xx responses a minute",
    ),
    ("http_api", AlarmKind.HTTP_5XX): AlarmSpec(
        "AWS/ApiGateway",
        "5xx",
        "Sum",
        "GreaterThanThreshold",
        10,
        "more than 10 HTTP API 5xx responses a minute",
    ),
    ("lambda_function", AlarmKind.FUNCTION_ERRORS): AlarmSpec(
        "AWS/Lambda",
        "Errors",
        "Sum",
        "GreaterThanThreshold",
        5,
        "more than 5 failed invocations a minute",
    ),
    ("lambda_function", AlarmKind.DLQ_NOT_EMPTY): AlarmSpec(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        "GreaterThanThreshold",
        0,
        "failed asynchronous invocations in the dead-letter queue",
    ),
    ("sqs_queue", AlarmKind.QUEUE_DEPTH): AlarmSpec(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        "GreaterThanThreshold",
        1000,
        "more than 1000 messages waiting",
    ),
    ("sqs_queue", AlarmKind.DLQ_NOT_EMPTY): AlarmSpec(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        "GreaterThanThreshold",
        0,
        "messages in the dead-letter queue",
    ),
    **{
        (db, kind): spec
        for db in ("rds_postgres", "rds_mysql")
        for kind, spec in (
            (
                AlarmKind.DB_CPU_HIGH,
                AlarmSpec("AWS/RDS", _CPU.metric, "Average", _CPU.comparison, 80, _CPU.description),
            ),
            (
                AlarmKind.DB_FREE_STORAGE_LOW,
                AlarmSpec(
                    "AWS/RDS",
                    "FreeStorageSpace",
                    "Minimum",
                    "LessThanThreshold",
                    2 * 1024**3,
                    "less than 2 GiB of storage free",
                ),
            ),
        )
    },
}


def _dimensions(ctx: RenderContext, target: str, kind: AlarmKind) -> dict[str, Value]:
    rtype = ctx.type_of(target)
    if rtype == "ecs_service":
        return {
            "ClusterName": Ref("aws_ecs_cluster.stack.name"),
            "ServiceName": Ref(f"aws_ecs_service.{target}.name"),
        }
    if rtype == "ec2_asg":
        return {"AutoScalingGroupName": Ref(f"aws_autoscaling_group.{target}.name")}
    if rtype == "alb":
        return {"LoadBalancer": Ref(f"aws_lb.{target}.arn_suffix")}
    if rtype == "sqs_queue":
        queue = f"{target}_dlq" if kind is AlarmKind.DLQ_NOT_EMPTY else target
        return {"QueueName": Ref(f"aws_sqs_queue.{queue}.name")}
    if rtype == "http_api":
        return {"ApiId": Ref(f"aws_apigatewayv2_api.{target}.id")}
    if rtype == "lambda_function":
        if kind is AlarmKind.DLQ_NOT_EMPTY:
            return {"QueueName": Ref(f"aws_sqs_queue.{target}_dlq.name")}
        return {"FunctionName": Ref(f"aws_lambda_function.{target}.function_name")}
    return {"DBInstanceIdentifier": Ref(f"aws_db_instance.{target}.identifier")}


def render_log_group(c: Component, p: CloudWatchLogGroupParams, ctx: RenderContext) -> Fragment:
    return Fragment(
        resources=[log_group(ctx, c.name, ("logs", c.name), p.retention_days)],
        outputs=[
            output(
                f"{c.name}_log_group",
                Ref(f"aws_cloudwatch_log_group.{c.name}.name"),
                "Log group name.",
            )
        ],
    )


def render_alarms(c: Component, p: CloudWatchAlarmsParams, ctx: RenderContext) -> Fragment:
    n = c.name
    topic = Ref(f"aws_sns_topic.{n}.arn")
    resources = [
        resource(
            "aws_sns_topic",
            n,
            Attr("name", ctx.aws_name(n, limit=256)),
            Attr("kms_master_key_id", ctx.kms_key_arn()),
        )
    ]
    seen: set[str] = set()
    for alarm in p.alarms:
        rtype = ctx.type_of(alarm.component)
        spec = ALARMS.get((rtype, alarm.kind))
        if spec is None:
            kinds = sorted(k.value for (t, k) in ALARMS if t == rtype)
            raise RenderError(
                f"alarm '{alarm.kind.value}' on '{alarm.component}' ({rtype}) is not supported; "
                + (f"for {rtype} use: {', '.join(kinds)}" if kinds else f"{rtype} has no alarms")
            )
        label = f"{n}_{alarm.component}_{alarm.kind.value}"
        if label in seen:
            continue  # the same alarm listed twice renders once
        seen.add(label)
        resources.append(
            resource(
                "aws_cloudwatch_metric_alarm",
                label,
                Attr("alarm_name", ctx.aws_name(alarm.component, alarm.kind.value, limit=255)),
                Attr("alarm_description", f"{alarm.component}: {spec.description}"),
                Attr("namespace", spec.namespace),
                Attr("metric_name", spec.metric),
                Attr("statistic", spec.statistic),
                Attr("comparison_operator", spec.comparison),
                Attr("threshold", spec.threshold),
                Attr("period", 60),
                Attr("evaluation_periods", 3),
                Attr("treat_missing_data", "notBreaching"),
                Attr("dimensions", _dimensions(ctx, alarm.component, alarm.kind)),
                Attr("alarm_actions", [topic]),
                Attr("ok_actions", [topic]),
            )
        )
    return Fragment(
        resources=resources,
        outputs=[output(f"{n}_topic_arn", topic, "Subscribe to this topic to get the alarms.")],
    )
