"""The trace: for every ask of a goal, what in a design meets it, or why nothing does.

`trace_requirements` checks the components themselves (not the planner's word), so the same
trace answers for the catalog planner and for an LLM's proposal: a capability is met by the
components of its kind, a quality by their parameters (multi-AZ flags, capacity, sizes,
retention, schedule). A supported ask the design does not meet comes back `unsupported` with
a note saying what is missing; for the LLM planner that is a problem fed back in its retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from catalog import parse_params
from catalog.asks import Ask
from catalog.components import (
    AlbParams,
    CloudFrontParams,
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
    SqsQueueParams,
    _TaskParams,
)
from catalog.reading import Reading
from catalog.reading.capabilities import BY_NAME
from catalog.rules import MAX_INSTANCES
from catalog.sizing import CACHE_NODE_GIB, RPS_PER_VCPU
from schemas.goal import Environment, GoalStatement
from schemas.plan import Ask as AskModel
from schemas.plan import AskSource, Component, Requirement, RequirementStatus

S = RequirementStatus
_Parsed = list[tuple[Component, Params]]


@dataclass(frozen=True)
class Verdict:
    status: RequirementStatus
    by: tuple[str, ...] = ()
    note: str | None = None


def trace_requirements(
    goal: GoalStatement,
    reading: Reading,
    components: Sequence[Component],
    *,
    assumptions: Sequence[str] = (),
) -> list[Requirement]:
    """One Requirement per ask, then what Atlas assumed where the goal was silent."""
    parsed: _Parsed = []
    for c in components:
        try:
            parsed.append((c, parse_params(c)))
        except ValueError:
            continue
    out = [_requirement(ask, verdict_for(ask, goal, parsed)) for ask in reading.asks]
    out += _assumed(goal, reading, parsed, assumptions)
    return out[:300]


def _requirement(ask: Ask, v: Verdict) -> Requirement:
    note = " ".join(n for n in (ask.note, v.note) if n) or None
    status = v.status
    if ask.note and status is S.MET and "the field wins" in ask.note and ask.source.from_text:
        status = S.ASSUMED
    return Requirement(
        ask=AskModel(
            kind=ask.kind.value, name=ask.name, title=ask.title[:200], params=dict(ask.params)
        ),
        source=AskSource(
            text=ask.source.text[:2_000],
            field=ask.source.field,
            start=ask.source.start,
            end=ask.source.end,
        ),
        status=status,
        by=list(dict.fromkeys(v.by)),
        note=note[:2_000] if note else None,
    )


def verdict_for(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    if ask.name.startswith("refused."):
        return Verdict(
            S.REFUSED,
            note=f"The catalog never builds {ask.title}; if it is truly needed, a human adds "
            "it outside infra-crew after a security review.",
        )
    if ask.name.startswith("aws."):
        return Verdict(
            S.UNSUPPORTED,
            note=f"{ask.title} is not in the component catalog: drop it from the goal, or "
            "wait for a catalog component that provides it.",
        )
    check = _CHECKS.get(ask.name)
    if check is not None:
        return check(ask, goal, parsed)
    cap = BY_NAME.get(ask.name)
    if cap is not None and not cap.supported:
        return Verdict(S.UNSUPPORTED, note=cap.todo[:1].upper() + cap.todo[1:] + ".")
    if ask.name.startswith("compliance."):
        return Verdict(S.MET, _names(parsed), "Checked by validation (catalog/requirements.py).")
    return Verdict(S.UNSUPPORTED, note="Atlas read this ask but has no rule for it yet.")


# -- helpers ---------------------------------------------------------------------------------


def _of(parsed: _Parsed, *types: str) -> list[tuple[Component, Params]]:
    return [(c, p) for c, p in parsed if c.type in types]


def _names(parsed: Sequence[tuple[Component, Params]], *types: str) -> tuple[str, ...]:
    return tuple(c.name for c, _ in parsed if not types or c.type in types)


def _counted(ask: Ask, instances: Sequence[str], what: str) -> Verdict | None:
    """A count the design falls short of ("three queues" asked, one designed): unsupported,
    naming what there is; None when the design has enough (or no count was asked)."""
    count = ask.params.get("count")
    if not isinstance(count, int) or isinstance(count, bool):
        return None
    distinct = list(dict.fromkeys(instances))
    if len(distinct) >= count:
        return None
    return Verdict(
        S.UNSUPPORTED,
        tuple(distinct),
        f"{count} {what} asked for, this design has {len(distinct)}"
        + (f" ({', '.join(distinct)})" if distinct else "")
        + f" (the catalog planner designs at most {MAX_INSTANCES} of one kind per goal): "
        "lower the count, or split the goal.",
    )


def _met_count(ask: Ask, by: Sequence[str]) -> str | None:
    count = ask.params.get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        return f"{count} asked for, {len(dict.fromkeys(by))} designed."
    return None


def _types(*types: str, missing: str) -> Callable[[Ask, GoalStatement, _Parsed], Verdict]:
    def check(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
        found = _of(parsed, *types)
        if not found:
            return Verdict(S.UNSUPPORTED, note=f"Not in this design: {missing}.")
        short = _counted(ask, [c.name for c, _ in found], missing.removeprefix("a ") + "s")
        if short is not None:
            return short
        size = ask.params.get("size_gb")
        sized_types = {
            "rds_postgres", "rds_mysql", "s3_bucket", "elasticache_redis", "dynamodb_table"
        }  # fmt: skip
        if (
            isinstance(size, int | float)
            and not isinstance(size, bool)
            and set(types) & (sized_types)
        ):
            sized = [c.name for c, p in found if _size_of(p) >= float(size) * 0.999]
            if not sized:
                return Verdict(S.UNSUPPORTED, _names(found), f"Sized below the {size:g} GB asked.")
            return Verdict(S.MET, tuple(sized), f"Sized for {size:g} GB.")
        by = tuple(c.name for c, _ in found)
        return Verdict(S.MET, by, _met_count(ask, by))

    return check


def _size_of(p: Params) -> float:
    if isinstance(p, RdsParams):
        return float(p.max_allocated_storage_gb)
    if isinstance(p, S3BucketParams):
        return p.size_gb
    if isinstance(p, ElastiCacheRedisParams):
        return CACHE_NODE_GIB.get(p.node_type, 0.0)
    if isinstance(p, DynamoDbTableParams):
        return p.size_gb
    return 0.0


def _web(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    fronts = [(c, p) for c, p in parsed if isinstance(p, AlbParams | HttpApiParams)]
    if not fronts:
        return Verdict(S.UNSUPPORTED, note="Not in this design: a load-balanced service.")
    short = _counted(ask, [p.target for _, p in fronts], "load-balanced services")
    if short is not None:
        return short
    by = tuple(n for c, p in fronts for n in (c.name, p.target))
    return Verdict(S.MET, by, _met_count(ask, [p.target for _, p in fronts]))


def _static(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    cdns = [(c, p) for c, p in parsed if isinstance(p, CloudFrontParams)]
    if not cdns:
        return Verdict(S.UNSUPPORTED, note="Not in this design: a bucket behind a CDN.")
    short = _counted(ask, [c.name for c, _ in cdns], "static sites")
    if short is not None:
        return short
    return Verdict(S.MET, tuple(n for c, p in cdns for n in (p.origin, c.name)))


def _consumer(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    by = [
        (c.name, g.component)
        for c, p in parsed
        for g in getattr(p, "grants", [])
        if g.access.value == "consume"
    ]
    if not by:
        return Verdict(S.UNSUPPORTED, note="Not in this design: a service consuming a queue.")
    short = _counted(ask, [worker for worker, _ in by], "queue workers")
    if short is not None:
        return short
    workers = [w for w, _ in by]
    return Verdict(S.MET, tuple(n for pair in by for n in pair), _met_count(ask, workers))


def _services(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    found = _names(parsed, "ecs_service", "ec2_asg")
    if not found:
        return Verdict(S.UNSUPPORTED, note="Not in this design: a long-running service.")
    short = _counted(ask, found, "services")
    if short is not None:
        return short
    return Verdict(S.MET, found, _met_count(ask, found))


def _capacity(
    *types: str, missing: str, unit: str
) -> Callable[[Ask, GoalStatement, _Parsed], Verdict]:
    """Containers or instances counted ("six containers", "3 EC2 instances"): the tasks or
    instances the services run, not the number of components."""
    kinds = _types(*types, missing=missing)

    def check(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
        count = ask.params.get("count")
        if not isinstance(count, int) or isinstance(count, bool):
            return kinds(ask, goal, parsed)
        found = _of(parsed, *types)
        running = sum(
            p.desired_count if isinstance(p, EcsServiceParams)
            else p.desired_capacity if isinstance(p, Ec2AsgParams)
            else 1
            for _, p in found
        )  # fmt: skip
        if not found:
            return Verdict(S.UNSUPPORTED, note=f"Not in this design: {missing}.")
        if running < count:
            return Verdict(S.UNSUPPORTED, _names(found),
                           f"{count} {unit} asked for, this design runs {running}.")  # fmt: skip
        return Verdict(S.MET, _names(found), f"{running} {unit} run ({count} asked for).")

    return check


def _pipeline(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    movers = [
        c.name
        for c, p in parsed
        if {g.access.value for g in getattr(p, "grants", [])} >= {"read", "write"}
    ]
    if not movers:
        return Verdict(S.UNSUPPORTED, note="Not in this design: a job moving data between stores.")
    return Verdict(S.MET, (*_names(parsed, "s3_bucket"), *movers))


def _domain(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    host = ask.params.get("host")
    by = [c.name for c, p in parsed
          if isinstance(p, AlbParams | CloudFrontParams) and p.domain_name == host]  # fmt: skip
    if by:
        return Verdict(S.MET, tuple(by), f"HTTPS on {host} with an ACM certificate (DNS "
                       "validation records are created outside infra-crew).")  # fmt: skip
    return Verdict(S.UNSUPPORTED, note=f"Nothing in this design serves {host}.")


def _multi_az(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    ok: list[str] = []
    bad: list[str] = []
    for c, p in parsed:
        verdict: bool | None = None
        if isinstance(p, RdsParams):
            verdict = p.multi_az
        elif isinstance(p, ElastiCacheRedisParams):
            verdict = p.automatic_failover and p.num_nodes >= 2
        elif isinstance(p, EcsServiceParams):
            verdict = p.min_count >= 2
        elif isinstance(p, Ec2AsgParams):
            verdict = p.min_size >= 2
        if verdict is True:
            ok.append(c.name)
        elif verdict is False:
            bad.append(c.name)
    if bad:
        return Verdict(S.UNSUPPORTED, tuple(ok), f"Single-AZ in this design: {', '.join(bad)}.")
    if not ok:
        return Verdict(
            S.MET,
            _names(parsed, *_REGIONAL),
            "Regional and global services (S3, SQS, CloudFront, Lambda, API Gateway, "
            "DynamoDB) span AZs by design.",
        )
    return Verdict(S.MET, tuple(ok), "Standby/replicas in a second AZ, at least two tasks.")


_REGIONAL = ("s3_bucket", "cloudfront_distribution", "sqs_queue", "lambda_function", "http_api",
             "dynamodb_table")  # fmt: skip


def _single_az(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    if goal.environment is Environment.PROD:
        return Verdict(S.ASSUMED, note="environment prod implies multi-AZ; the field wins.")
    return Verdict(S.MET, note="No standby: the cheapest design.")


def _rps(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    rps = float(ask.params.get("rps", 0) or 0)
    capacity = 0.0
    by: list[str] = []
    for c, p in parsed:
        if isinstance(p, EcsServiceParams):
            capacity += p.desired_count * p.cpu / 1024 * RPS_PER_VCPU
            by.append(c.name)
        elif isinstance(p, Ec2AsgParams):
            capacity += p.desired_capacity * 400.0
            by.append(c.name)
        elif isinstance(p, CloudFrontParams):
            capacity = float("inf")
            by.append(c.name)
        elif isinstance(p, LambdaFunctionParams):
            capacity += p.reserved_concurrency * 1000 / p.average_duration_ms
            by.append(c.name)
    if not by:
        if _names(parsed, "ecs_scheduled_task"):
            return Verdict(S.ASSUMED, note="Scheduled work serves no requests: the rate was "
                           "not used to size it (each run is sized on its own).")  # fmt: skip
        return Verdict(
            S.ASSUMED,
            note="Nothing in this design serves requests (no workload "
            "was named), so the rate sizes nothing: name the workload to have it sized.",
        )
    if capacity + 1e-6 < rps:
        return Verdict(S.UNSUPPORTED, tuple(by), f"Sized for {capacity:g} rps, below {rps:g}.")
    if _names(parsed, "lambda_function"):
        return Verdict(S.MET, tuple(by), f"Sized for {rps:g} rps: reserved concurrency x "
                       "(1000 / average duration in ms) requests per second.")  # fmt: skip
    return Verdict(S.MET, tuple(by), f"Sized for {rps:g} rps at {RPS_PER_VCPU:g} rps per vCPU.")


def _retention_logs(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    days = int(ask.params.get("days", 0) or 0)
    logs = [(c, p) for c, p in parsed if isinstance(p, _TaskParams | LambdaFunctionParams)]
    groups = [(c, p) for c, p in parsed if c.type == "cloudwatch_log_group"]
    groups += [(c, p) for c, p in parsed if isinstance(p, HttpApiParams)]
    if days > 3653:
        return Verdict(S.UNSUPPORTED, note="CloudWatch Logs retention is at most 3653 days.")
    if not logs and not groups:
        return Verdict(
            S.UNSUPPORTED,
            note="Nothing in this design writes logs with a "
            "retention (a bucket lifecycle rule is not in the catalog yet).",
        )
    short = [c.name for c, p in logs if p.log_retention_days < days]
    short += [c.name for c, p in groups if _group_days(p) < days]
    if short:
        return Verdict(S.UNSUPPORTED, note=f"Log retention below {days} days: {', '.join(short)}.")
    return Verdict(S.MET, _names(logs + groups), f"Logs kept >= {days} days.")


def _group_days(p: Params) -> int:
    if isinstance(p, HttpApiParams):
        return p.access_log_retention_days
    days: int = getattr(p, "retention_days", 0)
    return days


def _retention_backups(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    days = int(ask.params.get("days", 0) or 0)
    dbs = [(c, p) for c, p in parsed if isinstance(p, RdsParams)]
    if days > 35 and dbs:
        return Verdict(
            S.UNSUPPORTED,
            _names(dbs),
            "RDS keeps automated backups at most 35 "
            "days: drop the longer retention or wait for AWS Backup in the catalog.",
        )
    if not dbs:
        return _backup(ask, goal, parsed)
    short = [c.name for c, p in dbs if p.backup_retention_days < days]
    if short:
        return Verdict(S.UNSUPPORTED, note=f"Backups kept < {days} days: {', '.join(short)}.")
    return Verdict(S.MET, _names(dbs), f"Automated backups kept >= {days} days.")


def _backup(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    by = [c.name for c, p in parsed
          if (isinstance(p, RdsParams) and p.backup_retention_days >= 1)
          or (isinstance(p, ElastiCacheRedisParams) and p.snapshot_retention_days >= 1)
          or (isinstance(p, S3BucketParams) and p.versioning)
          or (isinstance(p, DynamoDbTableParams) and p.point_in_time_recovery)]  # fmt: skip
    if not by:
        return Verdict(S.UNSUPPORTED, note="Nothing in this design keeps data to back up.")
    return Verdict(S.MET, tuple(by), "RDS automated backups, Redis snapshots, S3 versioning, "
                   "DynamoDB point-in-time recovery.")  # fmt: skip


def _retention_messages(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    days = int(ask.params.get("days", 0) or 0)
    queues = [(c, p) for c, p in parsed if isinstance(p, SqsQueueParams)]
    if days > 14:
        return Verdict(S.UNSUPPORTED, note="SQS keeps messages at most 14 days.")
    if not queues:
        return Verdict(S.UNSUPPORTED, note="No queue in this design.")
    short = [c.name for c, p in queues if p.message_retention_s < days * 86_400]
    if short:
        return Verdict(S.UNSUPPORTED, note=f"Messages kept < {days} days: {', '.join(short)}.")
    return Verdict(S.MET, _names(queues), f"Messages kept {days} days.")


def _retention_objects(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    days = ask.params.get("days")
    by = [c.name for c, p in parsed
          if isinstance(p, S3BucketParams) and p.expiration_days == days]  # fmt: skip
    if by:
        return Verdict(S.MET, tuple(by), f"A lifecycle rule deletes objects (and old versions) "
                       f"{days} days after they are written.")  # fmt: skip
    return Verdict(
        S.UNSUPPORTED,
        _names(parsed, "s3_bucket"),
        f"No bucket in this design deletes objects after {days} days.",
    )


def _schedule(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    expression = ask.params.get("expression")
    tasks: list[tuple[Component, EcsScheduledTaskParams | LambdaFunctionParams]] = [
        (c, p) for c, p in parsed if isinstance(p, EcsScheduledTaskParams)
    ]
    tasks += [(c, p) for c, p in parsed if isinstance(p, LambdaFunctionParams) and p.schedule]
    by = [c.name for c, p in tasks if p.schedule == expression]
    if by:
        return Verdict(S.MET, tuple(by), f"EventBridge schedule {expression} (UTC).")
    if tasks:
        return Verdict(S.UNSUPPORTED, _names(tasks), f"Scheduled otherwise, not {expression}.")
    return Verdict(S.UNSUPPORTED, note="Nothing in this design runs on a schedule.")


def _private(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    if _names(parsed, "lambda_function", "http_api", "dynamodb_table"):
        return Verdict(S.MET, note="Compute and data stores sit in private subnets; functions "
                       "and tables take no network ingress (IAM only); only a load balancer, "
                       "CDN or HTTP API faces the internet.")  # fmt: skip
    return Verdict(S.MET, note="Compute and data stores sit in private subnets; only a load "
                   "balancer or CDN faces the internet.")  # fmt: skip


def _batch(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    by = [c.name for c, p in parsed if isinstance(p, EcsScheduledTaskParams)
          or (isinstance(p, LambdaFunctionParams) and p.schedule)]  # fmt: skip
    if not by:
        return Verdict(S.UNSUPPORTED, note="Not in this design: a scheduled task or function.")
    return Verdict(S.MET, tuple(by))


def _always(note: str, *types: str) -> Callable[[Ask, GoalStatement, _Parsed], Verdict]:
    def check(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
        return Verdict(S.MET, _names(parsed, *types) if types else (), note)

    return check


def _in_transit(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    plain = [c.name for c, p in parsed if isinstance(p, AlbParams) and p.domain_name is None]
    if plain:
        return Verdict(
            S.UNSUPPORTED,
            note=f"{', '.join(plain)} listens on plain HTTP: name the "
            "domain in the goal (e.g. 'served at api.example.com') for HTTPS.",
        )
    return Verdict(
        S.MET,
        _names(parsed, "alb", "cloudfront_distribution", "http_api", "elasticache_redis"),
        "HTTPS at the edge, TLS to Redis, TLS-only bucket and queue policies.",
    )


def _environment(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    wanted = ask.params.get("environment")
    if wanted == goal.environment.value:
        return Verdict(S.MET)
    return Verdict(
        S.ASSUMED,
        note=f"The description reads as {wanted}; the plan is for {goal.environment.value} "
        "(the goal's environment field, default dev). The design takes the description's "
        f"availability and backups; set environment: {wanted} for the rest.",
    )


def _budget(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    return Verdict(S.MET, note="The forecast is within the 80 % brake (checked by validation).")


def _cdn(ask: Ask, goal: GoalStatement, parsed: _Parsed) -> Verdict:
    cdns = _names(parsed, "cloudfront_distribution")
    if cdns:
        return Verdict(S.MET, cdns)
    return Verdict(
        S.UNSUPPORTED,
        note="The catalog's CDN serves buckets only: a CDN in front of "
        "a load balancer is not in the catalog yet; drop it, or serve static files "
        "from a bucket.",
    )


_CHECKS: dict[str, Callable[[Ask, GoalStatement, _Parsed], Verdict]] = {
    "workload.web_service": _web,
    "workload.api": _web,
    "workload.static_site": _static,
    "workload.queue_worker": _consumer,
    "workload.batch": _batch,
    "workload.data_pipeline": _pipeline,
    "compute.vm": _capacity("ec2_asg", missing="EC2 instances (used for web services and APIs)",
                            unit="instances"),
    "compute.container": _capacity("ecs_service", "ecs_scheduled_task", missing="a container",
                                   unit="containers"),
    "compute.service": _services,
    "compute.serverless": _types("lambda_function", missing="a Lambda function (the serverless "
                                 "shape is an API without a relational database or cache, which "
                                 "functions outside the VPC cannot reach)"),
    "store.nosql": _types("dynamodb_table", missing="a DynamoDB table"),
    "edge.api_gateway": _types("http_api", missing="an API Gateway HTTP API"),
    "store.postgres": _types("rds_postgres", missing="a PostgreSQL database"),
    "store.mysql": _types("rds_mysql", missing="a MySQL database"),
    "store.relational": _types("rds_postgres", "rds_mysql", missing="a relational database"),
    "store.redis": _types("elasticache_redis", missing="a Redis cache"),
    "store.object_storage": _types("s3_bucket", missing="a bucket"),
    "messaging.queue": _types("sqs_queue", missing="a queue"),
    "edge.cdn": _cdn,
    "edge.load_balancer": _types("alb", missing="a load balancer"),
    "observability.monitoring": _types("cloudwatch_alarms", missing="alarms"),
    "security.kms": _always("Encrypted with KMS keys (AWS-managed or the stack's key)."),
    "domain": _domain,
    "availability.multi_az": _multi_az,
    "availability.single_az": _single_az,
    "throughput.rps": _rps,
    "size": _types("rds_postgres", "rds_mysql", "s3_bucket", "elasticache_redis",
                   "dynamodb_table", missing="a data store"),
    "retention.logs": _retention_logs,
    "retention.backups": _retention_backups,
    "retention.messages": _retention_messages,
    "retention.objects": _retention_objects,
    "backup": _backup,
    "schedule": _schedule,
    "encryption.at_rest": _always("Every catalog component encrypts what it stores."),
    "encryption.in_transit": _in_transit,
    "privacy.private": _private,
    "environment": _environment,
    "region": _always("The plan's region."),
    "allowed_regions": _always("Checked by validation."),
    "budget": _budget,
    "tags": _always("Applied to every resource.", ),
}  # fmt: skip


def _assumed(
    goal: GoalStatement, reading: Reading, parsed: _Parsed, assumptions: Sequence[str]
) -> list[Requirement]:
    out: list[Requirement] = []

    def add(name: str, title: str, note: str, by: tuple[str, ...] = ()) -> None:
        out.append(
            Requirement(
                ask=AskModel(kind="quality", name=name, title=title),
                source=AskSource(text="(the goal is silent)", field="default"),
                status=S.ASSUMED,
                by=list(by),
                note=note,
            )
        )

    stateful = _names(parsed, "rds_postgres", "rds_mysql", "elasticache_redis", "ecs_service",
                      "ec2_asg")  # fmt: skip
    if stateful and not reading.named("availability."):
        multi = any(
            (isinstance(p, RdsParams) and p.multi_az) or (isinstance(p, EcsServiceParams)
            and p.min_count >= 2) for _, p in parsed
        )  # fmt: skip
        add(
            "availability",
            "availability",
            "Multi-AZ (the environment asks for it)."
            if multi
            else "Single-AZ: nothing asked for more (say 'multi-AZ' to change it).",
            stateful,
        )
    serving = _names(parsed, "ecs_service", "ec2_asg")
    if serving and not reading.has("throughput.rps"):
        add("throughput.rps", "throughput", "No load given: the smallest size, with "
            "autoscaling up to the service's max count.", serving)  # fmt: skip
    for note in assumptions:
        if "assumed" in note:
            add("default", "default", note)
    return out


__all__ = ["Verdict", "trace_requirements", "verdict_for"]
