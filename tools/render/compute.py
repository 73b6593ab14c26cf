"""Compute on ECS Fargate: long-running services and scheduled tasks.

Workloads run in private subnets without public IPs. Their security group allows HTTPS out
(images, AWS APIs) and whatever the data stores' `allow_from` and the load balancer add; the
task or instance role carries only the component's grants.
"""

from __future__ import annotations

import re

from catalog.components import AlbParams, EcsScheduledTaskParams, EcsServiceParams
from schemas.plan import Component
from tools.hcl import Attr, Block, Call, Ref, Template, Value
from tools.render.context import Fragment, RenderContext, output, resource
from tools.render.iam import grant_statements, role, statement
from tools.render.network import internet_rule, log_group, security_group

_ECR_IMAGE = re.compile(
    r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([a-z0-9._/-]+?)(:|@|$)"
)


def alb_in_front(ctx: RenderContext, name: str) -> str | None:
    albs = ctx.referring(name, lambda _c, p: isinstance(p, AlbParams) and p.target == name)
    return albs[0] if albs else None


def workload_sg(ctx: RenderContext, c: Component, what: str) -> list[Block]:
    vpc = ctx.vpc_for(c)
    return [
        security_group(ctx, c.name, vpc, f"{what} {c.name}: HTTPS out, ingress from peers only"),
        internet_rule("egress", c.name, 443, "HTTPS to AWS APIs and image registries"),
    ]


def _execution_statements(ctx: RenderContext, c: Component, image: str, group: Ref) -> list[Block]:
    statements = [
        statement(
            "WriteTaskLogs",
            ("logs:CreateLogStream", "logs:PutLogEvents"),
            [Template((group, ":*"))],
        )
    ]
    match = _ECR_IMAGE.match(image)
    if match:
        account, region, repository = match.group(1), match.group(2), match.group(3)
        repo_arn = Template(
            ("arn:", ctx.partition(), f":ecr:{region}:{account}:repository/{repository}")
        )
        statements += [
            # The registry login token is not a resource-level permission in IAM.
            statement("EcrLogin", ("ecr:GetAuthorizationToken",), ["*"]),
            statement(
                "PullImage",
                (
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ),
                [repo_arn],
            ),
        ]
    return statements


def _task(
    c: Component, p: EcsServiceParams | EcsScheduledTaskParams, ctx: RenderContext, ports: bool
) -> Fragment:
    """Log group, execution and task roles, task definition: shared by services and tasks."""
    n = c.name
    group = Ref(f"aws_cloudwatch_log_group.{n}.arn")
    container: dict[str, Value] = {
        "name": n,
        "image": p.container_image,
        "essential": True,
        "readonlyRootFilesystem": False,
        "privileged": False,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": Ref(f"aws_cloudwatch_log_group.{n}.name"),
                "awslogs-region": ctx.plan.region,
                "awslogs-stream-prefix": n,
            },
        },
    }
    if ports:
        container["portMappings"] = [{"containerPort": p.container_port, "protocol": "tcp"}]
    blocks = [
        *role(
            ctx,
            f"{n}_execution",
            (n, "execution"),
            "ecs-tasks.amazonaws.com",
            _execution_statements(ctx, c, p.container_image, group),
            f"ECS pulls the image and writes logs for {n}",
        ),
        *role(
            ctx,
            f"{n}_task",
            (n, "task"),
            "ecs-tasks.amazonaws.com",
            grant_statements(ctx, n, p.grants),
            f"What {n}'s code may do (its grants only)",
        ),
    ]
    fragment = Fragment(
        data=[b for b in blocks if b.type == "data"],
        resources=[
            log_group(ctx, n, ("ecs", n), p.log_retention_days),
            *[b for b in blocks if b.type == "resource"],
            resource(
                "aws_ecs_task_definition",
                n,
                Attr("family", ctx.aws_name(n, limit=255)),
                Attr("requires_compatibilities", ["FARGATE"]),
                Attr("network_mode", "awsvpc"),
                Attr("cpu", str(p.cpu)),
                Attr("memory", str(p.memory_mb)),
                Attr("execution_role_arn", Ref(f"aws_iam_role.{n}_execution.arn")),
                Attr("task_role_arn", Ref(f"aws_iam_role.{n}_task.arn")),
                Attr("container_definitions", Call("jsonencode", ([container],))),
                Block(
                    "runtime_platform",
                    (),
                    [
                        Attr("operating_system_family", "LINUX"),
                        Attr("cpu_architecture", "X86_64"),
                    ],
                ),
            ),
        ],
    )
    fragment.resources += workload_sg(ctx, c, "ECS")
    return fragment


def _network_configuration(ctx: RenderContext, c: Component) -> Block:
    return Block(
        "network_configuration",
        (),
        [
            Attr("subnets", ctx.subnets(ctx.vpc_for(c), "private")),
            Attr("security_groups", [ctx.security_group(c.name)]),
            Attr("assign_public_ip", False),
        ],
    )


