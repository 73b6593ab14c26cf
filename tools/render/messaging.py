"""SQS: a queue and its dead-letter queue, SQS-managed encryption, TLS-only queue policies.

No redrive-allow policy on the dead-letter queue (which queues may use it): moto drops the
attribute, so the provider would wait for it forever in the test cloud; any queue of the
account may name the DLQ as its target, which grants no access to its messages.
"""

from __future__ import annotations

from catalog.components import SqsQueueParams
from schemas.plan import Component
from tools.hcl import Attr, Block, Call, Ref, Template
from tools.render.context import Fragment, RenderContext, data, output, resource

#: SQS keeps messages at most 14 days; the dead-letter queue keeps them that long.
_DLQ_RETENTION_S = 1_209_600


def _queue_name(ctx: RenderContext, fifo: bool, *parts: str) -> Template:
    name = ctx.aws_name(*parts, limit=75 if fifo else 80)
    return Template((*name.parts, ".fifo")) if fifo else name


def _tls_only(label: str, arn: Template) -> Block:
    """The queue's policy: deny every request that does not use TLS. The ARN is spelled out
    (not read from the queue) so the policy can be part of the queue itself."""
    return data(
        "aws_iam_policy_document",
        f"{label}_queue",
        Block(
            "statement",
            (),
            [
                Attr("sid", "DenyInsecureTransport"),
                Attr("effect", "Deny"),
                Attr("actions", ["sqs:*"]),
                Attr("resources", [arn]),
                Block("principals", (), [Attr("type", "AWS"), Attr("identifiers", ["*"])]),
                Block(
                    "condition",
                    (),
                    [
                        Attr("test", "Bool"),
                        Attr("variable", "aws:SecureTransport"),
                        Attr("values", ["false"]),
                    ],
                ),
            ],
        ),
    )


def render_sqs(c: Component, p: SqsQueueParams, ctx: RenderContext) -> Fragment:
    n = c.name
    dlq = f"{n}_dlq"
    names = {dlq: _queue_name(ctx, p.fifo, n, "dlq"), n: _queue_name(ctx, p.fifo, n)}
    arns = {label: ctx.arn("sqs", name) for label, name in names.items()}
    fifo: list[Attr] = [Attr("fifo_queue", True)] if p.fifo else []
    redrive = Call(
        "jsonencode",
        (
            {
                "deadLetterTargetArn": Ref(f"aws_sqs_queue.{dlq}.arn"),
                "maxReceiveCount": p.max_receive_count,
            },
        ),
    )

    def policy(label: str) -> Attr:
        return Attr("policy", Ref(f"data.aws_iam_policy_document.{label}_queue.json"))

    return Fragment(
        data=[_tls_only(dlq, arns[dlq]), _tls_only(n, arns[n])],
        resources=[
            resource(
                "aws_sqs_queue",
                dlq,
                Attr("name", names[dlq]),
                *fifo,
                Attr("message_retention_seconds", _DLQ_RETENTION_S),
                Attr("sqs_managed_sse_enabled", True),
                policy(dlq),
            ),
            resource(
                "aws_sqs_queue",
                n,
                Attr("name", names[n]),
                *fifo,
                Attr("visibility_timeout_seconds", p.visibility_timeout_s),
                Attr("message_retention_seconds", p.message_retention_s),
                Attr("sqs_managed_sse_enabled", True),
                Attr("redrive_policy", redrive),
                policy(n),
            ),
        ],
        outputs=[
            output(f"{n}_url", Ref(f"aws_sqs_queue.{n}.url"), "Queue URL."),
            output(f"{n}_arn", Ref(f"aws_sqs_queue.{n}.arn"), "Queue ARN."),
            output(f"{n}_dlq_url", Ref(f"aws_sqs_queue.{dlq}.url"), "Dead-letter queue URL."),
        ],
    )
