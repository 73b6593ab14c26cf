"""The catalog planner's rules: which components, named how, sized how (catalog/planner.py
runs them). Pure functions of the goal; every number comes from catalog/sizing.py or a
constant here."""

from __future__ import annotations

import math
from typing import Any

from catalog.components import CATALOG, FARGATE_SIZES, AlarmKind
from catalog.cost import AVERAGE_TO_PEAK, STATIC_RESPONSE_KB
from catalog.intent import Intent
from catalog.requirements import MIN_BACKUP_DAYS, MIN_LOG_RETENTION_DAYS
from catalog.schedule import runs_per_month
from catalog.sizing import LARGEST_CACHE_NODE, cache_node_for, fargate_size_for, tasks_for
from catalog.structure import COMPUTE_TYPES, FUNCTION_TYPES
from schemas.goal import (
    Compliance,
    DataStore,
    DataStoreKind,
    Environment,
    GoalStatement,
    WorkloadKind,
)
from schemas.plan import Component

K = WorkloadKind
D = DataStoreKind
SECONDS_PER_MONTH = 730 * 3600
RDS_CLASSES = ("db.t4g.micro", "db.t4g.small", "db.t4g.medium", "db.m6g.large", "db.m6g.xlarge")
RDS_CLASS_RPS = (100, 300, 1_000, 3_000)
"""Upper rps of each class above (the last takes the rest)."""
CONTAINER_NAMES = {K.WEB_SERVICE: "web", K.API: "api"}
MAX_INSTANCES = 20
MAX_ALARMS = 50
"""Instances of one kind the catalog planner designs for a count ("twelve queues" -> ten; the
trace then says the ask is not met and why)."""
#: Stores a function outside the VPC cannot reach: with one of them, no serverless shape.
VPC_STORES = frozenset({D.POSTGRES, D.MYSQL, D.REDIS})
FUNCTION_MS = 100
"""Average duration assumed for one API request handled by a function."""
SCHEDULED_FUNCTION_MS = 60_000
"""Average run of a scheduled function."""
READS_PER_REQUEST, WRITES_PER_REQUEST = 1.0, 0.2
"""Table reads and writes per API request (a read-mostly API)."""


