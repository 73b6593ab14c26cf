"""The VPC (public + private subnet per AZ, NAT, flow logs) and security-group helpers.

Security groups start empty (no default egress: Terraform removes it), and every rule is its
own resource naming a peer security group, or 0.0.0.0/0 on one port where the catalog says so.
"""

from __future__ import annotations

import ipaddress

from catalog.components import NatMode, VpcParams
from schemas.plan import Component
from tools.hcl import Attr, Block, Ref, Template
from tools.render.context import Fragment, RenderContext, output, resource
from tools.render.iam import role, statement

ANYWHERE = "0.0.0.0/0"


def security_group(ctx: RenderContext, name: str, vpc: str, description: str) -> Block:
    return resource(
        "aws_security_group",
        name,
        Attr("name", ctx.aws_name(name, limit=255)),
        Attr("description", description),
        Attr("vpc_id", Ref(f"aws_vpc.{vpc}.id")),
    )


def ingress_from(owner: str, peer: str, port: int, what: str) -> Block:
    return resource(
        "aws_vpc_security_group_ingress_rule",
        f"{owner}_from_{peer}",
        Attr("security_group_id", RenderContext.security_group(owner)),
        Attr("description", what),
        Attr("ip_protocol", "tcp"),
        Attr("from_port", port),
        Attr("to_port", port),
        Attr("referenced_security_group_id", RenderContext.security_group(peer)),
    )


def egress_to(owner: str, peer: str, port: int, what: str) -> Block:
    return resource(
        "aws_vpc_security_group_egress_rule",
        f"{owner}_to_{peer}",
        Attr("security_group_id", RenderContext.security_group(owner)),
        Attr("description", what),
        Attr("ip_protocol", "tcp"),
        Attr("from_port", port),
        Attr("to_port", port),
        Attr("referenced_security_group_id", RenderContext.security_group(peer)),
    )


def internet_rule(direction: str, owner: str, port: int, what: str) -> Block:
    """One TCP port to/from anywhere: HTTPS egress for workloads, 443/80 ingress for an ALB."""
    return resource(
        f"aws_vpc_security_group_{direction}_rule",
        f"{owner}_{direction}_{port}",
        Attr("security_group_id", RenderContext.security_group(owner)),
        Attr("description", what),
        Attr("ip_protocol", "tcp"),
        Attr("from_port", port),
        Attr("to_port", port),
        Attr("cidr_ipv4", ANYWHERE),
    )


