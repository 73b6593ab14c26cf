"""Edge: the application load balancer and the CloudFront distribution.

With a domain name, the ALB listens on 443 only (TLS 1.2+/1.3 policy, ACM certificate) and its
security group opens 443 alone. Without one there is no certificate to serve, so it listens
on plain HTTP port 80: Atlas records that risk on the PlanSpec, and the waivers module says
which checks that fails by design.
"""

from __future__ import annotations

from catalog.components import AlbParams, CloudFrontParams, Ec2AsgParams, EcsServiceParams
from schemas.plan import Component
from tools.hcl import Attr, Block, Ref
from tools.render.context import Fragment, RenderContext, Shared, output, resource
from tools.render.network import egress_to, ingress_from, internet_rule, security_group

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
#: AWS managed CloudFront cache policy CachingOptimized.
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def _certificate(label: str, domain: str, *, provider: str | None = None) -> list[Block]:
    """A DNS-validated certificate; apply waits (up to 45 min) until its records are in place,
    which the `<label>_certificate_validation` output lists for whoever owns the zone."""
    on = [Attr("provider", Ref(provider))] if provider else []
    return [
        resource(
            "aws_acm_certificate",
            label,
            *on,
            Attr("domain_name", domain),
            Attr("validation_method", "DNS"),
            Block("lifecycle", (), [Attr("create_before_destroy", True)]),
        ),
        resource(
            "aws_acm_certificate_validation",
            label,
            *on,
            Attr("certificate_arn", Ref(f"aws_acm_certificate.{label}.arn")),
            Block("timeouts", (), [Attr("create", "45m")]),
        ),
    ]


def render_alb(c: Component, p: AlbParams, ctx: RenderContext) -> Fragment:
    n = c.name
    target_type = ctx.require(n, p.target, "ecs_service", "ec2_asg")
    target = ctx.params[p.target]
    assert isinstance(target, EcsServiceParams | Ec2AsgParams)
    port = target.container_port if isinstance(target, EcsServiceParams) else target.app_port
    vpc = ctx.vpc_for(c)
    https = p.domain_name is not None
    listen = 443 if https else 80
    lb: list[Attr | Block] = [
        Attr("name", ctx.aws_name(n, limit=32)),
        Attr("load_balancer_type", "application"),
        Attr("internal", False),
        Attr("security_groups", [ctx.security_group(n)]),
        Attr("subnets", ctx.subnets(vpc, "public")),
        Attr("drop_invalid_header_fields", True),
        Attr("enable_deletion_protection", p.deletion_protection or ctx.prod),
        Attr("idle_timeout", p.idle_timeout_s),
    ]
    if p.access_logs:
        lb.append(
            Block(
                "access_logs",
                (),
                [
                    Attr("bucket", ctx.access_log_bucket()),
                    Attr("prefix", "alb"),
                    Attr("enabled", True),
                ],
            )
        )
        # ELB checks it may write to the bucket when the load balancer is created.
        lb.append(Attr("depends_on", [Ref("aws_s3_bucket_policy.stack_access_logs")]))
    resources = [
        security_group(ctx, n, vpc, f"Load balancer {n}: {listen} from the internet"),
        internet_rule("ingress", n, listen, "HTTPS from the internet" if https else "HTTP"),
        egress_to(n, p.target, port, f"to {p.target}"),
        ingress_from(p.target, n, port, f"from load balancer {n}"),
        resource("aws_lb", n, *lb),
        resource(
            "aws_lb_target_group",
            n,
            Attr("name", ctx.aws_name(n, limit=32)),
            Attr("port", port),
            Attr("protocol", "HTTP"),
            Attr("vpc_id", Ref(f"aws_vpc.{vpc}.id")),
            Attr("target_type", "ip" if target_type == "ecs_service" else "instance"),
            Attr("deregistration_delay", 30),
            Block(
                "health_check",
                (),
                [
                    Attr("path", "/"),
                    Attr("matcher", "200-399"),
                    Attr("healthy_threshold", 2),
                    Attr("unhealthy_threshold", 3),
                ],
            ),
        ),
    ]
    listener: list[Attr | Block] = [
        Attr("load_balancer_arn", Ref(f"aws_lb.{n}.arn")),
        Attr("port", listen),
        Attr("protocol", "HTTPS" if https else "HTTP"),
    ]
    outputs = [output(f"{n}_dns_name", Ref(f"aws_lb.{n}.dns_name"), "Load balancer DNS name.")]
    if p.domain_name is not None:
        resources += _certificate(n, p.domain_name)
        listener += [
            Attr("ssl_policy", TLS_POLICY),
            Attr("certificate_arn", Ref(f"aws_acm_certificate_validation.{n}.certificate_arn")),
        ]
        outputs.append(_validation_output(n))
    listener.append(
        Block(
            "default_action",
            (),
            [
                Attr("type", "forward"),
                Attr("target_group_arn", Ref(f"aws_lb_target_group.{n}.arn")),
            ],
        )
    )
    resources.append(resource("aws_lb_listener", n, *listener))
    return Fragment(resources=resources, outputs=outputs)


