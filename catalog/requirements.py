"""What a goal requires of a design's parameters: environment, compliance, coverage, capacity.

(Clashes inside the goal itself are catalog/goal_checks.py.) What each rule asks of which
parameters:

- **prod, or availability multi_az** -> multi-AZ data stores and compute: RDS `multi_az`,
  Redis `num_nodes >= 2` with `automatic_failover`, ECS `min_count >= 2`, ASG `min_size >= 2`,
  VPC `az_count >= 2`.
- **prod** -> RDS `backup_retention_days >= 7` and `deletion_protection`, Redis
  `snapshot_retention_days >= 7`, S3 `versioning` and no `force_destroy`, DynamoDB
  `point_in_time_recovery` and `deletion_protection`.
- **backups** -> RDS `backup_retention_days >= 7`, Redis `snapshot_retention_days >= 7`,
  S3 `versioning`, DynamoDB `point_in_time_recovery`.
- **logging** -> VPC `flow_logs`, ALB `access_logs`, S3 `access_logging`, and every log
  retention (flow logs, ECS tasks, Lambda functions, HTTP API access logs, log groups)
  `>= 90` days.
- **encryption_at_rest** -> every component's template encrypts what it stores (RDS storage,
  Redis, S3, SQS, EBS, Fargate ephemeral storage, log groups); a catalog type that cannot is
  refused. Nothing in the catalog can turn encryption off (RDS `storage_encrypted` is the
  literal true).
- **private_networking** -> nothing but a load balancer or CDN faces the internet. Templates
  put compute and data stores in private subnets without public IPs and no parameter can
  change that; validation checks what parameters *can* widen: a data store's `allow_from`
  names only compute of this design, and every network-attached component sits in the
  design's one VPC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.components import (
    AlbParams,
    CloudWatchLogGroupParams,
    DynamoDbTableParams,
    Ec2AsgParams,
    EcsScheduledTaskParams,
    EcsServiceParams,
    ElastiCacheRedisParams,
    HttpApiParams,
    LambdaFunctionParams,
    Params,
    RdsParams,
    S3BucketParams,
    VpcParams,
)
from catalog.coverage import check_coverage
from catalog.goal_checks import needs_multi_az
from catalog.problems import Problem, ProblemCode
from catalog.structure import COMPUTE_TYPES
from schemas.goal import (
    Compliance,
    Environment,
    GoalStatement,
)
from schemas.plan import Component

C = ProblemCode
MIN_BACKUP_DAYS = 7
MIN_LOG_RETENTION_DAYS = 90
#: Catalog types whose template encrypts what they store (or that store nothing).
ENCRYPTED_TYPES = frozenset(
    {
        "vpc", "alb", "ecs_service", "ecs_scheduled_task", "ec2_asg", "rds_postgres",
        "rds_mysql", "elasticache_redis", "s3_bucket", "cloudfront_distribution", "sqs_queue",
        "cloudwatch_log_group", "cloudwatch_alarms", "iam_role", "lambda_function",
        "http_api", "dynamodb_table",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One requirement on one parameter of one kind of component."""

    applies: type[Params] | tuple[type[Params], ...]
    field: str
    ok: Callable[[Any], bool]
    code: ProblemCode
    why: str
    """May name {reason}: what asks for it (prod, backups, ...)."""
    fix: str


_DAYS = f">= {MIN_BACKUP_DAYS}"
_LOG_FIX = f"set it to >= {MIN_LOG_RETENTION_DAYS} (a CloudWatch retention: 90, 180, 365...)"
_LOGS_KEPT = f"logging keeps logs {MIN_LOG_RETENTION_DAYS}+ days"

