"""PlanSpec -> the four files of a Terraform workspace, from the vetted templates.

`versions.tf` pins terraform and the AWS provider and declares the backend type (its settings
come at `init` from crew settings, so the files do not depend on where state lives);
`main.tf` holds the providers (required tags as `default_tags`), data sources and resources;
`variables.tf` the one input, `name_prefix`; `outputs.tf` what each component exposes.
The same PlanSpec always gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from schemas.plan import PlanSpec
from tools.hcl import Attr, Block, Call, Ref, Value, render_file
from tools.render.compute import render_ecs_scheduled_task, render_ecs_service
from tools.render.context import Fragment, RenderContext, RenderError, Shared
from tools.render.datastores import render_rds, render_redis
from tools.render.dynamodb import render_dynamodb
from tools.render.ec2 import render_ec2_asg
from tools.render.edge import render_alb, render_cloudfront
from tools.render.identity import render_iam_role
from tools.render.messaging import render_sqs
from tools.render.network import render_vpc
from tools.render.observability import render_alarms, render_log_group
from tools.render.s3 import render_s3_bucket
from tools.render.serverless import render_http_api, render_lambda
from tools.render.shared import shared_fragment
from tools.stack import StackKey

Backend = Literal["local", "s3"]
FILES = ("main.tf", "outputs.tf", "variables.tf", "versions.tf")

Template = Callable[[Any, Any, RenderContext], Fragment]

#: One template per catalog type (tests check this covers `catalog.CATALOG` exactly).
TEMPLATES: dict[str, Template] = {
    "vpc": render_vpc,
    "alb": render_alb,
    "ecs_service": render_ecs_service,
    "ecs_scheduled_task": render_ecs_scheduled_task,
    "ec2_asg": render_ec2_asg,
    "rds_postgres": render_rds,
    "rds_mysql": render_rds,
    "elasticache_redis": render_redis,
    "s3_bucket": render_s3_bucket,
    "cloudfront_distribution": render_cloudfront,
    "sqs_queue": render_sqs,
    "cloudwatch_log_group": render_log_group,
    "cloudwatch_alarms": render_alarms,
    "iam_role": render_iam_role,
    "lambda_function": render_lambda,
    "http_api": render_http_api,
    "dynamodb_table": render_dynamodb,
}

_NAME_PREFIX_PATTERN = "^[a-z][a-z0-9-]{1,11}[a-z0-9]$"


def render_workspace_files(plan: PlanSpec, *, backend: Backend = "local") -> dict[str, str]:
    """File name -> content. Raises RenderError (or the catalog's errors) for a plan the
    templates refuse; never renders anything the allow-list does not know."""
    ctx = RenderContext.for_plan(plan)
    components = Fragment()
    for component in plan.components:
        template = TEMPLATES.get(component.type)
        if template is None:  # the catalog grew without a template: refuse, never guess
            raise RenderError(f"no Terraform template for catalog type '{component.type}'")
        components.extend(template(component, ctx.params[component.name], ctx))
    shared = Fragment()
    rendered: set[Shared] = set()
    while pending := [s for s in Shared if s in ctx.needs and s not in rendered]:
        piece = pending[0]
        rendered.add(piece)
        if piece is not Shared.US_EAST_1:
            shared.extend(shared_fragment(ctx, piece))
    _check_unique([*shared.data, *components.data, *shared.resources, *components.resources])
    _check_unique([*shared.outputs, *components.outputs])

    providers = [_provider(plan)]
    if Shared.US_EAST_1 in ctx.needs:
        providers.append(_provider(plan, alias="us_east_1"))
    main = [*providers, *shared.data, *components.data, *shared.resources, *components.resources]
    return {
        "main.tf": render_file(main),
        "outputs.tf": render_file([*shared.outputs, *components.outputs]),
        "variables.tf": render_file([_name_prefix(plan)]),
        "versions.tf": render_file([_versions(backend)]),
    }


def _provider(plan: PlanSpec, alias: str | None = None) -> Block:
    body: list[Attr | Block] = []
    if alias is not None:
        body.append(Attr("alias", alias))
    tags: dict[str, Value] = dict(sorted(plan.tags.items()))
    body += [
        Attr("region", "us-east-1" if alias == "us_east_1" else plan.region),
        Block("default_tags", (), [Attr("tags", tags)]),
    ]
    return Block("provider", ("aws",), body)


def _name_prefix(plan: PlanSpec) -> Block:
    return Block(
        "variable",
        ("name_prefix",),
        [
            Attr("type", Ref("string")),
            Attr(
                "description",
                "Prefix of every AWS resource name in this stack (3-13 characters).",
            ),
            Attr("default", StackKey.of(plan).name_prefix),
            Block(
                "validation",
                (),
                [
                    Attr(
                        "condition",
                        Call(
                            "can", (Call("regex", (_NAME_PREFIX_PATTERN, Ref("var.name_prefix"))),)
                        ),
                    ),
                    Attr(
                        "error_message",
                        "name_prefix: 3-13 lower-case letters, digits or hyphens, starting "
                        "with a letter.",
                    ),
                ],
            ),
        ],
    )


def _versions(backend: Backend) -> Block:
    return Block(
        "terraform",
        (),
        [
            Attr("required_version", ">= 1.5"),
            Block(
                "required_providers",
                (),
                [Attr("aws", {"source": "hashicorp/aws", "version": "~> 5.0"})],
            ),
            # Settings come from `terraform init -backend-config=...` (crew settings).
            Block("backend", (backend,)),
        ],
    )


def _check_unique(blocks: list[Block]) -> None:
    seen: dict[tuple[str, ...], int] = {}
    for block in blocks:
        key = (block.type, *block.labels)
        if key in seen:
            raise RenderError(
                f"two components render the same {block.type} {'.'.join(block.labels)}: "
                "rename one of them"
            )
        seen[key] = 1
