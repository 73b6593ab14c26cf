"""S3 buckets: private, owner-enforced, encrypted, versioned, TLS-only, access-logged.

`bucket_blocks` is shared by the `s3_bucket` component and the stack's access-log bucket.
A lifecycle configuration only when the goal asks for a retention (`expiration_days`): the AWS
provider (5.x) waits about 55 s for every `aws_s3_bucket_lifecycle_configuration` to settle,
which would dominate every apply (see tools/render/waivers.py, CKV2_AWS_61).
"""

from __future__ import annotations

from catalog.components import CloudFrontParams, S3BucketParams
from schemas.plan import Component
from tools.hcl import Attr, Block, Ref, Template
from tools.render.context import Fragment, RenderContext, data, hyphen, output, resource

#: AWS caps bucket_prefix at 37 characters.
_BUCKET_PREFIX_MAX = 37


def tls_only_statement(label: str) -> Block:
    """Deny every request to the bucket that does not use TLS."""
    arn = Ref(f"aws_s3_bucket.{label}.arn")
    return Block(
        "statement",
        (),
        [
            Attr("sid", "DenyInsecureTransport"),
            Attr("effect", "Deny"),
            Attr("actions", ["s3:*"]),
            Attr("resources", [arn, Template((arn, "/*"))]),
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
    )


def bucket_blocks(
    ctx: RenderContext,
    label: str,
    *,
    prefix_name: str,
    versioning: bool,
    force_destroy: bool,
    kms: bool,
    access_logging: bool,
    policy_statements: list[Block],
) -> Fragment:
    bucket = Ref(f"aws_s3_bucket.{label}.id")
    room = _BUCKET_PREFIX_MAX - 13 - 2  # "<name_prefix>-" ... "-"
    prefix = Template((Ref("var.name_prefix"), f"-{hyphen(prefix_name)[:room].rstrip('-')}-"))
    sse: list[Attr] = (
        [Attr("sse_algorithm", "aws:kms"), Attr("kms_master_key_id", ctx.kms_key_arn())]
        if kms
        else [Attr("sse_algorithm", "AES256")]
    )
    resources = [
        resource(
            "aws_s3_bucket",
            label,
            Attr("bucket_prefix", prefix),
            Attr("force_destroy", force_destroy),
        ),
        resource(
            "aws_s3_bucket_public_access_block",
            label,
            Attr("bucket", bucket),
            Attr("block_public_acls", True),
            Attr("block_public_policy", True),
            Attr("ignore_public_acls", True),
            Attr("restrict_public_buckets", True),
        ),
        resource(
            "aws_s3_bucket_ownership_controls",
            label,
            Attr("bucket", bucket),
            Block("rule", (), [Attr("object_ownership", "BucketOwnerEnforced")]),
        ),
        resource(
            "aws_s3_bucket_server_side_encryption_configuration",
            label,
            Attr("bucket", bucket),
            Block(
                "rule",
                (),
                [
                    Block("apply_server_side_encryption_by_default", (), sse),
                    Attr("bucket_key_enabled", kms),
                ],
            ),
        ),
        resource(
            "aws_s3_bucket_versioning",
            label,
            Attr("bucket", bucket),
            Block(
                "versioning_configuration",
                (),
                [Attr("status", "Enabled" if versioning else "Suspended")],
            ),
        ),
    ]
    if access_logging:
        resources.append(
            resource(
                "aws_s3_bucket_logging",
                label,
                Attr("bucket", bucket),
                Attr("target_bucket", ctx.access_log_bucket()),
                Attr("target_prefix", f"s3/{label}/"),
                # S3 checks the log bucket lets it write before it accepts the setting.
                Attr("depends_on", [Ref("aws_s3_bucket_policy.stack_access_logs")]),
            )
        )
    resources.append(
        resource(
            "aws_s3_bucket_policy",
            label,
            Attr("bucket", bucket),
            Attr("policy", Ref(f"data.aws_iam_policy_document.{label}_bucket.json")),
            Attr("depends_on", [Ref(f"aws_s3_bucket_public_access_block.{label}")]),
        )
    )
    return Fragment(
        data=[data("aws_iam_policy_document", f"{label}_bucket", *policy_statements)],
        resources=resources,
    )


def render_s3_bucket(c: Component, p: S3BucketParams, ctx: RenderContext) -> Fragment:
    statements = [tls_only_statement(c.name)]
    cdns = ctx.referring(
        c.name, lambda o, q: isinstance(q, CloudFrontParams) and q.origin == c.name
    )
    arn = Ref(f"aws_s3_bucket.{c.name}.arn")
    for cdn in cdns:
        statements.append(
            Block(
                "statement",
                (),
                [
                    Attr("sid", f"CloudFrontReads{cdn.replace('_', '').title()}"),
                    Attr("effect", "Allow"),
                    Attr("actions", ["s3:GetObject"]),
                    Attr("resources", [Template((arn, "/*"))]),
                    Block(
                        "principals",
                        (),
                        [
                            Attr("type", "Service"),
                            Attr("identifiers", ["cloudfront.amazonaws.com"]),
                        ],
                    ),
                    Block(
                        "condition",
                        (),
                        [
                            Attr("test", "StringEquals"),
                            Attr("variable", "AWS:SourceArn"),
                            Attr("values", [Ref(f"aws_cloudfront_distribution.{cdn}.arn")]),
                        ],
                    ),
                ],
            )
        )
    fragment = bucket_blocks(
        ctx,
        c.name,
        prefix_name=c.name,
        versioning=p.versioning,
        force_destroy=p.force_destroy,
        kms=True,
        access_logging=p.access_logging,
        policy_statements=statements,
    )
    if p.expiration_days is not None:
        fragment.resources.append(_lifecycle(c.name, p.expiration_days))
    fragment.outputs += [
        output(f"{c.name}_bucket", Ref(f"aws_s3_bucket.{c.name}.bucket"), "Bucket name."),
        output(f"{c.name}_arn", arn, "Bucket ARN."),
    ]
    return fragment


def _lifecycle(label: str, days: int) -> Block:
    """Objects and their old versions expire `days` after they are written; unfinished
    multipart uploads are cleaned up after a week (CKV_AWS_300)."""
    return resource(
        "aws_s3_bucket_lifecycle_configuration",
        label,
        Attr("bucket", Ref(f"aws_s3_bucket.{label}.id")),
        Block(
            "rule",
            (),
            [
                Attr("id", "retention"),
                Attr("status", "Enabled"),
                Block("filter", (), []),
                Block("expiration", (), [Attr("days", days)]),
                Block("noncurrent_version_expiration", (), [Attr("noncurrent_days", days)]),
                Block("abort_incomplete_multipart_upload", (), [Attr("days_after_initiation", 7)]),
            ],
        ),
        Attr("depends_on", [Ref(f"aws_s3_bucket_versioning.{label}")]),
    )