MULTI_AZ_RULES = (
    Rule(RdsParams, "multi_az", lambda p: p.multi_az, C.MULTI_AZ,
         "{reason} needs a multi-AZ database", "set multi_az true"),
    Rule(ElastiCacheRedisParams, "automatic_failover",
         lambda p: p.num_nodes >= 2 and p.automatic_failover, C.MULTI_AZ,
         "{reason} needs a replica in another AZ", "set num_nodes >= 2, automatic_failover true"),
    Rule(EcsServiceParams, "min_count", lambda p: p.min_count >= 2, C.MULTI_AZ,
         "{reason} needs tasks in two AZs", "set min_count (and desired_count) >= 2"),
    Rule(Ec2AsgParams, "min_size", lambda p: p.min_size >= 2, C.MULTI_AZ,
         "{reason} needs instances in two AZs", "set min_size (and desired_capacity) >= 2"),
    Rule(VpcParams, "az_count", lambda p: p.az_count >= 2, C.MULTI_AZ,
         "{reason} needs two AZs", "set az_count to 2"),
)  # fmt: skip
BACKUP_RULES = (
    Rule(RdsParams, "backup_retention_days", lambda p: p.backup_retention_days >= MIN_BACKUP_DAYS,
         C.BACKUPS, f"{{reason}} needs backups kept {_DAYS} days",
         f"set backup_retention_days {_DAYS}"),
    Rule(ElastiCacheRedisParams, "snapshot_retention_days",
         lambda p: p.snapshot_retention_days >= MIN_BACKUP_DAYS, C.BACKUPS,
         f"{{reason}} needs snapshots kept {_DAYS} days", f"set snapshot_retention_days {_DAYS}"),
    Rule(S3BucketParams, "versioning", lambda p: p.versioning, C.BACKUPS,
         "{reason} needs object versions kept", "set versioning true"),
    Rule(DynamoDbTableParams, "point_in_time_recovery", lambda p: p.point_in_time_recovery,
         C.BACKUPS, "{reason} needs point-in-time recovery", "set point_in_time_recovery true"),
)  # fmt: skip
PROD_RULES = (
    Rule(RdsParams, "deletion_protection", lambda p: p.deletion_protection,
         C.DELETION_PROTECTION, "prod needs deletion protection", "set deletion_protection true"),
    Rule(S3BucketParams, "force_destroy", lambda p: not p.force_destroy, C.DELETION_PROTECTION,
         "prod buckets must not be force-destroyed", "set force_destroy false"),
    Rule(DynamoDbTableParams, "deletion_protection", lambda p: p.deletion_protection,
         C.DELETION_PROTECTION, "prod needs deletion protection", "set deletion_protection true"),
)  # fmt: skip
LOGGING_RULES = (
    Rule(VpcParams, "flow_logs", lambda p: p.flow_logs, C.LOGGING,
         "logging needs VPC flow logs", "set flow_logs true"),
    Rule(VpcParams, "flow_log_retention_days",
         lambda p: p.flow_log_retention_days >= MIN_LOG_RETENTION_DAYS, C.LOGGING,
         _LOGS_KEPT, _LOG_FIX),
    Rule(AlbParams, "access_logs", lambda p: p.access_logs, C.LOGGING,
         "logging needs load balancer access logs", "set access_logs true"),
    Rule(S3BucketParams, "access_logging", lambda p: p.access_logging, C.LOGGING,
         "logging needs S3 server access logs", "set access_logging true"),
    Rule((EcsServiceParams, EcsScheduledTaskParams), "log_retention_days",
         lambda p: p.log_retention_days >= MIN_LOG_RETENTION_DAYS, C.LOGGING,
         _LOGS_KEPT, _LOG_FIX),
    Rule(CloudWatchLogGroupParams, "retention_days",
         lambda p: p.retention_days >= MIN_LOG_RETENTION_DAYS, C.LOGGING, _LOGS_KEPT, _LOG_FIX),
    Rule(LambdaFunctionParams, "log_retention_days",
         lambda p: p.log_retention_days >= MIN_LOG_RETENTION_DAYS, C.LOGGING,
         _LOGS_KEPT, _LOG_FIX),
    Rule(HttpApiParams, "access_log_retention_days",
         lambda p: p.access_log_retention_days >= MIN_LOG_RETENTION_DAYS, C.LOGGING,
         _LOGS_KEPT, _LOG_FIX),
)  # fmt: skip


def rules_for(goal: GoalStatement) -> list[tuple[Rule, str]]:
    """The rules a goal switches on, each with the reason that asks for it."""
    compliance = set(goal.constraints.compliance if goal.constraints else [])
    prod = goal.environment is Environment.PROD
    active: list[tuple[Rule, str]] = []
    if needs_multi_az(goal):
        active += [(r, "prod" if prod else "availability multi_az") for r in MULTI_AZ_RULES]
    if prod or Compliance.BACKUPS in compliance:
        active += [(r, "prod" if prod else "backups") for r in BACKUP_RULES]
    if prod:
        active += [(r, "prod") for r in PROD_RULES]
    if Compliance.LOGGING in compliance:
        active += [(r, "logging") for r in LOGGING_RULES]
    return active


def check_parameter_rules(
    components: Sequence[Component], parsed: dict[str, Params], goal: GoalStatement
) -> list[Problem]:
    """The design's parameters against what the goal asks (see the module docstring)."""
    problems: list[Problem] = []
    rules = rules_for(goal)
    compliance = set(goal.constraints.compliance if goal.constraints else [])
    for c in components:
        p = parsed.get(c.name)
        if p is None:
            continue
        for rule, reason in rules:
            if isinstance(p, rule.applies) and not rule.ok(p):
                problems.append(
                    Problem(
                        rule.code,
                        f"components.{c.name}.params.{rule.field}",
                        f"{c.name}: {rule.why.format(reason=reason)}",
                        rule.fix,
                    )
                )
        if Compliance.ENCRYPTION_AT_REST in compliance and c.type not in ENCRYPTED_TYPES:
            problems.append(
                Problem(
                    C.ENCRYPTION,
                    f"components.{c.name}.type",
                    f"{c.type} does not declare encryption at rest",
                    "use a catalog type whose template encrypts what it stores",
                )
            )
    if Compliance.PRIVATE_NETWORKING in compliance:
        problems.extend(_private_networking(components, parsed))
    return problems


def check_requirements(
    components: Sequence[Component], parsed: dict[str, Params], goal: GoalStatement
) -> list[Problem]:
    """Parameter rules plus coverage of the workload, its data stores and its rps."""
    return [
        *check_parameter_rules(components, parsed, goal),
        *check_coverage(components, parsed, goal),
    ]


def _private_networking(
    components: Sequence[Component], parsed: dict[str, Params]
) -> Iterator[Problem]:
    types = {c.name: c.type for c in components}
    for c in components:
        allow: list[str] = getattr(parsed.get(c.name), "allow_from", [])
        public = [a for a in allow if types.get(a) not in COMPUTE_TYPES]
        if public:
            yield Problem(
                C.PRIVATE_NETWORKING,
                f"components.{c.name}.params.allow_from",
                f"private_networking admits only this design's compute, not {', '.join(public)}",
                "list only ecs_service, ecs_scheduled_task or ec2_asg components",
            )
