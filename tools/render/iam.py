"""IAM roles and least-privilege grants: exact actions on exact ARNs, never `*`.

A grant (`{component, access}`) becomes policy statements on that component's own ARNs; a
grant the catalog cannot express precisely is refused, not widened.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog.components import Access, Grant
from tools.hcl import Attr, Block, Ref, Template, Value
from tools.render.context import RenderContext, RenderError, data, resource

#: Services that pass `aws:SourceAccount` when assuming a role (confused-deputy guard).
_SOURCE_ACCOUNT_AWARE = frozenset(
    {"ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com", "events.amazonaws.com"}
)

_S3_READ = ("s3:GetObject",)
_S3_WRITE = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
_SQS_CONSUME = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)
_SQS_PUBLISH = ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")
_DYNAMODB_READ = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
)
_DYNAMODB_WRITE = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
_LOGS_READ = ("logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams")
_LOGS_WRITE = ("logs:CreateLogStream", "logs:PutLogEvents")


def statement(sid: str, actions: tuple[str, ...], resources: Sequence[Value]) -> Block:
    return Block(
        "statement",
        (),
        [
            Attr("sid", sid),
            Attr("effect", "Allow"),
            Attr("actions", sorted(set(actions))),
            Attr("resources", list(resources)),
        ],
    )


def _sid(*parts: str) -> str:
    return "".join(p.replace("_", " ").title().replace(" ", "") for p in parts)


def grant_statements(ctx: RenderContext, holder: str, grants: list[Grant]) -> list[Block]:
    """Statements for `holder`'s grants, in the order given (deterministic)."""
    statements: list[Block] = []
    for grant in grants:
        target, access = grant.component, grant.access
        kind = ctx.type_of(target)
        sid = _sid(access.value, target)
        if kind == "s3_bucket":
            statements += _s3(ctx, holder, target, access, sid)
        elif kind == "sqs_queue":
            actions = {
                Access.CONSUME: _SQS_CONSUME,
                Access.READ: _SQS_CONSUME,
                Access.PUBLISH: _SQS_PUBLISH,
                Access.WRITE: _SQS_PUBLISH,
                Access.READ_WRITE: _SQS_CONSUME + _SQS_PUBLISH,
            }[access]
            statements.append(statement(sid, actions, [Ref(f"aws_sqs_queue.{target}.arn")]))
        elif kind == "dynamodb_table":
            statements += _dynamodb(ctx, holder, target, access, sid)
        elif kind == "cloudwatch_log_group":
            _refuse(holder, target, kind, access, Access.CONSUME, Access.PUBLISH)
            actions = {
                Access.READ: _LOGS_READ,
                Access.WRITE: _LOGS_WRITE,
                Access.READ_WRITE: _LOGS_READ + _LOGS_WRITE,
            }[access]
            streams = Template((Ref(f"aws_cloudwatch_log_group.{target}.arn"), ":*"))
            statements.append(statement(sid, actions, [streams]))
        elif kind in ("rds_postgres", "rds_mysql"):
            _refuse(holder, target, kind, access, Access.CONSUME, Access.PUBLISH)
            # Connecting needs the master credentials RDS keeps in Secrets Manager.
            secret = Ref(f"aws_db_instance.{target}.master_user_secret[0].secret_arn")
            statements.append(
                statement(
                    sid,
                    ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"),
                    [secret],
                )
            )
            statements.append(statement(sid + "Key", ("kms:Decrypt",), [ctx.kms_key_arn()]))
        elif kind == "elasticache_redis":
            _refuse(holder, target, kind, access, Access.CONSUME, Access.PUBLISH)
            cache = [
                Ref(f"aws_elasticache_replication_group.{target}.arn"),
                Ref(f"aws_elasticache_user.{target}_app.arn"),
            ]
            statements.append(statement(sid, ("elasticache:Connect",), cache))
        else:
            raise RenderError(
                f"component '{holder}' has a grant on '{target}' ({kind}); grants can name an "
                "s3_bucket, sqs_queue, dynamodb_table, cloudwatch_log_group, rds_postgres, "
                "rds_mysql or elasticache_redis (network access to databases and caches is "
                "`allow_from` on them)"
            )
    return statements