def subnet_cidrs(cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """Eight equal subnets of the VPC range: the first per AZ public, the next private."""
    net = ipaddress.ip_network(cidr)
    parts = [str(s) for s in net.subnets(prefixlen_diff=3)]
    return parts[:az_count], parts[az_count : 2 * az_count]


def render_vpc(c: Component, p: VpcParams, ctx: RenderContext) -> Fragment:
    n = c.name
    public, private = subnet_cidrs(p.cidr, p.az_count)
    azs = "data.aws_availability_zones.available.names"
    vpc_id = Ref(f"aws_vpc.{n}.id")
    resources = [
        resource(
            "aws_vpc",
            n,
            Attr("cidr_block", p.cidr),
            Attr("enable_dns_support", True),
            Attr("enable_dns_hostnames", True),
            Attr("tags", {"Name": ctx.aws_name(n)}),
        ),
        # The default security group of the VPC allows nothing (no rules).
        resource("aws_default_security_group", n, Attr("vpc_id", vpc_id)),
        resource("aws_internet_gateway", n, Attr("vpc_id", vpc_id)),
        resource("aws_route_table", f"{n}_public", Attr("vpc_id", vpc_id)),
        resource(
            "aws_route",
            f"{n}_public_internet",
            Attr("route_table_id", Ref(f"aws_route_table.{n}_public.id")),
            Attr("destination_cidr_block", "0.0.0.0/0"),
            Attr("gateway_id", Ref(f"aws_internet_gateway.{n}.id")),
        ),
    ]
    for i in range(p.az_count):
        for tier, cidr in (("public", public[i]), ("private", private[i])):
            resources.append(
                resource(
                    "aws_subnet",
                    f"{n}_{tier}_{i}",
                    Attr("vpc_id", vpc_id),
                    Attr("cidr_block", cidr),
                    Attr("availability_zone", Ref(f"{azs}[{i}]")),
                    Attr("map_public_ip_on_launch", False),
                    Attr("tags", {"Name": ctx.aws_name(n, tier, str(i)), "tier": tier}),
                )
            )
        resources.append(
            resource(
                "aws_route_table_association",
                f"{n}_public_{i}",
                Attr("subnet_id", Ref(f"aws_subnet.{n}_public_{i}.id")),
                Attr("route_table_id", Ref(f"aws_route_table.{n}_public.id")),
            )
        )
    nat_count = {NatMode.NONE: 0, NatMode.SINGLE: 1, NatMode.PER_AZ: p.az_count}[p.nat]
    for i in range(nat_count):
        resources += [
            resource("aws_eip", f"{n}_nat_{i}", Attr("domain", "vpc")),
            resource(
                "aws_nat_gateway",
                f"{n}_{i}",
                Attr("allocation_id", Ref(f"aws_eip.{n}_nat_{i}.id")),
                Attr("subnet_id", Ref(f"aws_subnet.{n}_public_{i}.id")),
                Attr("depends_on", [Ref(f"aws_internet_gateway.{n}")]),
            ),
        ]
    for i in range(p.az_count):
        resources += [
            resource("aws_route_table", f"{n}_private_{i}", Attr("vpc_id", vpc_id)),
            resource(
                "aws_route_table_association",
                f"{n}_private_{i}",
                Attr("subnet_id", Ref(f"aws_subnet.{n}_private_{i}.id")),
                Attr("route_table_id", Ref(f"aws_route_table.{n}_private_{i}.id")),
            ),
        ]
        if nat_count:
            resources.append(
                resource(
                    "aws_route",
                    f"{n}_private_{i}_egress",
                    Attr("route_table_id", Ref(f"aws_route_table.{n}_private_{i}.id")),
                    Attr("destination_cidr_block", "0.0.0.0/0"),
                    Attr("nat_gateway_id", Ref(f"aws_nat_gateway.{n}_{min(i, nat_count - 1)}.id")),
                )
            )
    # An explicit list of zone names: the set cannot grow silently when AWS adds a zone.
    zones = [f"{ctx.plan.region}{letter}" for letter in "abcdef"]
    fragment = Fragment(
        data=[
            Block(
                "data",
                ("aws_availability_zones", "available"),
                [
                    Attr("state", "available"),
                    Block("filter", (), [Attr("name", "zone-name"), Attr("values", zones)]),
                ],
            )
        ],
        resources=resources,
        outputs=[
            output(f"{n}_id", vpc_id, "VPC id."),
            output(
                f"{n}_private_subnet_ids",
                ctx.subnets(n, "private"),
                "Private subnets (compute and data).",
            ),
            output(f"{n}_public_subnet_ids", ctx.subnets(n, "public"), "Public subnets."),
        ],
    )
    if p.flow_logs:
        fragment.extend(_flow_logs(c, p, ctx))
    return fragment


def _flow_logs(c: Component, p: VpcParams, ctx: RenderContext) -> Fragment:
    n = c.name
    label = f"{n}_flow_logs"
    group_arn = Ref(f"aws_cloudwatch_log_group.{label}.arn")
    writes = statement(
        "WriteFlowLogs",
        ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
        [Template((group_arn, ":*"))],
    )
    blocks = role(
        ctx,
        label,
        (n, "flow-logs"),
        "vpc-flow-logs.amazonaws.com",
        [writes],
        "VPC flow logs delivery to CloudWatch Logs",
    )
    return Fragment(
        data=[b for b in blocks if b.type == "data"],
        resources=[
            log_group(ctx, label, ("vpc", n, "flow-logs"), p.flow_log_retention_days),
            *[b for b in blocks if b.type == "resource"],
            resource(
                "aws_flow_log",
                n,
                Attr("vpc_id", Ref(f"aws_vpc.{n}.id")),
                Attr("traffic_type", "ALL"),
                Attr("log_destination_type", "cloud-watch-logs"),
                Attr("log_destination", group_arn),
                Attr("iam_role_arn", Ref(f"aws_iam_role.{label}.arn")),
            ),
        ],
    )


def log_group(ctx: RenderContext, label: str, path: tuple[str, ...], retention: int) -> Block:
    """A KMS-encrypted log group named `/infra-crew/<prefix>/<path>`."""
    return resource(
        "aws_cloudwatch_log_group",
        label,
        Attr(
            "name",
            Template(("/infra-crew/", Ref("var.name_prefix"), "/" + "/".join(path))),
        ),
        Attr("retention_in_days", retention),
        Attr("kms_key_id", ctx.kms_key_arn()),
    )
