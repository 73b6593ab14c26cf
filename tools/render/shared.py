"""Stack-wide pieces, rendered once when any template asks for them (see `Shared`).

- identity: the account id and partition, for exact ARNs.
- kms: one customer-managed key per stack (rotation on) for logs, topics, buckets, databases.
- access_logs: a private bucket receiving S3 server access logs and ALB access logs (AWS
  delivers those only to SSE-S3 buckets, so this one bucket is not KMS-encrypted).
- ecs_cluster: the cluster every ECS service and scheduled task of the stack runs in.
"""

from __future__ import annotations

from tools.hcl import Attr, Block, Call, Ref, Template, Value
from tools.render.context import Fragment, RenderContext, Shared, data, output, resource
from tools.render.s3 import bucket_blocks, tls_only_statement


def shared_fragment(ctx: RenderContext, piece: Shared) -> Fragment:
    return {
        Shared.IDENTITY: _identity,
        Shared.KMS: _kms,
        Shared.ACCESS_LOGS: _access_logs,
        Shared.ECS_CLUSTER: _ecs_cluster,
    }[piece](ctx)


def _identity(ctx: RenderContext) -> Fragment:
    return Fragment(data=[data("aws_caller_identity", "current"), data("aws_partition", "current")])


def _kms(ctx: RenderContext) -> Fragment:
    account = ctx.account_id()
    partition = ctx.partition()
    region = ctx.plan.region
    root = Template(("arn:", partition, ":iam::", account, ":root"))
    log_groups = Template(("arn:", partition, f":logs:{region}:", account, ":log-group:*"))
    statements: list[Value] = [
        {
            "Sid": "AccountAdministersTheKey",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsEncryptsThisStacksLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": [
                "kms:Decrypt*",
                "kms:Describe*",
                "kms:Encrypt*",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        },
        {
            "Sid": "CloudWatchAlarmsPublishToEncryptedTopics",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        },
    ]
    if ctx.of_type("cloudfront_distribution"):
        statements.append(
            {
                "Sid": "CloudFrontReadsEncryptedSiteObjects",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        )
    policy = Call("jsonencode", ({"Version": "2012-10-17", "Statement": statements},))
    return Fragment(
        resources=[
            resource(
                "aws_kms_key",
                "stack",
                Attr("description", Template(("infra-crew stack key ", Ref("var.name_prefix")))),
                Attr("enable_key_rotation", True),
                Attr("deletion_window_in_days", 30 if ctx.prod else 7),
                Attr("policy", policy),
            ),
            resource(
                "aws_kms_alias",
                "stack",
                Attr("name", Template(("alias/", Ref("var.name_prefix")))),
                Attr("target_key_id", Ref("aws_kms_key.stack.key_id")),
            ),
        ],
        outputs=[output("kms_key_arn", Ref("aws_kms_key.stack.arn"), "The stack's KMS key.")],
    )


def _access_logs(ctx: RenderContext) -> Fragment:
    label = "stack_access_logs"
    arn = Ref(f"aws_s3_bucket.{label}.arn")
    account = ctx.account_id()
    statements = [
        tls_only_statement(label),
        Block(
            "statement",
            (),
            [
                Attr("sid", "S3ServerAccessLogs"),
                Attr("effect", "Allow"),
                Attr("actions", ["s3:PutObject"]),
                Attr("resources", [Template((arn, "/*"))]),
                Block(
                    "principals",
                    (),
                    [Attr("type", "Service"), Attr("identifiers", ["logging.s3.amazonaws.com"])],
                ),
                Block(
                    "condition",
                    (),
                    [
                        Attr("test", "StringEquals"),
                        Attr("variable", "aws:SourceAccount"),
                        Attr("values", [account]),
                    ],
                ),
            ],
        ),
    ]
    if ctx.of_type("alb"):
        statements.append(
            Block(
                "statement",
                (),
                [
                    Attr("sid", "LoadBalancerAccessLogs"),
                    Attr("effect", "Allow"),
                    Attr("actions", ["s3:PutObject"]),
                    Attr("resources", [Template((arn, "/alb/AWSLogs/", account, "/*"))]),
                    Block(
                        "principals",
                        (),
                        [
                            Attr("type", "AWS"),
                            Attr("identifiers", [Ref("data.aws_elb_service_account.current.arn")]),
                        ],
                    ),
                ],
            )
        )
    fragment = bucket_blocks(
        ctx,
        label,
        prefix_name="logs",
        versioning=True,
        force_destroy=not ctx.prod,
        kms=False,
        access_logging=False,
        policy_statements=statements,
    )
    if ctx.of_type("alb"):
        fragment.data.insert(0, data("aws_elb_service_account", "current"))
    fragment.outputs.append(
        output("access_log_bucket", Ref(f"aws_s3_bucket.{label}.bucket"), "Access logs bucket.")
    )
    return fragment


def _ecs_cluster(ctx: RenderContext) -> Fragment:
    return Fragment(
        resources=[
            resource(
                "aws_ecs_cluster",
                "stack",
                Attr("name", ctx.aws_name("cluster", limit=255)),
                Block("setting", (), [Attr("name", "containerInsights"), Attr("value", "enabled")]),
            )
        ],
        outputs=[output("ecs_cluster_name", Ref("aws_ecs_cluster.stack.name"), "ECS cluster.")],
    )
