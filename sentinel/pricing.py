"""Monthly price of one planned AWS resource, from the built-in price table.

One function per priced resource type reads the resource's planned values (`after`, or
`before` for what is applied now) and multiplies table prices by hours or by usage. Usage-based
prices (storage, requests, transfer, log ingest, scheduled runs, load-balancer capacity) take
the run's PlanSpec parameters when the resource belongs to a component, else the catalog's
defaults; either way the assumption is stated. Types with no charge of their own are listed in
`FREE` with the reason; any other type is "not priced" (None), never silently zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog.cost import MAX_STORED_MONTHS, NAT_GB_PER_MONTH
from catalog.prices import PriceTable, UnpricedError
from catalog.schedule import runs_per_month

Values = Mapping[str, Any]

#: Resource types AWS does not charge for by themselves (their cost, if any, shows up on
#: the resource they configure or the traffic they carry).
FREE: dict[str, str] = {
    t: why
    for why, types in {
        "no charge for network plumbing": (
            "aws_vpc aws_subnet aws_route aws_route_table aws_route_table_association "
            "aws_internet_gateway aws_default_security_group aws_security_group "
            "aws_security_group_rule aws_vpc_security_group_ingress_rule "
            "aws_vpc_security_group_egress_rule aws_network_acl aws_default_network_acl "
            "aws_default_route_table aws_main_route_table_association"
        ),
        "no charge for IAM": (
            "aws_iam_role aws_iam_role_policy aws_iam_role_policy_attachment aws_iam_policy "
            "aws_iam_instance_profile aws_iam_user aws_iam_user_policy "
            "aws_iam_user_policy_attachment aws_iam_access_key aws_iam_group"
        ),
        "bucket configuration; storage and requests are priced on the bucket": (
            "aws_s3_bucket_public_access_block aws_s3_bucket_versioning aws_s3_bucket_policy "
            "aws_s3_bucket_server_side_encryption_configuration aws_s3_bucket_ownership_controls "
            "aws_s3_bucket_logging aws_s3_bucket_lifecycle_configuration aws_s3_bucket_acl "
            "aws_s3_bucket_notification aws_s3_bucket_cors_configuration"
        ),
        "an object in a bucket; storage and requests are priced on the bucket": "aws_s3_object",
        "queue configuration; requests are priced on the queue": (
            "aws_sqs_queue_policy aws_sqs_queue_redrive_policy aws_sqs_queue_redrive_allow_policy"
        ),
        "configuration with no charge of its own": (
            "aws_db_subnet_group aws_db_parameter_group aws_elasticache_subnet_group "
            "aws_elasticache_parameter_group aws_lb_target_group aws_lb_listener "
            "aws_lb_listener_rule aws_cloudfront_origin_access_control aws_ecs_cluster "
            "aws_appautoscaling_target aws_appautoscaling_policy aws_autoscaling_policy "
            "aws_cloudwatch_event_rule aws_launch_template aws_kms_alias aws_sns_topic_policy "
            "aws_sns_topic_subscription aws_flow_log aws_secretsmanager_secret_version "
            "aws_elasticache_user aws_elasticache_user_group "
            "aws_cloudfront_response_headers_policy terraform_data null_resource "
            "aws_apigatewayv2_integration aws_apigatewayv2_route aws_apigatewayv2_stage "
            "aws_lambda_permission"
        ),
        "public ACM certificates are free": "aws_acm_certificate aws_acm_certificate_validation",
        "priced on the service or scheduled target that runs it": "aws_ecs_task_definition",
    }.items()
    for t in types.split()
}


@dataclass(frozen=True)
class Usage:
    """Monthly usage behind usage-based prices, and where it came from."""

    source: str
    """'component NAME' (PlanSpec parameters) or 'default' (catalog defaults)."""
    storage_gb: float = 0.0
    requests_million: float = 0.0
    transfer_gb: float = 0.0
    ingest_gb: float = 0.0
    run_minutes: float = 0.0
    lcu: float = 1.0
    duration_ms: float = 0.0
    """Average duration of one function invocation."""
    reads_million: float = 0.0
    writes_million: float = 0.0


@dataclass(frozen=True)
class Priced:
    monthly_usd: float | None
    basis: str
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanLookup:
    """Other resources' values, for prices that depend on them (a service's task size)."""

    values: Mapping[str, Values] = field(default_factory=dict)
    references: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)

    def referenced(self, address: str, attribute: str, rtype: str) -> Values | None:
        """Values of the `rtype` resource that `address`'s `attribute` refers to."""
        base = address.split("[", 1)[0]
        for ref in self.references.get(base, {}).get(attribute, []):
            if ref.startswith(rtype + ".") and ref.count(".") == 1 and ref in self.values:
                return self.values[ref]
        return None