class Draft:
    """One variant under construction: the goal's reading plus the components so far."""

    def __init__(self, goal: GoalStatement, intent: Intent, *, lean: bool) -> None:
        compliance = set(goal.constraints.compliance if goal.constraints else [])
        self.goal = goal
        self.lean = lean
        self.prod = goal.environment is Environment.PROD
        self.multi_az = intent.multi_az
        self.kind = intent.kind
        self.rps = intent.rps
        self.intent = intent
        self.backups = self.prod or Compliance.BACKUPS in compliance or intent.backups
        self.logging = Compliance.LOGGING in compliance
        self.stores = list(intent.stores)
        self.components: list[Component] = []
        self.notes: list[str] = []

    # -- helpers ------------------------------------------------------------------------

    def add(self, type_: str, name: str, **params: Any) -> str:
        taken = {c.name for c in self.components}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}_{n}", n + 1
        self.components.append(Component(type=type_, name=unique, params=params))
        return unique

    def of(self, *types: str) -> list[str]:
        return [c.name for c in self.components if c.type in types]

    @property
    def min_tasks(self) -> int:
        return 2 if self.multi_az else 1

    @property
    def log_days(self) -> int:
        floor = MIN_LOG_RETENTION_DAYS if self.logging or self.prod else 30
        return max(floor, self.intent.log_days or 0)

    @property
    def backup_days(self) -> int:
        asked = self.intent.backup_days or 0
        return max(asked, 14 if self.prod and not self.lean else MIN_BACKUP_DAYS)

    def qualifiers(self, *capabilities: str) -> list[str | None]:
        """One entry per instance the asks of `capabilities` want: its name when the goal
        named every one ("a billing queue and a shipping queue"), else None. Bounded by
        MAX_INSTANCES."""
        count, names = self.intent.instances(*capabilities)
        if count > MAX_INSTANCES:
            self.notes.append(
                f"{count} {' / '.join(capabilities)} asked for; the catalog planner designs at "
                f"most {MAX_INSTANCES} of one kind per goal."
            )
        count = min(count, MAX_INSTANCES)
        return list(names[:count]) if names else [None] * count

    def service(
        self, name: str, rps: float, grants: list[dict[str, str]], siblings: int = 1
    ) -> str:
        """A long-running service; `siblings`: how many services share the tasks or
        instances the goal counted ("six containers across three services")."""
        cpu, memory = fargate_size_for(rps)
        desired = tasks_for(rps, cpu, minimum=self.min_tasks, headroom=1.0 if self.lean else 1.25)
        tasks_asked, _ = self.intent.instances("compute.container")
        vms_asked, _ = self.intent.instances("compute.vm")
        if self.intent.wants_ec2 and self.kind in CONTAINER_NAMES:
            per_instance = 400.0
            desired = max(self.min_tasks, math.ceil(rps / per_instance - 1e-9) if rps else 0)
            desired = max(desired, math.ceil(vms_asked / siblings) if vms_asked > 1 else 0)
            return self.add(
                "ec2_asg",
                name,
                instance_type="c6i.large" if rps > 80 else "t3.small",
                min_size=self.min_tasks,
                desired_capacity=min(desired, 50),
                max_size=min(100, max(desired * 2, self.min_tasks + 2)),
                grants=grants,
            )
        desired = min(50, max(desired, math.ceil(tasks_asked / siblings) if tasks_asked > 1 else 0))
        return self.add(
            "ecs_service",
            name,
            cpu=cpu,
            memory_mb=memory,
            desired_count=desired,
            min_count=self.min_tasks,
            max_count=min(100, max(desired * 2, self.min_tasks + 2)),
            log_retention_days=self.log_days,
            grants=grants,
        )

    def bucket(self, name: str, size_gb: float | None, **extra: Any) -> str:
        if size_gb is None:
            self.notes.append(f"{name}: no size given, 50 GB assumed.")
        if self.intent.object_days and not extra.get("website_origin"):
            extra["expiration_days"] = self.intent.object_days
        return self.add(
            "s3_bucket",
            name,
            versioning=True,
            access_logging=True,
            force_destroy=not self.prod,
            size_gb=size_gb or 50,
            **extra,
        )

    def queue(self, name: str, share: int = 1) -> str:
        """A queue carrying `1/share` of the goal's load (messages are split between queues)."""
        rate = self.rps / share
        millions = round(rate * AVERAGE_TO_PEAK * SECONDS_PER_MONTH * 3 / 1e6, 2)
        extra: dict[str, Any] = {}
        if self.intent.message_retention_days:
            days = min(14, self.intent.message_retention_days)
            extra["message_retention_s"] = days * 86_400
        return self.add("sqs_queue", name, monthly_requests_million=max(1.0, millions), **extra)


def workload_components(d: Draft) -> list[DataStore]:
    """The workload's own components; returns the data stores still to be designed."""
    remaining = list(d.stores)

    def take(kind: DataStoreKind) -> DataStore | None:
        store = next((s for s in remaining if s.kind is kind), None)
        if store is not None:
            remaining.remove(store)
        return store

    if (
        d.kind in CONTAINER_NAMES
        and d.intent.serverless
        and not VPC_STORES & set(s.kind for s in remaining)
    ):
        _serverless_api(d)
    elif d.kind in CONTAINER_NAMES:
        base = CONTAINER_NAMES[d.kind]
        services = d.qualifiers("compute.service", f"workload.{d.kind.value}")
        for i, q in enumerate(services):
            app = d.service(named(q, base, base), d.rps / len(services), [], len(services))
            d.add(
                "alb",
                named(q, "lb", "lb"),
                target=app,
                domain_name=d.intent.domain if i == 0 else None,
                deletion_protection=d.prod,
                access_logs=True,
            )
        if len(services) > 1:
            d.notes.append(
                "Each service has its own load balancer (path routing on one load balancer "
                "is not in the catalog)."
                + (f" The domain is served by {services[0] or base}." if d.intent.domain else "")
            )
    elif d.kind is K.STATIC_SITE:
        site = take(D.OBJECT_STORAGE)
        _static_site(d, site, d.intent.domain, d.rps)
    elif d.kind is K.QUEUE_WORKER:
        take(D.QUEUE)
        _queue_workers(d)
    elif d.kind is K.BATCH:
        _scheduled_job(d, remaining)
    elif d.kind is K.DATA_PIPELINE:
        landing = take(D.OBJECT_STORAGE)
        size = landing.size_gb if landing else None
        raw, curated = d.bucket("raw", size), d.bucket("curated", size)
        grants = [{"component": raw, "access": "read"}, {"component": curated, "access": "write"}]
        if d.rps or take(D.QUEUE) is not None:
            events = d.queue("events")
            d.service("processor", d.rps, [*grants, {"component": events, "access": "consume"}])
        else:
            d.add(
                "ecs_scheduled_task",
                "transform",
                cpu=1024,
                memory_mb=FARGATE_SIZES[1024][0],
                run_minutes=20,
                schedule=d.intent.schedule or "rate(1 hour)",
                log_retention_days=d.log_days,
                grants=grants,
            )
            d.notes.append("transform: each run takes about 20 minutes on 1 vCPU / 2 GiB.")
    for extra in d.intent.extra_kinds:
        if extra is K.BATCH:
            _scheduled_job(d, remaining)
        elif extra is K.STATIC_SITE:
            _static_site(d, None, None, 0.0, counted=False)
        elif extra is K.QUEUE_WORKER and not any(s.kind is D.QUEUE for s in remaining):
            remaining.append(DataStore(kind=D.QUEUE))
    return remaining


