"""Monthly cost forecast of a design, per component, from the built-in price table.

Every line says what it assumed (`CostLine.basis`): hours run, traffic, log volume. The
usage assumptions are the constants below, stated once so the planner, the plan's reader and
the tests agree. Free tiers are not deducted and internet data transfer is not forecast
(it is listed as an assumption on every plan), so forecasts lean high, which is the safe
side of a budget brake.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from catalog import parse_params
from catalog.components import (
    CATALOG,
    AlbParams,
    CloudFrontParams,
    CloudWatchAlarmsParams,
    CloudWatchLogGroupParams,
    DynamoDbTableParams,
    Ec2AsgParams,
    EcsScheduledTaskParams,
    EcsServiceParams,
    ElastiCacheRedisParams,
    HttpApiParams,
    LambdaFunctionParams,
    NatMode,
    Params,
    RdsMysqlParams,
    RdsParams,
    S3BucketParams,
    SqsQueueParams,
    VpcParams,
)
from catalog.prices import PriceTable, load_prices
from catalog.schedule import runs_per_month
from schemas.goal import Availability, Environment, GoalStatement, Workload
from schemas.plan import Component, CostLine, PerfTargets, PlanBudget

BRAKE_RATIO = 0.8
"""The hard brake: a forecast above 80 % of the goal's budget is never applied."""

AVERAGE_TO_PEAK = 0.3
"""expected_rps is a peak; traffic averages this share of it over a month."""
RESPONSE_KB = 10.0
"""Average response through a load balancer (APIs, HTML)."""
STATIC_RESPONSE_KB = 30.0
"""Average object served by a static site's CDN (pages and assets mixed)."""
REQUESTS_PER_CONNECTION = 10.0
"""Keep-alive: requests per new connection to a load balancer."""
NAT_GB_PER_MONTH = 10.0
"""Egress through each NAT gateway: image pulls and AWS API calls."""
FLOW_LOG_GB_PER_AZ = 0.5
"""VPC flow logs ingested per AZ and month."""
LOG_GB_PER_TASK = 1.0
"""Application logs per running task (or instance) and month."""
MAX_STORED_MONTHS = 12.0
"""Logs kept longer than a year are forecast at their size after one year."""
LOG_KB_PER_INVOCATION = 1.0
"""Application logs a Lambda invocation writes (start/end/report lines and a few more)."""
ACCESS_LOG_KB_PER_REQUEST = 0.5
"""One JSON access-log line per HTTP API request."""


@dataclass(frozen=True)
class Usage:
    """What a component's cost depends on beyond its own parameters."""

    region: str
    expected_rps: float | None
    az_count: int
    prices: PriceTable

    def usd(self, sku: str) -> float:
        return self.prices.price(sku, self.region).usd

    @property
    def hours(self) -> float:
        return self.prices.hours_per_month

    def logs(self, gb: float, retention_days: int) -> float:
        """Ingest `gb` a month and keep it `retention_days` (steady-state storage)."""
        stored = gb * min(retention_days / 30.4, MAX_STORED_MONTHS)
        return gb * self.usd("cloudwatch.logs.ingest_gb") + stored * self.usd(
            "cloudwatch.logs.storage_gb_month"
        )


def brake_for(cap_monthly_usd: float) -> float:
    """80 % of the budget, at cent precision (as Sentinel applies it)."""
    return round(cap_monthly_usd * BRAKE_RATIO, 2)


def budget_needed(forecast_monthly_usd: float) -> float:
    """The smallest budget (whole cents) whose brake admits `forecast_monthly_usd`."""
    target = round(forecast_monthly_usd, 2)
    cents = max(1, math.floor((target - 0.005) / BRAKE_RATIO * 100))
    while brake_for(cents / 100) < target or brake_for(cents / 100) <= 0:
        cents += 1
    return cents / 100


def forecast_lines(
    components: Sequence[Component], region: str, *, expected_rps: float | None = None
) -> list[CostLine]:
    """One CostLine per component. Components must already be valid catalog entries."""
    parsed = [(c, parse_params(c)) for c in components]
    az_count = next((p.az_count for _, p in parsed if isinstance(p, VpcParams)), 2)
    usage = Usage(region, expected_rps, az_count, load_prices())
    lines = []
    for component, params in parsed:
        usd, basis = _MODELS[component.type](params, usage)
        lines.append(CostLine(component=component.name, monthly_usd=round(usd, 2), basis=basis))
    return lines


def plan_budget(goal: GoalStatement, lines: list[CostLine]) -> PlanBudget:
    workload = goal.workload or Workload()
    return PlanBudget(
        forecast_monthly_usd=round(sum(line.monthly_usd for line in lines), 2),
        cap_monthly_usd=goal.budget.monthly_usd,
        brake_monthly_usd=max(brake_for(goal.budget.monthly_usd), 0.01),
        breakdown=lines,
        perf=PerfTargets(
            expected_rps=workload.expected_rps,
            availability=workload.availability or _default_availability(goal),
        ),
    )


