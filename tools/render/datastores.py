"""Data stores: RDS PostgreSQL/MySQL and ElastiCache Redis.

Always in private subnets, encrypted with the stack key, TLS enforced, reachable only from the
components named in `allow_from` (an ingress rule on the store and a matching egress rule on
each client). Databases keep their master password in Secrets Manager (RDS-managed), export
their logs, and in prod keep deletion protection and a final snapshot.
"""

from __future__ import annotations

from catalog.components import (
    ElastiCacheRedisParams,
    RdsMysqlParams,
    RdsPostgresParams,
    engine_major,
)
from schemas.plan import Component
from tools.hcl import Attr, Block, Ref, Template
from tools.render.context import Fragment, RenderContext, output, resource
from tools.render.iam import role, statement
from tools.render.network import egress_to, ingress_from, security_group

_CLIENTS = ("ecs_service", "ecs_scheduled_task", "ec2_asg")
_ENGINES = {
    "rds_postgres": ("postgres", 5432, ["postgresql", "upgrade"]),
    "rds_mysql": ("mysql", 3306, ["error", "general", "slowquery"]),
}


def _network(
    ctx: RenderContext, c: Component, allow_from: list[str], port: int, what: str
) -> list[Block]:
    vpc = ctx.vpc_for(c)
    peers = ", ".join(allow_from) or "nothing"
    blocks = [security_group(ctx, c.name, vpc, f"{what} {c.name}: ingress only from {peers}")]
    for client in allow_from:
        ctx.require(c.name, client, *_CLIENTS)
        blocks.append(ingress_from(c.name, client, port, f"{what} from {client}"))
        blocks.append(egress_to(client, c.name, port, f"to {what} {c.name}"))
    return blocks


def _parameters(engine: str, version: str) -> tuple[str, list[tuple[str, str]]]:
    version = engine_major(version, engine)  # a minor pin keeps its major's family
    if engine == "postgres":
        return f"postgres{version}", [
            ("log_min_duration_statement", "1000"),
            ("log_statement", "ddl"),
            ("rds.force_ssl", "1"),
        ]
    return f"mysql{version}", [("require_secure_transport", "1")]


def render_rds(c: Component, p: RdsPostgresParams | RdsMysqlParams, ctx: RenderContext) -> Fragment:
    n = c.name
    engine, port, log_exports = _ENGINES[c.type]
    family, parameters = _parameters(engine, p.engine_version)
    private = ctx.subnets(ctx.vpc_for(c), "private")
    protect = p.deletion_protection or ctx.prod
    kms = ctx.kms_key_arn()
    # Enhanced monitoring writes to the RDSOSMetrics log group: AWS's managed policy for it,
    # as an inline policy scoped to this account and region.
    metrics = ctx.arn("logs", "log-group:RDSOSMetrics")
    monitoring = role(
        ctx,
        f"{n}_monitoring",
        (n, "monitoring"),
        "monitoring.rds.amazonaws.com",
        [
            statement(
                "RdsMetricsLogGroup", ("logs:CreateLogGroup", "logs:PutRetentionPolicy"), [metrics]
            ),
            statement(
                "RdsMetricsLogStreams",
                (
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:GetLogEvents",
                    "logs:PutLogEvents",
                ),
                [Template((*metrics.parts, ":log-stream:*"))],
            ),
        ],
        f"RDS enhanced monitoring of {n}",
    )
    instance: list[Attr | Block] = [
        Attr("identifier", ctx.aws_name(n, limit=63)),
        Attr("engine", engine),
        Attr("engine_version", p.engine_version),
        Attr("instance_class", p.instance_class),
        Attr("allocated_storage", p.allocated_storage_gb),
        Attr("max_allocated_storage", p.max_allocated_storage_gb),
        Attr("storage_type", "gp3"),
        Attr("storage_encrypted", True),
        Attr("kms_key_id", kms),
        Attr("db_name", "app"),
        Attr("username", "crew_admin"),
        Attr("manage_master_user_password", True),
        Attr("master_user_secret_kms_key_id", kms),
        Attr("multi_az", p.multi_az),
        Attr("db_subnet_group_name", Ref(f"aws_db_subnet_group.{n}.name")),
        Attr("vpc_security_group_ids", [ctx.security_group(n)]),
        Attr("parameter_group_name", Ref(f"aws_db_parameter_group.{n}.name")),
        Attr("publicly_accessible", False),
        Attr("iam_database_authentication_enabled", True),
        Attr("backup_retention_period", p.backup_retention_days),
        Attr("copy_tags_to_snapshot", True),
        Attr("auto_minor_version_upgrade", True),
        Attr("deletion_protection", protect),
        Attr("skip_final_snapshot", not ctx.prod),
        Attr("monitoring_interval", 60),
        Attr("monitoring_role_arn", Ref(f"aws_iam_role.{n}_monitoring.arn")),
        Attr("performance_insights_enabled", p.performance_insights),
        Attr("enabled_cloudwatch_logs_exports", log_exports),
    ]
    if ctx.prod:
        instance.append(Attr("final_snapshot_identifier", ctx.aws_name(n, "final", limit=255)))
    if p.performance_insights:
        instance.append(Attr("performance_insights_kms_key_id", kms))
    return Fragment(
        data=[b for b in monitoring if b.type == "data"],
        resources=[
            *_network(ctx, c, p.allow_from, port, engine),
            *[b for b in monitoring if b.type == "resource"],
            resource(
                "aws_db_subnet_group",
                n,
                Attr("name", ctx.aws_name(n, limit=255)),
                Attr("subnet_ids", private),
            ),
            resource(
                "aws_db_parameter_group",
                n,
                Attr("name", ctx.aws_name(n, limit=255)),
                Attr("family", family),
                *[
                    Block("parameter", (), [Attr("name", k), Attr("value", v)])
                    for k, v in parameters
                ],
            ),
            resource("aws_db_instance", n, *instance),
        ],
        outputs=[
            output(f"{n}_endpoint", Ref(f"aws_db_instance.{n}.address"), "Database host."),
            output(
                f"{n}_secret_arn",
                Ref(f"aws_db_instance.{n}.master_user_secret[0].secret_arn"),
                "Secrets Manager secret with the master credentials.",
            ),
        ],
    )