def _monthly_million(rps: float) -> float:
    return max(1.0, round(rps * AVERAGE_TO_PEAK * SECONDS_PER_MONTH / 1e6, 2))


def _serverless_api(d: Draft) -> None:
    """An HTTP API in front of one function, its code bucket, and the NoSQL table if asked."""
    requests = _monthly_million(d.rps)
    grants: list[dict[str, str]] = []
    if d.intent.nosql:
        table = d.add(
            "dynamodb_table",
            "table",
            point_in_time_recovery=True,
            deletion_protection=d.prod,
            size_gb=d.intent.nosql_size_gb or 1,
            monthly_reads_million=round(requests * READS_PER_REQUEST, 2),
            monthly_writes_million=round(requests * WRITES_PER_REQUEST, 2),
        )
        grants.append({"component": table, "access": "read_write"})
        if d.intent.nosql_size_gb is None:
            d.notes.append(f"{table}: no size given, 1 GB assumed.")
        d.notes.append(
            f"{table}: on-demand capacity, {READS_PER_REQUEST:g} read and "
            f"{WRITES_PER_REQUEST:g} write per request."
        )
    code = _code_bucket(d)
    # Enough concurrency for twice the peak at the assumed duration (Little's law).
    concurrency = min(1_000, max(10, math.ceil(d.rps * FUNCTION_MS / 1000 * 2)))
    handler = d.add(
        "lambda_function",
        "handler",
        code_bucket=code,
        code_key="releases/handler.zip",
        reserved_concurrency=concurrency,
        log_retention_days=d.log_days,
        grants=grants,
        monthly_invocations_million=requests,
        average_duration_ms=FUNCTION_MS,
    )
    rate = min(10_000, max(100, math.ceil(d.rps * 1.5)))
    d.add(
        "http_api",
        "api",
        target=handler,
        throttling_rate_limit=rate,
        throttling_burst_limit=min(5_000, rate * 2),
        access_log_retention_days=d.log_days,
        monthly_requests_million=requests,
    )
    d.notes.append(
        f"{handler}: {FUNCTION_MS} ms per request at 256 MiB; the team's pipeline uploads "
        f"the package to {code} (releases/handler.zip) and calls update-function-code."
    )


def named(qualifier: str | None, base: str, default: str) -> str:
    """An instance's component name: `<qualifier>_<base>` ("billing_queue"), else `default`
    (Draft.add numbers repeats: queue, queue_2, ...)."""
    return f"{qualifier}_{base}" if qualifier else default


def _queue_workers(d: Draft) -> None:
    """The queues and the services draining them: one worker per queue unless the goal
    counts the workers (then the queues are dealt out between them)."""
    qs = d.qualifiers("messaging.queue")
    queues = [d.queue(named(q, "queue", "jobs"), share=len(qs)) for q in qs]
    workers = d.qualifiers("compute.service", "workload.queue_worker")
    if len(workers) < len(queues):
        workers = qs
    for i, q in enumerate(workers):
        mine = [queues[j] for j in range(len(queues)) if j % len(workers) == i]
        mine = mine or [queues[i % len(queues)]]
        d.service(
            named(q, "worker", "worker"),
            d.rps / len(workers),
            [{"component": name, "access": "consume"} for name in mine],
            len(workers),
        )


