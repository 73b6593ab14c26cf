"""DynamoDB: a table encrypted with the stack's KMS key, point-in-time recovery, optional TTL.

Key attributes are the only ones declared (DynamoDB is schemaless beyond its keys); names are
catalog-validated identifiers. There is no resource policy: only roles granted access to the
table (catalog grants) can read or write it.
"""

from __future__ import annotations

from catalog.components import DynamoDbTableParams
from schemas.plan import Component
from tools.hcl import Attr, Block, Ref
from tools.render.context import Fragment, RenderContext, output, resource


def render_dynamodb(c: Component, p: DynamoDbTableParams, ctx: RenderContext) -> Fragment:
    n = c.name
    keys = [(p.hash_key, p.hash_key_type)]
    if p.range_key is not None:
        keys.append((p.range_key, p.range_key_type))
    body: list[Attr | Block] = [
        Attr("name", ctx.aws_name(n, limit=255)),
        Attr("billing_mode", "PAY_PER_REQUEST" if p.billing_mode == "on_demand" else "PROVISIONED"),
    ]
    if p.billing_mode == "provisioned":
        body += [Attr("read_capacity", p.read_capacity), Attr("write_capacity", p.write_capacity)]
    body.append(Attr("hash_key", p.hash_key))
    if p.range_key is not None:
        body.append(Attr("range_key", p.range_key))
    body += [
        Block("attribute", (), [Attr("name", name), Attr("type", kind)]) for name, kind in keys
    ]
    body += [
        Block(
            "server_side_encryption",
            (),
            [Attr("enabled", True), Attr("kms_key_arn", ctx.kms_key_arn())],
        ),
        Block("point_in_time_recovery", (), [Attr("enabled", p.point_in_time_recovery)]),
        Attr("deletion_protection_enabled", p.deletion_protection),
    ]
    if p.ttl_attribute is not None:
        body.append(
            Block("ttl", (), [Attr("attribute_name", p.ttl_attribute), Attr("enabled", True)])
        )
    return Fragment(
        resources=[resource("aws_dynamodb_table", n, *body)],
        outputs=[
            output(f"{n}_table_name", Ref(f"aws_dynamodb_table.{n}.name"), "Table name."),
            output(f"{n}_table_arn", Ref(f"aws_dynamodb_table.{n}.arn"), "Table ARN."),
        ],
    )