def render_ecs_service(c: Component, p: EcsServiceParams, ctx: RenderContext) -> Fragment:
    n = c.name
    fragment = _task(c, p, ctx, ports=True)
    cluster = ctx.ecs_cluster()
    body: list[Attr | Block] = [
        Attr("name", ctx.aws_name(n, limit=255)),
        Attr("cluster", cluster),
        Attr("task_definition", Ref(f"aws_ecs_task_definition.{n}.arn")),
        Attr("desired_count", p.desired_count),
        Attr("launch_type", "FARGATE"),
        Attr("platform_version", "LATEST"),
        Attr("propagate_tags", "SERVICE"),
        Attr("enable_ecs_managed_tags", True),
        _network_configuration(ctx, c),
        Block("deployment_circuit_breaker", (), [Attr("enable", True), Attr("rollback", True)]),
    ]
    alb = alb_in_front(ctx, n)
    if alb is not None:
        body.append(
            Block(
                "load_balancer",
                (),
                [
                    Attr("target_group_arn", Ref(f"aws_lb_target_group.{alb}.arn")),
                    Attr("container_name", n),
                    Attr("container_port", p.container_port),
                ],
            )
        )
        body.append(Attr("depends_on", [Ref(f"aws_lb_listener.{alb}")]))
    # Autoscaling owns the running count after the first deploy.
    body.append(Block("lifecycle", (), [Attr("ignore_changes", [Ref("desired_count")])]))
    service_id = Template(
        ("service/", Ref("aws_ecs_cluster.stack.name"), "/", Ref(f"aws_ecs_service.{n}.name"))
    )
    fragment.resources += [
        resource("aws_ecs_service", n, *body),
        resource(
            "aws_appautoscaling_target",
            n,
            Attr("service_namespace", "ecs"),
            Attr("scalable_dimension", "ecs:service:DesiredCount"),
            Attr("resource_id", service_id),
            Attr("min_capacity", p.min_count),
            Attr("max_capacity", p.max_count),
        ),
        resource(
            "aws_appautoscaling_policy",
            n,
            Attr("name", "cpu-target-tracking"),
            Attr("policy_type", "TargetTrackingScaling"),
            Attr("service_namespace", Ref(f"aws_appautoscaling_target.{n}.service_namespace")),
            Attr("scalable_dimension", Ref(f"aws_appautoscaling_target.{n}.scalable_dimension")),
            Attr("resource_id", Ref(f"aws_appautoscaling_target.{n}.resource_id")),
            Block(
                "target_tracking_scaling_policy_configuration",
                (),
                [
                    Attr("target_value", 60),
                    Block(
                        "predefined_metric_specification",
                        (),
                        [Attr("predefined_metric_type", "ECSServiceAverageCPUUtilization")],
                    ),
                ],
            ),
        ),
    ]
    fragment.outputs.append(
        output(f"{n}_service_name", Ref(f"aws_ecs_service.{n}.name"), "ECS service name.")
    )
    return fragment


def render_ecs_scheduled_task(
    c: Component, p: EcsScheduledTaskParams, ctx: RenderContext
) -> Fragment:
    n = c.name
    fragment = _task(c, p, ctx, ports=False)
    cluster = ctx.ecs_cluster()
    task_def = Ref(f"aws_ecs_task_definition.{n}.arn_without_revision")
    run_task = Block(
        "statement",
        (),
        [
            Attr("sid", "RunThisTask"),
            Attr("effect", "Allow"),
            Attr("actions", ["ecs:RunTask"]),
            Attr("resources", [Template((task_def, ":*"))]),
            Block(
                "condition",
                (),
                [
                    Attr("test", "ArnEquals"),
                    Attr("variable", "ecs:cluster"),
                    Attr("values", [cluster]),
                ],
            ),
        ],
    )
    pass_roles = statement(
        "PassTaskRoles",
        ("iam:PassRole",),
        [Ref(f"aws_iam_role.{n}_execution.arn"), Ref(f"aws_iam_role.{n}_task.arn")],
    )
    blocks = role(
        ctx,
        f"{n}_events",
        (n, "events"),
        "events.amazonaws.com",
        [run_task, pass_roles],
        f"EventBridge starts {n} on its schedule",
    )
    fragment.data += [b for b in blocks if b.type == "data"]
    fragment.resources += [b for b in blocks if b.type == "resource"]
    fragment.resources += [
        resource(
            "aws_cloudwatch_event_rule",
            n,
            Attr("name", ctx.aws_name(n, limit=64)),
            Attr("description", f"Schedule of the {n} task"),
            Attr("schedule_expression", p.schedule),
        ),
        resource(
            "aws_cloudwatch_event_target",
            n,
            Attr("rule", Ref(f"aws_cloudwatch_event_rule.{n}.name")),
            Attr("arn", cluster),
            Attr("role_arn", Ref(f"aws_iam_role.{n}_events.arn")),
            Block(
                "ecs_target",
                (),
                [
                    Attr("task_definition_arn", Ref(f"aws_ecs_task_definition.{n}.arn")),
                    Attr("task_count", 1),
                    Attr("launch_type", "FARGATE"),
                    Attr("platform_version", "LATEST"),
                    _network_configuration(ctx, c),
                ],
            ),
        ),
    ]
    return fragment
