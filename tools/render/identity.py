"""A standalone IAM role for one AWS service, with least-privilege grants (never a user)."""

from __future__ import annotations

from catalog.components import IamRoleParams
from schemas.plan import Component
from tools.hcl import Attr, Ref
from tools.render.context import Fragment, RenderContext, output, resource
from tools.render.iam import grant_statements, role


def render_iam_role(c: Component, p: IamRoleParams, ctx: RenderContext) -> Fragment:
    n = c.name
    blocks = role(
        ctx,
        n,
        (n,),
        p.service,
        grant_statements(ctx, n, p.grants),
        f"infra-crew role {n} for {p.service}",
    )
    fragment = Fragment(
        data=[b for b in blocks if b.type == "data"],
        resources=[b for b in blocks if b.type == "resource"],
        outputs=[output(f"{n}_role_arn", Ref(f"aws_iam_role.{n}.arn"), "Role ARN.")],
    )
    if p.service == "ec2.amazonaws.com":
        fragment.resources.append(
            resource(
                "aws_iam_instance_profile",
                n,
                Attr("name", ctx.aws_name(n, limit=128)),
                Attr("role", Ref(f"aws_iam_role.{n}.name")),
            )
        )
    return fragment