class Pricer:
    """Prices resources of one plan in one region."""

    def __init__(self, table: PriceTable, region: str, lookup: PlanLookup) -> None:
        self.table, self.region, self.lookup = table, region, lookup

    def usd(self, sku: str) -> float:
        return self.table.price(sku, self.region).usd

    @property
    def hours(self) -> float:
        return self.table.hours_per_month

    def price(self, rtype: str, address: str, values: Values, usage: Usage) -> Priced:
        if rtype in FREE:
            return Priced(0.0, FREE[rtype])
        rule = _PRICERS.get(rtype)
        if rule is None:
            return Priced(None, f"no price for {rtype} in the built-in table")
        if not self.table.supports(self.region):
            return Priced(None, f"region {self.region} is not in the price table")
        try:
            return rule(self, address, values, usage)
        except UnpricedError as exc:
            return Priced(None, str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            return Priced(None, f"cannot price from the planned values ({exc})")


def _first(values: Values, key: str) -> Values:
    block = values.get(key) or [{}]
    return block[0] if isinstance(block, list) and block else {}


def _rds(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    engine = str(v["engine"])
    if engine not in ("postgres", "mysql"):
        return Priced(None, f"no price for RDS engine {engine}")
    storage_type = v.get("storage_type") or "gp2"
    if storage_type not in ("gp2", "gp3"):
        return Priced(None, f"no price for RDS storage type {storage_type}")
    copies = 2 if v.get("multi_az") else 1
    instance = p.usd(f"rds.{engine}.{v['instance_class']}.hour") * p.hours
    gb = float(v.get("allocated_storage") or 20)
    storage = gb * p.usd("rds.gp3.gb_month")
    secret = p.usd("secretsmanager.secret.month") if v.get("manage_master_user_password") else 0
    basis = f"{v['instance_class']} x{copies}, {gb:g} GB general-purpose storage x{copies}"
    if secret:
        basis += ", managed master password secret"
    return Priced(
        copies * (instance + storage) + secret,
        basis,
        ("RDS backup storage up to the database size is free; none beyond it is assumed",),
    )


def _elasticache(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    nodes = v.get("num_cache_clusters") or (
        (v.get("num_node_groups") or 1) * ((v.get("replicas_per_node_group") or 0) + 1)
    )
    node = str(v["node_type"])
    return Priced(
        int(nodes) * p.usd(f"elasticache.{node}.hour") * p.hours, f"{int(nodes)} x {node}"
    )


def _nat(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    usd = p.usd("nat_gateway.hour") * p.hours + NAT_GB_PER_MONTH * p.usd("nat_gateway.gb_processed")
    return Priced(
        usd,
        f"730 h, {NAT_GB_PER_MONTH:g} GB processed",
        (f"{NAT_GB_PER_MONTH:g} GB/month through each NAT gateway",),
    )


def _eip(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    return Priced(p.usd("vpc.public_ipv4.hour") * p.hours, "one public IPv4 address, 730 h")


def _lb(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    if (v.get("load_balancer_type") or "application") != "application":
        return Priced(None, f"no price for {v.get('load_balancer_type')} load balancers")
    public_ips = 0 if v.get("internal") else max(1, len(v.get("subnets") or []))
    usd = (
        p.usd("alb.hour")
        + u.lcu * p.usd("alb.lcu_hour")
        + public_ips * p.usd("vpc.public_ipv4.hour")
    ) * p.hours
    return Priced(
        usd,
        f"730 h, {u.lcu:.1f} LCU, {public_ips} public IPv4",
        (f"load balancer capacity {u.lcu:.1f} LCU on average ({u.source})",),
    )


def _task_hour(p: Pricer, task: Values) -> tuple[float, str]:
    cpu, memory = int(task["cpu"]), int(task["memory"])
    usd = cpu / 1024 * p.usd("fargate.vcpu_hour") + memory / 1024 * p.usd("fargate.gb_hour")
    return usd, f"{cpu / 1024:g} vCPU / {memory / 1024:g} GB"


def _ecs_service(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    task = p.lookup.referenced(address, "task_definition", "aws_ecs_task_definition")
    if task is None:
        return Priced(None, "its task definition is not in the plan")
    count = int(v.get("desired_count") or 0)
    hourly, size = _task_hour(p, task)
    return Priced(count * hourly * p.hours, f"{count} Fargate task(s) of {size}, 730 h")


def _event_target(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    if not v.get("ecs_target"):
        return Priced(0.0, "EventBridge target; scheduled invocations are free")
    task = p.lookup.referenced(address, "ecs_target.task_definition_arn", "aws_ecs_task_definition")
    rule = p.lookup.referenced(address, "rule", "aws_cloudwatch_event_rule")
    if task is None or rule is None or not rule.get("schedule_expression"):
        return Priced(None, "its task definition or schedule is not in the plan")
    runs = runs_per_month(str(rule["schedule_expression"]))
    count = int(_first(v, "ecs_target").get("task_count") or 1)
    hourly, size = _task_hour(p, task)
    usd = runs * count * u.run_minutes / 60 * hourly
    return Priced(
        usd,
        f"{runs:g} runs/month x {count} task(s) of {size} x {u.run_minutes:g} min",
        (f"each scheduled run takes {u.run_minutes:g} minutes ({u.source})",),
    )


def _volume(p: Pricer, gb: float, volume_type: str | None) -> float:
    if (volume_type or "gp3") != "gp3":
        raise UnpricedError(f"no price for {volume_type} EBS volumes (only gp3)")
    return gb * p.usd("ebs.gp3.gb_month")


def _instance(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    root = _first(v, "root_block_device")
    gb = float(root.get("volume_size") or 8)
    usd = p.usd(f"ec2.{v['instance_type']}.hour") * p.hours + _volume(
        p, gb, root.get("volume_type")
    )
    return Priced(usd, f"{v['instance_type']}, 730 h, {gb:g} GB gp3")


def _asg(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    template = p.lookup.referenced(address, "launch_template.id", "aws_launch_template")
    if template is None:
        return Priced(None, "its launch template is not in the plan")
    count = int(v.get("desired_capacity") or v.get("min_size") or 0)
    ebs = _first(_first(template, "block_device_mappings"), "ebs")
    gb = float(ebs.get("volume_size") or 8)
    each = p.usd(f"ec2.{template['instance_type']}.hour") * p.hours + _volume(
        p, gb, ebs.get("volume_type")
    )
    return Priced(count * each, f"{count} x {template['instance_type']} + {gb:g} GB gp3, 730 h")


def _ebs(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    gb = float(v["size"])
    return Priced(_volume(p, gb, v.get("type")), f"{gb:g} GB gp3")


def _s3(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    usd = u.storage_gb * p.usd("s3.standard.gb_month") + u.requests_million * p.usd(
        "s3.requests.million"
    )
    what = f"{u.storage_gb:g} GB Standard, {u.requests_million:g}M requests"
    return Priced(usd, what, (f"{address}: {what} a month ({u.source})",))


def _cloudfront(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    usd = u.transfer_gb * p.usd("cloudfront.transfer.gb") + u.requests_million * p.usd(
        "cloudfront.requests.million"
    )
    what = f"{u.transfer_gb:g} GB out, {u.requests_million:g}M HTTPS requests"
    return Priced(usd, what, (f"{address}: {what} a month ({u.source})",))


def _sqs(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    sku = "sqs.fifo.million" if v.get("fifo_queue") else "sqs.standard.million"
    what = f"{u.requests_million:g}M requests"
    return Priced(
        u.requests_million * p.usd(sku), what, (f"{address}: {what} a month ({u.source})",)
    )


def _log_group(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    days = int(v.get("retention_in_days") or 0)
    months = min(days / 30.4, MAX_STORED_MONTHS) if days else MAX_STORED_MONTHS
    stored = u.ingest_gb * months
    usd = u.ingest_gb * p.usd("cloudwatch.logs.ingest_gb") + stored * p.usd(
        "cloudwatch.logs.storage_gb_month"
    )
    what = f"{u.ingest_gb:g} GB ingested, {stored:g} GB stored"
    return Priced(usd, what, (f"{address}: {u.ingest_gb:g} GB of logs a month ({u.source})",))


def _lambda(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    arch = "arm" if (v.get("architectures") or ["x86_64"])[0] == "arm64" else "x86"
    memory = int(v.get("memory_size") or 128)
    gb_seconds = u.requests_million * 1e6 * u.duration_ms / 1000 * memory / 1024
    usd = gb_seconds * p.usd(f"lambda.{arch}.gb_second") + u.requests_million * p.usd(
        "lambda.requests.million"
    )
    what = f"{u.requests_million:g}M invocations x {u.duration_ms:g} ms at {memory} MB ({arch})"
    return Priced(usd, what, (f"{address}: {what} a month ({u.source})",))


def _http_api(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    if (v.get("protocol_type") or "HTTP") != "HTTP":
        return Priced(None, f"no price for {v.get('protocol_type')} APIs")
    what = f"{u.requests_million:g}M requests"
    return Priced(
        u.requests_million * p.usd("apigateway.http.requests.million"),
        what,
        (f"{address}: {what} a month ({u.source})",),
    )


def _dynamodb(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
    storage = u.storage_gb * p.usd("dynamodb.storage.gb_month")
    assumed: tuple[str, ...] = ()
    if _first(v, "point_in_time_recovery").get("enabled"):
        storage += u.storage_gb * p.usd("dynamodb.pitr.gb_month")
    if (v.get("billing_mode") or "PROVISIONED") == "PAY_PER_REQUEST":
        traffic = u.reads_million * p.usd("dynamodb.ondemand.read.million") + (
            u.writes_million * p.usd("dynamodb.ondemand.write.million")
        )
        what = f"on-demand, {u.reads_million:g}M reads, {u.writes_million:g}M writes"
        assumed = (f"{address}: {what} a month ({u.source})",)
    else:
        rcu, wcu = int(v.get("read_capacity") or 0), int(v.get("write_capacity") or 0)
        traffic = p.hours * (
            rcu * p.usd("dynamodb.provisioned.rcu_hour")
            + wcu * p.usd("dynamodb.provisioned.wcu_hour")
        )
        what = f"{rcu} RCU / {wcu} WCU, 730 h"
    basis = f"{what}, {u.storage_gb:g} GB stored"
    return Priced(
        storage + traffic,
        basis,
        (*assumed, f"{address}: {u.storage_gb:g} GB stored ({u.source})"),
    )


def _fixed(sku: str, what: str) -> Callable[[Pricer, str, Values, Usage], Priced]:
    def price(p: Pricer, address: str, v: Values, u: Usage) -> Priced:
        return Priced(p.usd(sku), what)

    return price


_PRICERS: dict[str, Callable[[Pricer, str, Values, Usage], Priced]] = {
    "aws_db_instance": _rds,
    "aws_elasticache_replication_group": _elasticache,
    "aws_nat_gateway": _nat,
    "aws_eip": _eip,
    "aws_lb": _lb,
    "aws_alb": _lb,
    "aws_ecs_service": _ecs_service,
    "aws_cloudwatch_event_target": _event_target,
    "aws_instance": _instance,
    "aws_autoscaling_group": _asg,
    "aws_ebs_volume": _ebs,
    "aws_s3_bucket": _s3,
    "aws_cloudfront_distribution": _cloudfront,
    "aws_sqs_queue": _sqs,
    "aws_cloudwatch_log_group": _log_group,
    "aws_cloudwatch_metric_alarm": _fixed("cloudwatch.alarm.month", "one standard alarm"),
    "aws_sns_topic": _fixed("sns.topic.month", "topic (first 1M requests free)"),
    "aws_kms_key": _fixed("kms.key.month", "one customer managed key (requests not included)"),
    "aws_secretsmanager_secret": _fixed("secretsmanager.secret.month", "one secret"),
    "aws_lambda_function": _lambda,
    "aws_apigatewayv2_api": _http_api,
    "aws_dynamodb_table": _dynamodb,
}
PRICED_TYPES = frozenset(_PRICERS)