def _default_availability(goal: GoalStatement) -> Availability:
    return Availability.MULTI_AZ if goal.environment is Environment.PROD else Availability.SINGLE_AZ


# -- one model per catalog type --------------------------------------------------------------

Model = Callable[[Params, Usage], tuple[float, str]]


def _vpc(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, VpcParams)
    nats = {NatMode.NONE: 0, NatMode.SINGLE: 1, NatMode.PER_AZ: p.az_count}[p.nat]
    nat = nats * (
        (u.usd("nat_gateway.hour") + u.usd("vpc.public_ipv4.hour")) * u.hours
        + NAT_GB_PER_MONTH * u.usd("nat_gateway.gb_processed")
    )
    flow = u.logs(FLOW_LOG_GB_PER_AZ * p.az_count, p.flow_log_retention_days) if p.flow_logs else 0
    basis = f"{nats} NAT gateway(s) with a public IPv4 each, {NAT_GB_PER_MONTH:g} GB through each"
    if p.flow_logs:
        basis += (
            f"; flow logs {FLOW_LOG_GB_PER_AZ:g} GB/AZ/month kept {p.flow_log_retention_days} d"
        )
    return nat + flow, basis


def _alb(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, AlbParams)
    average = (u.expected_rps or 0) * AVERAGE_TO_PEAK
    gb_per_hour = average * RESPONSE_KB * 3600 / 1e6
    lcus = max(1.0, gb_per_hour, average / REQUESTS_PER_CONNECTION / 25)
    usd = u.hours * (
        u.usd("alb.hour")
        + lcus * u.usd("alb.lcu_hour")
        + u.az_count * u.usd("vpc.public_ipv4.hour")
    )
    traffic = (
        f"{average:g} rps average ({AVERAGE_TO_PEAK:.0%} of peak), {RESPONSE_KB:g} KB responses"
        if u.expected_rps
        else "light traffic"
    )
    return usd, f"730 h, {lcus:.1f} LCU ({traffic}), {u.az_count} public IPv4"


def _task_hour(cpu: int, memory_mb: int, u: Usage) -> float:
    return cpu / 1024 * u.usd("fargate.vcpu_hour") + memory_mb / 1024 * u.usd("fargate.gb_hour")


def _ecs_service(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, EcsServiceParams)
    compute = p.desired_count * _task_hour(p.cpu, p.memory_mb, u) * u.hours
    logs = u.logs(p.desired_count * LOG_GB_PER_TASK, p.log_retention_days)
    basis = (
        f"{p.desired_count} Fargate task(s) of {p.cpu} CPU / {p.memory_mb} MiB all month; "
        f"logs {LOG_GB_PER_TASK:g} GB/task/month kept {p.log_retention_days} d"
    )
    return compute + logs, basis


def _ecs_scheduled_task(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, EcsScheduledTaskParams)
    runs = runs_per_month(p.schedule)
    compute = runs * p.run_minutes / 60 * _task_hour(p.cpu, p.memory_mb, u)
    logs = u.logs(LOG_GB_PER_TASK, p.log_retention_days)
    basis = (
        f"~{runs:g} runs/month ({p.schedule}) of {p.run_minutes} min at {p.cpu} CPU / "
        f"{p.memory_mb} MiB; logs {LOG_GB_PER_TASK:g} GB/month"
    )
    return compute + logs, basis


def _ec2_asg(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, Ec2AsgParams)
    instance = u.usd(f"ec2.{p.instance_type}.hour") * u.hours
    volume = p.volume_gb * u.usd("ebs.gp3.gb_month")
    logs = u.logs(p.desired_capacity * LOG_GB_PER_TASK, 30)
    basis = f"{p.desired_capacity} x {p.instance_type} all month with {p.volume_gb} GB gp3 each"
    return p.desired_capacity * (instance + volume) + logs, basis


def _rds(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, RdsParams)
    engine = "mysql" if isinstance(p, RdsMysqlParams) else "postgres"
    copies = 2 if p.multi_az else 1
    instance = u.usd(f"rds.{engine}.{p.instance_class}.hour") * u.hours
    storage = p.allocated_storage_gb * u.usd("rds.gp3.gb_month")
    usd = copies * (instance + storage) + u.usd("secretsmanager.secret.month")
    basis = (
        f"{p.instance_class}{' multi-AZ (x2)' if p.multi_az else ''} all month, "
        f"{p.allocated_storage_gb} GB gp3, managed password secret; backups within the free "
        "allowance (up to the database size)"
    )
    return usd, basis


def _redis(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, ElastiCacheRedisParams)
    usd = p.num_nodes * u.usd(f"elasticache.{p.node_type}.hour") * u.hours
    return usd, f"{p.num_nodes} x {p.node_type} all month; snapshots within the free allowance"


def _s3(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, S3BucketParams)
    usd = p.size_gb * u.usd("s3.standard.gb_month") + p.monthly_requests_million * u.usd(
        "s3.requests.million"
    )
    basis = f"{p.size_gb:g} GB S3 Standard, {p.monthly_requests_million:g} M requests"
    return usd, basis + ("; access logs negligible" if p.access_logging else "")


