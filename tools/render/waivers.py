"""Risks Forge's renders accept on purpose, each with its reason and every scanner's rule ids.

Forge's templates pass the scanners' AWS checks wherever the catalog allows. What is left falls
in two groups, and Sentinel's default policy reads this table as documented waivers:

- `design`: the catalog has no such feature, or AWS makes it impossible (e.g. access logs can
  only be delivered to an SSE-S3 bucket). Every render of that resource type carries the risk.
- `parameter`: the risk exists only when the PlanSpec chose a weaker setting the catalog
  allows (no domain name -> no certificate; multi_az false; a short log retention). Atlas
  records such choices as risks; a policy that wants them blocked drops these waivers.

One risk is one row, whichever scanner flags it: checkov's ids in `checkov`, and in `aqua`
the ids of Aqua's checks (AVD), which both trivy and tfsec run and report (trivy prints
`AWS-0011`, tfsec `AVD-AWS-0011`; tools/trivy.py reads both as `AWS-0011`). So a risk is
waived, with the same reason, under every scanner installed, and a scanner added later gets a
column here, not a special case in Sentinel. Rows name the ids observed on the catalog's
renders (tests/integration/test_scanner_matrix.py runs checkov and trivy on every workload
kind); Conftest runs an organisation's own Rego, whose ids the org maps in its policy
(`accepted_risk_rules`).

Each row names the resource types it applies to, so it never covers hand-written Terraform of
other types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Scanner = Literal["checkov", "trivy", "tfsec"]

#: Which column of the table holds each scanner's rule ids.
SCANNER_COLUMN: Mapping[Scanner, Literal["checkov", "aqua"]] = {
    "checkov": "checkov",
    "trivy": "aqua",
    "tfsec": "aqua",
}


@dataclass(frozen=True)
class AcceptedRisk:
    name: str
    """A stable key (what an org policy's `accepted_risk_rules` names)."""
    resource_types: tuple[str, ...]
    kind: Literal["design", "parameter"]
    reason: str
    checkov: tuple[str, ...] = ()
    aqua: tuple[str, ...] = ()
    """Aqua check ids as trivy prints them (`AWS-0011`); tfsec reports the same checks."""

    def rule_ids(self, scanner: Scanner | None = None) -> tuple[str, ...]:
        """The ids `scanner` reports this risk under; all scanners' ids when None."""
        if scanner is None:
            return (*self.checkov, *self.aqua)
        return self.checkov if SCANNER_COLUMN[scanner] == "checkov" else self.aqua


_BUCKET = ("aws_s3_bucket",)
_LB = ("aws_lb",)
_LISTENER = ("aws_lb_listener",)
_CDN = ("aws_cloudfront_distribution",)
_DB = ("aws_db_instance",)
_PROTECTED = (
    "deletion_protection is on in prod and when the plan asks; off elsewhere so a rollback "
    "can destroy it"
)

ACCEPTED_RISKS: tuple[AcceptedRisk, ...] = (
    # -- design ------------------------------------------------------------------------------
    AcceptedRisk(
        "s3-no-event-notifications",
        _BUCKET,
        "design",
        "S3 event notifications: no catalog consumer",
        checkov=("CKV2_AWS_62",),
    ),
    AcceptedRisk(
        "s3-no-lifecycle",
        _BUCKET,
        "design",
        "no lifecycle rules: the catalog has no retention parameter, and the AWS provider "
        "waits ~55 s for each lifecycle configuration to settle",
        checkov=("CKV2_AWS_61",),
    ),
    AcceptedRisk(
        "s3-no-replication",
        _BUCKET,
        "design",
        "cross-region replication is not in the catalog",
        checkov=("CKV_AWS_144",),
    ),
    AcceptedRisk(
        "s3-log-bucket-sse-s3",
        _BUCKET,
        "design",
        "the stack's access-log bucket uses SSE-S3: S3 and ELB deliver logs only to SSE-S3 "
        "buckets (every other bucket uses the stack's KMS key)",
        checkov=("CKV_AWS_145",),
    ),
    AcceptedRisk(
        "s3-log-bucket-not-logged",
        _BUCKET,
        "design",
        "the stack's access-log bucket does not log its own access (that would loop)",
        checkov=("CKV_AWS_18",),
    ),
    AcceptedRisk(
        "lb-without-waf", _LB, "design", "WAF is not in the catalog", checkov=("CKV2_AWS_28",)
    ),
    AcceptedRisk(
        "lb-internet-facing",
        _LB,
        "design",
        "the load balancer is the workload's public entry point (internet-facing on purpose); "
        "its targets stay in private subnets, reachable only from its security group",
        aqua=("AWS-0053",),
    ),
    AcceptedRisk(
        "cdn-without-waf",
        _CDN,
        "design",
        "WAF is not in the catalog",
        checkov=("CKV_AWS_68", "CKV2_AWS_47"),
        aqua=("AWS-0011",),
    ),
    AcceptedRisk(
        "cdn-single-origin",
        _CDN,
        "design",
        "one origin per distribution: no failover group",
        checkov=("CKV_AWS_310",),
    ),
    AcceptedRisk(
        "cdn-worldwide",
        _CDN,
        "design",
        "static sites are served worldwide",
        checkov=("CKV_AWS_374",),
    ),
    AcceptedRisk(
        "cdn-no-standard-logs",
        _CDN,
        "design",
        "CloudFront standard logs need ACLs on the bucket; the catalog enforces "
        "BucketOwnerEnforced (no ACLs) everywhere",
        checkov=("CKV_AWS_86",),
        aqua=("AWS-0010",),
    ),
    AcceptedRisk(
        "https-egress-to-internet",
        ("aws_vpc_security_group_egress_rule",),
        "design",
        "tasks and instances reach AWS APIs and image registries over HTTPS through the NAT "
        "gateway (the catalog has no VPC endpoints), so egress on 443, and no other port, is "
        "open to any address",
        aqua=("AWS-0104",),
    ),
    AcceptedRisk(
        "tls-ends-at-lb",
        ("aws_lb_target_group",),
        "design",
        "TLS ends at the load balancer; targets get HTTP inside the VPC from its security "
        "group only",
        checkov=("CKV_AWS_378",),
    ),
    AcceptedRisk(
        "ecs-writable-root",
        ("aws_ecs_task_definition",),
        "design",
        "the catalog keeps the root filesystem writable for image compatibility",
        checkov=("CKV_AWS_336",),
    ),
    AcceptedRisk(
        "lambda-no-xray",
        ("aws_lambda_function",),
        "design",
        "X-Ray tracing is not in the catalog: its write actions (xray:PutTraceSegments) take "
        "no resource ARN, so tracing needs a wildcard grant the catalog never gives",
        checkov=("CKV_AWS_50",),
        aqua=("AWS-0066",),
    ),
    AcceptedRisk(
        "lambda-outside-vpc",
        ("aws_lambda_function",),
        "design",
        "functions reach only AWS APIs (tables, queues, buckets) with IAM grants and take no "
        "network ingress; inside a VPC they would need a NAT gateway for the same calls",
        checkov=("CKV_AWS_117",),
    ),
    AcceptedRisk(
        "lambda-no-code-signing",
        ("aws_lambda_function",),
        "design",
        "code signing is not in the catalog (no signer profile); packages come from the "
        "design's private, versioned, KMS-encrypted bucket",
        checkov=("CKV_AWS_272",),
    ),
    AcceptedRisk(
        "http-api-no-authorizer",
        ("aws_apigatewayv2_route",),
        "design",
        "the HTTP API is the workload's public entry point (like a load balancer); requests "
        "are authorised by the function, the catalog has no authorizer (Cognito) yet",
        checkov=("CKV_AWS_309",),
    ),
    # -- parameter ---------------------------------------------------------------------------
    AcceptedRisk(
        "http-listener",
        _LISTENER,
        "parameter",
        "an alb without domain_name has no certificate, so it listens on HTTP (risk recorded)",
        checkov=("CKV_AWS_2", "CKV_AWS_103"),
        aqua=("AWS-0054",),
    ),
    AcceptedRisk(
        "http-listener-no-redirect",
        _LB,
        "parameter",
        "as http-listener: no HTTPS listener to redirect to",
        checkov=("CKV2_AWS_20",),
    ),
    AcceptedRisk(
        "http-listener-port-80",
        ("aws_vpc_security_group_ingress_rule",),
        "parameter",
        "as http-listener: the HTTP listener needs port 80 open to the internet",
        checkov=("CKV_AWS_260",),
    ),
    AcceptedRisk(
        "cdn-default-certificate",
        _CDN,
        "parameter",
        "no domain_name: the default CloudFront certificate",
        checkov=("CKV2_AWS_42",),
    ),
    AcceptedRisk(
        "cdn-default-tls-minimum",
        _CDN,
        "parameter",
        "no domain_name: the default certificate cannot pin a TLS minimum",
        checkov=("CKV_AWS_174",),
    ),
    AcceptedRisk("lb-deletion-protection", _LB, "parameter", _PROTECTED, checkov=("CKV_AWS_150",)),
    AcceptedRisk(
        "db-deletion-protection",
        _DB,
        "parameter",
        _PROTECTED,
        checkov=("CKV_AWS_293",),
        aqua=("AWS-0177",),
    ),
    AcceptedRisk(
        "db-single-az",
        _DB,
        "parameter",
        "multi_az is the plan's choice (prod: Atlas sets it)",
        checkov=("CKV_AWS_157",),
    ),
    AcceptedRisk(
        "db-no-performance-insights",
        _DB,
        "parameter",
        "performance_insights is the plan's choice",
        checkov=("CKV_AWS_353",),
        aqua=("AWS-0133",),
    ),
    AcceptedRisk(
        "cache-no-failover",
        ("aws_elasticache_replication_group",),
        "parameter",
        "automatic_failover needs num_nodes >= 2: the plan's choice",
        checkov=("CKV2_AWS_50",),
    ),
    AcceptedRisk(
        "s3-no-versioning",
        (*_BUCKET, "aws_s3_bucket_versioning"),
        "parameter",
        "versioning: false was the plan's choice",
        checkov=("CKV_AWS_21",),
        aqua=("AWS-0090",),
    ),
    AcceptedRisk(
        "s3-no-access-logging",
        _BUCKET,
        "parameter",
        "access_logging: false was the plan's choice",
        aqua=("AWS-0089",),
    ),
    AcceptedRisk(
        "dynamodb-fixed-capacity",
        ("aws_dynamodb_table",),
        "parameter",
        "billing_mode provisioned was the plan's choice: fixed capacity, no autoscaling "
        "(on_demand, the default, scales with traffic)",
        checkov=("CKV2_AWS_16",),
    ),
    AcceptedRisk(
        "short-log-retention",
        ("aws_cloudwatch_log_group",),
        "parameter",
        "retention is the plan's (finite) choice; one year is not required by the catalog",
        checkov=("CKV_AWS_338",),
    ),
)


def risks_by_rule() -> dict[str, AcceptedRisk]:
    """Every scanner's rule id -> the risk it flags (each id belongs to one risk)."""
    return {rule: risk for risk in ACCEPTED_RISKS for rule in risk.rule_ids()}


def risks_by_name() -> dict[str, AcceptedRisk]:
    return {risk.name: risk for risk in ACCEPTED_RISKS}