def _static_site(
    d: Draft, site: DataStore | None, domain: str | None, rps: float, *, counted: bool = True
) -> None:
    """A bucket behind a CDN per site the goal counts ("two static marketing sites"); the
    domain goes to the first, the load is shared."""
    sites = d.qualifiers("workload.static_site") if counted else [None]
    size = site.size_gb if site and site.size_gb else 1
    for i, q in enumerate(sites):
        name = d.bucket(named(q, "site", "site"), size, website_origin=True)
        cdn: dict[str, Any] = {"origin": name, "domain_name": domain if i == 0 else None}
        if rps:
            millions = round(rps / len(sites) * AVERAGE_TO_PEAK * SECONDS_PER_MONTH / 1e6, 2)
            transfer = round(millions * STATIC_RESPONSE_KB, 2)  # M requests x KB = GB
            cdn |= {"monthly_requests_million": millions, "monthly_transfer_gb": transfer}
        d.add("cloudfront_distribution", named(q, "cdn", "cdn"), **cdn)
    if rps:
        d.notes.append(f"cdn: {STATIC_RESPONSE_KB:g} KB transferred per request on average.")


def _code_bucket(d: Draft) -> str:
    """The bucket functions' packages come from (one per design)."""
    existing = [c.name for c in d.components if c.name == "code" and c.type == "s3_bucket"]
    if existing:
        return existing[0]
    return d.add(
        "s3_bucket",
        "code",
        versioning=True,
        access_logging=True,
        force_destroy=not d.prod,
        size_gb=1,
    )


def _scheduled_function(d: Draft) -> None:
    """A Lambda function EventBridge invokes on the goal's schedule."""
    schedule = d.intent.schedule or "rate(1 day)"
    runs = runs_per_month(schedule)
    d.add(
        "lambda_function",
        "job",
        code_bucket=_code_bucket(d),
        code_key="releases/job.zip",
        memory_mb=512,
        timeout_s=900,
        reserved_concurrency=1,
        schedule=schedule,
        log_retention_days=d.log_days,
        grants=[{"component": t, "access": "read_write"} for t in d.of("dynamodb_table")],
        monthly_invocations_million=round(runs / 1e6, 6),
        average_duration_ms=SCHEDULED_FUNCTION_MS,
    )
    d.notes.append(
        f"job: a scheduled function, one run at a time, about {SCHEDULED_FUNCTION_MS // 1000} s "
        "per run at 512 MiB (at most 15 minutes)."
    )
    if d.intent.schedule is None:
        d.notes.append("job: no schedule given, once a day assumed.")


def _scheduled_job(d: Draft, remaining: list[DataStore]) -> None:
    """A scheduled container task (or function, when the goal asks for serverless); it may
    read and write the goal's bucket."""
    if d.intent.serverless and not VPC_STORES & {s.kind for s in remaining}:
        _scheduled_function(d)
        return
    if d.intent.schedule is None:
        d.notes.append("job: no schedule given, once a day assumed.")
    for q in d.qualifiers("workload.batch"):
        d.add(
            "ecs_scheduled_task",
            named(q, "job", "job"),
            cpu=512,
            memory_mb=1024,
            run_minutes=15,
            schedule=d.intent.schedule or "rate(1 day)",
            log_retention_days=d.log_days,
        )
    d.notes.append("job: each run takes about 15 minutes on 0.5 vCPU / 1 GiB.")
    del remaining