def _cloudfront(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, CloudFrontParams)
    usd = p.monthly_transfer_gb * u.usd("cloudfront.transfer.gb") + (
        p.monthly_requests_million * u.usd("cloudfront.requests.million")
    )
    basis = (
        f"{p.monthly_transfer_gb:g} GB out, {p.monthly_requests_million:g} M HTTPS requests "
        "(North America/Europe prices)"
    )
    return usd, basis


def _sqs(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, SqsQueueParams)
    sku = "sqs.fifo.million" if p.fifo else "sqs.standard.million"
    usd = p.monthly_requests_million * u.usd(sku)
    return usd, f"{p.monthly_requests_million:g} M requests (dead-letter queue traffic negligible)"


def _log_group(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, CloudWatchLogGroupParams)
    usd = u.logs(p.monthly_ingest_gb, p.retention_days)
    return usd, f"{p.monthly_ingest_gb:g} GB/month ingested, kept {p.retention_days} d"


def _alarms(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, CloudWatchAlarmsParams)
    usd = len(p.alarms) * u.usd("cloudwatch.alarm.month") + u.usd("sns.topic.month")
    return usd, f"{len(p.alarms)} standard alarm(s) and one SNS topic"


def _lambda(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, LambdaFunctionParams)
    arch = "arm" if p.architecture == "arm64" else "x86"
    gb_seconds = (
        p.monthly_invocations_million * 1e6 * p.average_duration_ms / 1000 * p.memory_mb / 1024
    )
    compute = gb_seconds * u.usd(f"lambda.{arch}.gb_second")
    requests = p.monthly_invocations_million * u.usd("lambda.requests.million")
    log_gb = p.monthly_invocations_million * 1e6 * LOG_KB_PER_INVOCATION / 1e6
    basis = (
        f"{p.monthly_invocations_million:g} M invocations x {p.average_duration_ms} ms at "
        f"{p.memory_mb} MiB ({p.architecture}); logs {LOG_KB_PER_INVOCATION:g} KB/invocation "
        f"kept {p.log_retention_days} d; dead-letter queue traffic negligible"
    )
    return compute + requests + u.logs(log_gb, p.log_retention_days), basis


def _http_api(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, HttpApiParams)
    requests = p.monthly_requests_million * u.usd("apigateway.http.requests.million")
    log_gb = p.monthly_requests_million * 1e6 * ACCESS_LOG_KB_PER_REQUEST / 1e6
    basis = (
        f"{p.monthly_requests_million:g} M requests (first price tier); access logs "
        f"{ACCESS_LOG_KB_PER_REQUEST:g} KB/request kept {p.access_log_retention_days} d"
    )
    return requests + u.logs(log_gb, p.access_log_retention_days), basis


def _dynamodb(p: Params, u: Usage) -> tuple[float, str]:
    assert isinstance(p, DynamoDbTableParams)
    storage = p.size_gb * u.usd("dynamodb.storage.gb_month")
    pitr = p.size_gb * u.usd("dynamodb.pitr.gb_month") if p.point_in_time_recovery else 0.0
    if p.billing_mode == "on_demand":
        traffic = p.monthly_reads_million * u.usd(
            "dynamodb.ondemand.read.million"
        ) + p.monthly_writes_million * u.usd("dynamodb.ondemand.write.million")
        how = (
            f"on-demand, {p.monthly_reads_million:g} M reads and "
            f"{p.monthly_writes_million:g} M writes"
        )
    else:
        traffic = u.hours * (
            p.read_capacity * u.usd("dynamodb.provisioned.rcu_hour")
            + p.write_capacity * u.usd("dynamodb.provisioned.wcu_hour")
        )
        how = f"provisioned {p.read_capacity} RCU / {p.write_capacity} WCU all month"
    basis = f"{how}; {p.size_gb:g} GB stored" + ("; PITR on the same size" if pitr else "")
    return storage + pitr + traffic, basis


def _free(p: Params, u: Usage) -> tuple[float, str]:
    return 0.0, "no charge"


_MODELS: dict[str, Model] = {
    "vpc": _vpc,
    "alb": _alb,
    "ecs_service": _ecs_service,
    "ecs_scheduled_task": _ecs_scheduled_task,
    "ec2_asg": _ec2_asg,
    "rds_postgres": _rds,
    "rds_mysql": _rds,
    "elasticache_redis": _redis,
    "s3_bucket": _s3,
    "cloudfront_distribution": _cloudfront,
    "sqs_queue": _sqs,
    "cloudwatch_log_group": _log_group,
    "cloudwatch_alarms": _alarms,
    "iam_role": _free,
    "lambda_function": _lambda,
    "http_api": _http_api,
    "dynamodb_table": _dynamodb,
}
assert set(_MODELS) == set(CATALOG), "every catalog type needs a cost model"
