"""Compute on EC2: an Auto Scaling group from a launch template.

Amazon Linux 2023 (the AMI from AWS's public SSM parameter), IMDSv2 only with a hop limit of
1, encrypted gp3 volumes, detailed monitoring, no public IP, no SSH (no key pair, no port 22),
an instance role with the component's grants only.
"""

from __future__ import annotations

from catalog.components import Ec2AsgParams
from schemas.plan import Component
from tools.hcl import Attr, Block, Ref, Value
from tools.render.compute import alb_in_front, workload_sg
from tools.render.context import Fragment, RenderContext, data, output, resource
from tools.render.iam import grant_statements, role

AL2023_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def render_ec2_asg(c: Component, p: Ec2AsgParams, ctx: RenderContext) -> Fragment:
    n = c.name
    blocks = role(
        ctx,
        f"{n}_instance",
        (n, "instance"),
        "ec2.amazonaws.com",
        grant_statements(ctx, n, p.grants),
        f"What {n}'s instances may do (their grants only)",
    )
    tags: dict[str, Value] = {k: v for k, v in sorted(ctx.plan.tags.items())}
    alb = alb_in_front(ctx, n)
    asg: list[Attr | Block] = [
        Attr("name", ctx.aws_name(n, limit=255)),
        Attr("min_size", p.min_size),
        Attr("max_size", p.max_size),
        Attr("desired_capacity", p.desired_capacity),
        Attr("vpc_zone_identifier", ctx.subnets(ctx.vpc_for(c), "private")),
        Attr("health_check_type", "ELB" if alb else "EC2"),
        Attr("health_check_grace_period", 300),
        Block(
            "launch_template",
            (),
            [Attr("id", Ref(f"aws_launch_template.{n}.id")), Attr("version", "$Latest")],
        ),
    ]
    if alb is not None:
        asg.append(Attr("target_group_arns", [Ref(f"aws_lb_target_group.{alb}.arn")]))
    asg.append(
        Block(
            "tag",
            (),
            [
                Attr("key", "Name"),
                Attr("value", ctx.aws_name(n, limit=255)),
                Attr("propagate_at_launch", True),
            ],
        )
    )
    asg.append(Block("lifecycle", (), [Attr("ignore_changes", [Ref("desired_capacity")])]))
    return Fragment(
        data=[
            data("aws_ssm_parameter", f"{n}_ami", Attr("name", AL2023_AMI_PARAMETER)),
            *[b for b in blocks if b.type == "data"],
        ],
        resources=[
            *[b for b in blocks if b.type == "resource"],
            resource(
                "aws_iam_instance_profile",
                n,
                Attr("name", ctx.aws_name(n, "instance", limit=128)),
                Attr("role", Ref(f"aws_iam_role.{n}_instance.name")),
            ),
            *workload_sg(ctx, c, "EC2"),
            resource(
                "aws_launch_template",
                n,
                Attr("name", ctx.aws_name(n, limit=128)),
                Attr("image_id", Ref(f"data.aws_ssm_parameter.{n}_ami.insecure_value")),
                Attr("instance_type", p.instance_type),
                Attr("ebs_optimized", True),
                Attr("update_default_version", True),
                Block(
                    "iam_instance_profile",
                    (),
                    [Attr("arn", Ref(f"aws_iam_instance_profile.{n}.arn"))],
                ),
                Block(
                    "metadata_options",
                    (),
                    [
                        Attr("http_endpoint", "enabled"),
                        Attr("http_tokens", "required"),
                        Attr("http_put_response_hop_limit", 1),
                    ],
                ),
                Block("monitoring", (), [Attr("enabled", True)]),
                Block(
                    "network_interfaces",
                    (),
                    [
                        Attr("associate_public_ip_address", False),
                        Attr("delete_on_termination", True),
                        Attr("security_groups", [ctx.security_group(n)]),
                    ],
                ),
                Block(
                    "block_device_mappings",
                    (),
                    [
                        Attr("device_name", "/dev/xvda"),
                        Block(
                            "ebs",
                            (),
                            [
                                Attr("volume_size", p.volume_gb),
                                Attr("volume_type", "gp3"),
                                Attr("encrypted", True),
                                Attr("delete_on_termination", True),
                            ],
                        ),
                    ],
                ),
                Block(
                    "tag_specifications",
                    (),
                    [Attr("resource_type", "instance"), Attr("tags", tags)],
                ),
                Block(
                    "tag_specifications", (), [Attr("resource_type", "volume"), Attr("tags", tags)]
                ),
            ),
            resource("aws_autoscaling_group", n, *asg),
            resource(
                "aws_autoscaling_policy",
                n,
                Attr("name", "cpu-target-tracking"),
                Attr("autoscaling_group_name", Ref(f"aws_autoscaling_group.{n}.name")),
                Attr("policy_type", "TargetTrackingScaling"),
                Block(
                    "target_tracking_configuration",
                    (),
                    [
                        Block(
                            "predefined_metric_specification",
                            (),
                            [Attr("predefined_metric_type", "ASGAverageCPUUtilization")],
                        ),
                        Attr("target_value", 60),
                    ],
                ),
            ),
        ],
        outputs=[output(f"{n}_asg_name", Ref(f"aws_autoscaling_group.{n}.name"), "ASG name.")],
    )