def _s3(ctx: RenderContext, holder: str, target: str, access: Access, sid: str) -> list[Block]:
    _refuse(holder, target, "s3_bucket", access, Access.CONSUME, Access.PUBLISH)
    bucket = Ref(f"aws_s3_bucket.{target}.arn")
    objects = Template((Ref(f"aws_s3_bucket.{target}.arn"), "/*"))
    object_actions: tuple[str, ...] = ()
    key_actions: tuple[str, ...] = ()
    if access in (Access.READ, Access.READ_WRITE):
        object_actions += _S3_READ
        key_actions += ("kms:Decrypt",)
    if access in (Access.WRITE, Access.READ_WRITE):
        object_actions += _S3_WRITE
        key_actions += ("kms:Decrypt", "kms:GenerateDataKey")
    return [
        statement(sid + "List", ("s3:ListBucket",), [bucket]),
        statement(sid + "Objects", object_actions, [objects]),
        statement(sid + "Key", key_actions, [ctx.kms_key_arn()]),
    ]


def _dynamodb(
    ctx: RenderContext, holder: str, target: str, access: Access, sid: str
) -> list[Block]:
    """The table and its indexes, never `dynamodb:*`; the stack key for its encryption."""
    _refuse(holder, target, "dynamodb_table", access, Access.CONSUME, Access.PUBLISH)
    table = Ref(f"aws_dynamodb_table.{target}.arn")
    actions: tuple[str, ...] = ()
    key_actions: tuple[str, ...] = ("kms:Decrypt",)
    if access in (Access.READ, Access.READ_WRITE):
        actions += _DYNAMODB_READ
    if access in (Access.WRITE, Access.READ_WRITE):
        actions += _DYNAMODB_WRITE
        key_actions += ("kms:Encrypt", "kms:GenerateDataKey")
    return [
        statement(sid, actions, [table, Template((table, "/index/*"))]),
        statement(sid + "Key", key_actions, [ctx.kms_key_arn()]),
    ]


def _refuse(holder: str, target: str, kind: str, access: Access, *invalid: Access) -> None:
    if access in invalid:
        raise RenderError(
            f"component '{holder}' asks for '{access.value}' access to '{target}' ({kind}); "
            "use read, write or read_write"
        )


def role(
    ctx: RenderContext,
    label: str,
    name: tuple[str, ...],
    service: str,
    statements: list[Block],
    description: str,
) -> list[Block]:
    """A role only `service` can assume, with `statements` as its one inline policy."""
    trust: list[Attr | Block] = [
        Attr("effect", "Allow"),
        Attr("actions", ["sts:AssumeRole"]),
        Block("principals", (), [Attr("type", "Service"), Attr("identifiers", [service])]),
    ]
    if service in _SOURCE_ACCOUNT_AWARE:
        trust.append(
            Block(
                "condition",
                (),
                [
                    Attr("test", "StringEquals"),
                    Attr("variable", "aws:SourceAccount"),
                    Attr("values", [ctx.account_id()]),
                ],
            )
        )
    blocks = [
        data("aws_iam_policy_document", f"{label}_assume", Block("statement", (), trust)),
        resource(
            "aws_iam_role",
            label,
            Attr("name", ctx.aws_name(*name)),
            Attr("description", description),
            Attr("assume_role_policy", Ref(f"data.aws_iam_policy_document.{label}_assume.json")),
        ),
    ]
    if statements:
        blocks += [
            data("aws_iam_policy_document", label, *statements),
            resource(
                "aws_iam_role_policy",
                label,
                Attr("name", "least-privilege"),
                Attr("role", Ref(f"aws_iam_role.{label}.id")),
                Attr("policy", Ref(f"data.aws_iam_policy_document.{label}.json")),
            ),
        ]
    return blocks