def _validation_output(label: str) -> Block:
    return output(
        f"{label}_certificate_validation",
        Ref(f"aws_acm_certificate.{label}.domain_validation_options"),
        "DNS records that prove you own the domain (add them to its zone).",
    )


def render_cloudfront(c: Component, p: CloudFrontParams, ctx: RenderContext) -> Fragment:
    n = c.name
    ctx.require(n, p.origin, "s3_bucket")
    origin_id = f"s3-{p.origin}"
    viewer: list[Attr]
    resources = [
        resource(
            "aws_cloudfront_origin_access_control",
            n,
            Attr("name", ctx.aws_name(n, limit=64)),
            Attr("description", f"CloudFront {n} reads bucket {p.origin}"),
            Attr("origin_access_control_origin_type", "s3"),
            Attr("signing_behavior", "always"),
            Attr("signing_protocol", "sigv4"),
        )
    ]
    outputs = [
        output(
            f"{n}_domain_name",
            Ref(f"aws_cloudfront_distribution.{n}.domain_name"),
            "CloudFront domain name.",
        )
    ]
    distribution: list[Attr | Block] = [
        Attr("enabled", True),
        Attr("is_ipv6_enabled", True),
        Attr("comment", f"infra-crew {n}"),
        Attr("default_root_object", p.default_root_object),
        Attr("price_class", p.price_class),
        Attr("http_version", "http2and3"),
    ]
    if p.domain_name is not None:
        ctx.needs.add(Shared.US_EAST_1)
        resources += _certificate(n, p.domain_name, provider="aws.us_east_1")
        outputs.append(_validation_output(n))
        distribution.append(Attr("aliases", [p.domain_name]))
        viewer = [
            Attr(
                "acm_certificate_arn",
                Ref(f"aws_acm_certificate_validation.{n}.certificate_arn"),
            ),
            Attr("ssl_support_method", "sni-only"),
            Attr("minimum_protocol_version", "TLSv1.2_2021"),
        ]
    else:
        viewer = [Attr("cloudfront_default_certificate", True)]
    distribution += [
        Block(
            "origin",
            (),
            [
                Attr("domain_name", Ref(f"aws_s3_bucket.{p.origin}.bucket_regional_domain_name")),
                Attr("origin_id", origin_id),
                Attr(
                    "origin_access_control_id",
                    Ref(f"aws_cloudfront_origin_access_control.{n}.id"),
                ),
            ],
        ),
        Block(
            "default_cache_behavior",
            (),
            [
                Attr("target_origin_id", origin_id),
                Attr("viewer_protocol_policy", "redirect-to-https"),
                Attr("allowed_methods", ["GET", "HEAD"]),
                Attr("cached_methods", ["GET", "HEAD"]),
                Attr("compress", True),
                Attr("cache_policy_id", CACHING_OPTIMIZED),
                Attr(
                    "response_headers_policy_id",
                    Ref(f"aws_cloudfront_response_headers_policy.{n}.id"),
                ),
            ],
        ),
        Block(
            "restrictions",
            (),
            [Block("geo_restriction", (), [Attr("restriction_type", "none")])],
        ),
        Block("viewer_certificate", (), viewer),
    ]
    resources += [
        _security_headers(ctx, n),
        resource("aws_cloudfront_distribution", n, *distribution),
    ]
    return Fragment(resources=resources, outputs=outputs)


def _security_headers(ctx: RenderContext, n: str) -> Block:
    """HSTS, nosniff, DENY framing, a strict referrer policy and XSS protection."""
    return resource(
        "aws_cloudfront_response_headers_policy",
        n,
        Attr("name", ctx.aws_name(n, "security-headers", limit=128)),
        Attr("comment", f"Security headers of {n}"),
        Block(
            "security_headers_config",
            (),
            [
                Block("content_type_options", (), [Attr("override", True)]),
                Block("frame_options", (), [Attr("frame_option", "DENY"), Attr("override", True)]),
                Block(
                    "referrer_policy",
                    (),
                    [
                        Attr("referrer_policy", "strict-origin-when-cross-origin"),
                        Attr("override", True),
                    ],
                ),
                Block(
                    "strict_transport_security",
                    (),
                    [
                        Attr("access_control_max_age_sec", 31536000),
                        Attr("include_subdomains", True),
                        Attr("preload", True),
                        Attr("override", True),
                    ],
                ),
                Block(
                    "xss_protection",
                    (),
                    [Attr("protection", True), Attr("mode_block", True), Attr("override", True)],
                ),
            ],
        ),
    )