def store_components(d: Draft, stores: list[DataStore]) -> None:
    compute = d.of(*COMPUTE_TYPES, *FUNCTION_TYPES)
    if d.intent.nosql and not d.of("dynamodb_table"):
        table = d.add(
            "dynamodb_table",
            "table",
            point_in_time_recovery=True,
            deletion_protection=d.prod,
            size_gb=d.intent.nosql_size_gb or 1,
        )
        _grant(d, compute, {"component": table, "access": "read_write"})
    for store in stores:
        if store.kind in (D.POSTGRES, D.MYSQL):
            index = sum(d.rps > limit for limit in RDS_CLASS_RPS)
            if d.prod and not d.lean:
                index = max(index, 1)
            size = min(16_384, max(20, math.ceil(store.size_gb or 20)))
            engine = "store.postgres" if store.kind is D.POSTGRES else "store.mysql"
            for q in d.qualifiers(engine, "store.relational"):
                d.add(
                    "rds_postgres" if store.kind is D.POSTGRES else "rds_mysql",
                    named(q, "db", "db"),
                    instance_class=RDS_CLASSES[index],
                    allocated_storage_gb=size,
                    max_allocated_storage_gb=min(65_536, max(100, size * 2)),
                    multi_az=d.multi_az,
                    backup_retention_days=d.backup_days,
                    deletion_protection=d.prod,
                    allow_from=compute,
                )
        elif store.kind is D.REDIS:
            node = cache_node_for(store.size_gb) or LARGEST_CACHE_NODE
            for q in d.qualifiers("store.redis"):
                d.add(
                    "elasticache_redis",
                    named(q, "cache", "cache"),
                    node_type=node,
                    num_nodes=2 if d.multi_az else 1,
                    automatic_failover=d.multi_az,
                    allow_from=compute,
                    snapshot_retention_days=(
                        max(MIN_BACKUP_DAYS, min(35, d.intent.backup_days or 0)) if d.backups else 1
                    ),
                )
        elif store.kind is D.OBJECT_STORAGE:
            for q in d.qualifiers("store.object_storage"):
                name = d.bucket(named(q, "bucket", "objects"), store.size_gb)
                _grant(d, compute, {"component": name, "access": "read_write"})
        else:
            qs = d.qualifiers("messaging.queue")
            for q in qs:
                name = d.queue(named(q, "queue", "queue"), share=len(qs))
                _grant(d, compute, {"component": name, "access": "publish"})
                if d.kind in CONTAINER_NAMES and not d.of(*FUNCTION_TYPES):
                    worker = d.service(
                        named(q, "worker", "worker"), 0, [{"component": name, "access": "consume"}]
                    )
                    d.notes.append(f"{worker}: consumes {name}, which the {d.kind} publishes to.")


def _grant(d: Draft, compute: list[str], grant: dict[str, str]) -> None:
    for i, c in enumerate(d.components):
        if c.name in compute:
            params = {**c.params, "grants": [*c.params.get("grants", []), grant]}
            d.components[i] = c.model_copy(update={"params": params})


def network_and_alarms(d: Draft) -> None:
    inside = [c for c in d.components if CATALOG[c.type].needs_vpc]
    if inside:
        compute = bool(d.of(*COMPUTE_TYPES))
        per_az = d.prod and d.multi_az and not d.lean
        nat = ("per_az" if per_az else "single") if compute else "none"
        d.components.insert(0, Component(type="vpc", name="network", params={"nat": nat}))
    alarms = [
        {"component": c.name, "kind": kind.value}
        for c in d.components
        for kind in _ALARMS.get(c.type, ())
    ]
    for start in range(0, len(alarms), MAX_ALARMS):
        # A component holds at most MAX_ALARMS alarms: counted instances may need more.
        d.add("cloudwatch_alarms", "alarms", alarms=alarms[start : start + MAX_ALARMS])


_ALARMS: dict[str, tuple[AlarmKind, ...]] = {
    "alb": (AlarmKind.HTTP_5XX,),
    "ecs_service": (AlarmKind.CPU_HIGH,),
    "ec2_asg": (AlarmKind.CPU_HIGH,),
    "rds_postgres": (AlarmKind.DB_CPU_HIGH, AlarmKind.DB_FREE_STORAGE_LOW),
    "rds_mysql": (AlarmKind.DB_CPU_HIGH, AlarmKind.DB_FREE_STORAGE_LOW),
    "sqs_queue": (AlarmKind.QUEUE_DEPTH, AlarmKind.DLQ_NOT_EMPTY),
    "lambda_function": (AlarmKind.FUNCTION_ERRORS, AlarmKind.DLQ_NOT_EMPTY),
    "http_api": (AlarmKind.HTTP_5XX,),
}