def _redis_users(ctx: RenderContext, n: str) -> list[Block]:
    """Role-based access: the built-in `default` user is switched off and clients connect as
    `<n>-app` with IAM authentication (granted as `elasticache:Connect`), so no password
    exists anywhere."""
    return [
        resource(
            "aws_elasticache_user",
            f"{n}_default",
            Attr("user_id", ctx.aws_name(n, "default", limit=40)),
            Attr("user_name", "default"),
            Attr("access_string", "off -@all"),
            Attr("engine", "redis"),
            Block("authentication_mode", (), [Attr("type", "no-password-required")]),
        ),
        resource(
            "aws_elasticache_user",
            f"{n}_app",
            Attr("user_id", ctx.aws_name(n, "app", limit=40)),
            Attr("user_name", ctx.aws_name(n, "app", limit=40)),
            Attr("access_string", "on ~* +@all -@dangerous"),
            Attr("engine", "redis"),
            Block("authentication_mode", (), [Attr("type", "iam")]),
        ),
        resource(
            "aws_elasticache_user_group",
            n,
            Attr("user_group_id", ctx.aws_name(n, limit=40)),
            Attr("engine", "redis"),
            Attr(
                "user_ids",
                [
                    Ref(f"aws_elasticache_user.{n}_default.user_id"),
                    Ref(f"aws_elasticache_user.{n}_app.user_id"),
                ],
            ),
        ),
    ]


def render_redis(c: Component, p: ElastiCacheRedisParams, ctx: RenderContext) -> Fragment:
    n = c.name
    group = [
        Attr("replication_group_id", ctx.aws_name(n, limit=40)),
        Attr("description", f"infra-crew cache {n}"),
        Attr("engine", "redis"),
        Attr("engine_version", "7.1"),
        Attr("node_type", p.node_type),
        Attr("num_cache_clusters", p.num_nodes),
        Attr("port", 6379),
        Attr("parameter_group_name", "default.redis7"),
        Attr("subnet_group_name", Ref(f"aws_elasticache_subnet_group.{n}.name")),
        Attr("security_group_ids", [ctx.security_group(n)]),
        Attr("automatic_failover_enabled", p.automatic_failover),
        Attr("multi_az_enabled", p.automatic_failover),
        Attr("at_rest_encryption_enabled", True),
        Attr("kms_key_id", ctx.kms_key_arn()),
        Attr("transit_encryption_enabled", True),
        Attr("user_group_ids", [Ref(f"aws_elasticache_user_group.{n}.user_group_id")]),
        Attr("snapshot_retention_limit", p.snapshot_retention_days),
        Attr("auto_minor_version_upgrade", True),
    ]
    return Fragment(
        resources=[
            *_network(ctx, c, p.allow_from, 6379, "redis"),
            resource(
                "aws_elasticache_subnet_group",
                n,
                Attr("name", ctx.aws_name(n, limit=255)),
                Attr("subnet_ids", ctx.subnets(ctx.vpc_for(c), "private")),
            ),
            *_redis_users(ctx, n),
            resource("aws_elasticache_replication_group", n, *group),
        ],
        outputs=[
            output(
                f"{n}_endpoint",
                Ref(f"aws_elasticache_replication_group.{n}.primary_endpoint_address"),
                "Redis primary endpoint (TLS).",
            ),
            output(
                f"{n}_user",
                Ref(f"aws_elasticache_user.{n}_app.user_name"),
                "Redis user for clients (IAM authentication).",
            ),
        ],
    )
