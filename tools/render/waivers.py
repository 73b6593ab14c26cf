"""checkov checks Forge's renders fail on purpose, each with the reason (one place to read).

Forge's templates pass checkov's AWS checks wherever the catalog allows. What is left falls in
two groups, and Sentinel's default policy reads this list as documented waivers:

- `design`: the catalog has no such feature, or AWS makes it impossible (e.g. access logs can
  only be delivered to an SSE-S3 bucket). Every render of that resource type fails the check.
- `parameter`: the check fails only when the PlanSpec chose a weaker setting the catalog
  allows (no domain name -> no certificate; multi_az false; a short log retention). Atlas
  records such choices as risks; a policy that wants them blocked drops these waivers.

Each waiver names the resource types it applies to, so it never covers hand-written
Terraform of other types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Waiver:
    rule_id: str
    resource_types: tuple[str, ...]
    kind: Literal["design", "parameter"]
    reason: str


_BUCKET = ("aws_s3_bucket",)
_LB = ("aws_lb",)
_LISTENER = ("aws_lb_listener",)
_CDN = ("aws_cloudfront_distribution",)
_DB = ("aws_db_instance",)

RENDER_WAIVERS: tuple[Waiver, ...] = (
    # -- design ------------------------------------------------------------------------------
    Waiver("CKV2_AWS_62", _BUCKET, "design", "S3 event notifications: no catalog consumer"),
    Waiver(
        "CKV2_AWS_61",
        _BUCKET,
        "design",
        "no lifecycle rules: the catalog has no retention parameter, and the AWS provider "
        "waits ~55 s for each lifecycle configuration to settle",
    ),
    Waiver("CKV_AWS_144", _BUCKET, "design", "cross-region replication is not in the catalog"),
    Waiver(
        "CKV_AWS_145",
        _BUCKET,
        "design",
        "the stack's access-log bucket uses SSE-S3: S3 and ELB deliver logs only to SSE-S3 "
        "buckets (every other bucket uses the stack's KMS key)",
    ),
    Waiver(
        "CKV_AWS_18",
        _BUCKET,
        "design",
        "the stack's access-log bucket does not log its own access (that would loop)",
    ),
    Waiver("CKV2_AWS_28", _LB, "design", "WAF is not in the catalog"),
    Waiver("CKV_AWS_68", _CDN, "design", "WAF is not in the catalog"),
    Waiver("CKV2_AWS_47", _CDN, "design", "WAF is not in the catalog"),
    Waiver("CKV_AWS_310", _CDN, "design", "one origin per distribution: no failover group"),
    Waiver("CKV_AWS_374", _CDN, "design", "static sites are served worldwide"),
    Waiver(
        "CKV_AWS_86",
        _CDN,
        "design",
        "CloudFront standard logs need ACLs on the bucket; the catalog enforces "
        "BucketOwnerEnforced (no ACLs) everywhere",
    ),
    Waiver(
        "CKV_AWS_378",
        ("aws_lb_target_group",),
        "design",
        "TLS ends at the load balancer; targets get HTTP inside the VPC from its security "
        "group only",
    ),
    Waiver(
        "CKV_AWS_336",
        ("aws_ecs_task_definition",),
        "design",
        "the catalog keeps the root filesystem writable for image compatibility",
    ),
    # -- parameter ---------------------------------------------------------------------------
    Waiver(
        "CKV_AWS_2",
        _LISTENER,
        "parameter",
        "an alb without domain_name has no certificate, so it listens on HTTP (risk recorded)",
    ),
    Waiver("CKV_AWS_103", _LISTENER, "parameter", "as CKV_AWS_2: HTTP listener, no TLS policy"),
    Waiver("CKV2_AWS_20", _LB, "parameter", "as CKV_AWS_2: no HTTPS listener to redirect to"),
    Waiver(
        "CKV_AWS_260",
        ("aws_vpc_security_group_ingress_rule",),
        "parameter",
        "as CKV_AWS_2: the HTTP listener needs port 80 open to the internet",
    ),
    Waiver("CKV2_AWS_42", _CDN, "parameter", "no domain_name: the default CloudFront certificate"),
    Waiver(
        "CKV_AWS_174",
        _CDN,
        "parameter",
        "no domain_name: the default certificate cannot pin a TLS minimum",
    ),
    Waiver(
        "CKV_AWS_150",
        _LB,
        "parameter",
        "deletion_protection is on in prod and when the plan asks; off elsewhere so a "
        "rollback can destroy it",
    ),
    Waiver(
        "CKV_AWS_293",
        _DB,
        "parameter",
        "deletion_protection is on in prod and when the plan asks; off elsewhere so a "
        "rollback can destroy it",
    ),
    Waiver("CKV_AWS_157", _DB, "parameter", "multi_az is the plan's choice (prod: Atlas sets it)"),
    Waiver("CKV_AWS_353", _DB, "parameter", "performance_insights is the plan's choice"),
    Waiver(
        "CKV2_AWS_50",
        ("aws_elasticache_replication_group",),
        "parameter",
        "automatic_failover needs num_nodes >= 2: the plan's choice",
    ),
    Waiver("CKV_AWS_21", _BUCKET, "parameter", "versioning: false was the plan's choice"),
    Waiver(
        "CKV_AWS_338",
        ("aws_cloudwatch_log_group",),
        "parameter",
        "retention is the plan's (finite) choice; one year is not required by the catalog",
    ),
)


def waivers_by_rule() -> dict[str, Waiver]:
    return {w.rule_id: w for w in RENDER_WAIVERS}
