"""What the catalog planner designs for: the goal's asks (catalog/reading/) resolved into the
few decisions its rules take. Structured fields win over the description; a quality the
description sets (multi-AZ, rps, retention, backups, schedule) changes the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog.components import LOG_RETENTION_DAYS
from catalog.goal_checks import needs_multi_az
from catalog.reading import Reading
from catalog.requirements import MIN_BACKUP_DAYS
from schemas.goal import (
    Compliance,
    DataStore,
    DataStoreKind,
    Environment,
    GoalStatement,
    WorkloadKind,
)

K = WorkloadKind
D = DataStoreKind
MAX_BACKUP_DAYS = 35
MAX_MESSAGE_RETENTION_DAYS = 14
_KIND_OF = {f"workload.{k.value}": k for k in K}
_STORE_OF = {
    "store.postgres": D.POSTGRES, "store.mysql": D.MYSQL, "store.redis": D.REDIS,
    "store.object_storage": D.OBJECT_STORAGE, "messaging.queue": D.QUEUE,
}  # fmt: skip


@dataclass(frozen=True)
class Intent:
    kind: WorkloadKind | None
    extra_kinds: tuple[WorkloadKind, ...]
    stores: tuple[DataStore, ...]
    rps: float
    multi_az: bool
    backups: bool
    backup_days: int | None
    log_days: int | None
    message_retention_days: int | None
    object_days: int | None
    """Objects expire this many days after they are written (a bucket lifecycle rule)."""
    domain: str | None
    schedule: str | None
    wants_ec2: bool
    serverless: bool = False
    """Functions (Lambda) behind an API Gateway HTTP API instead of a load-balanced service."""
    nosql: bool = False
    """A DynamoDB table (a NoSQL / key-value store was asked for)."""
    nosql_size_gb: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    counts: tuple[tuple[str, int, tuple[str, ...]], ...] = ()
    """(capability, count, instance names) for every ask that asked for more than one."""

    def instances(self, *capabilities: str) -> tuple[int, tuple[str, ...]]:
        """How many instances the asks of `capabilities` want (1 when none says), and their
        names when every one was named (the first capability that says wins)."""
        for name, count, names in self.counts:
            if name in capabilities:
                return count, names if len(names) >= count else ()
        return 1, ()


def intent_of(goal: GoalStatement, reading: Reading) -> Intent:
    workload = goal.workload
    kinds = [
        _KIND_OF[a.name]
        for a in sorted(reading.named("workload."), key=_position)
        if a.name in _KIND_OF
    ]
    field_kind = workload.kind if workload else None
    stores = _stores(goal, reading)
    store_kinds = {s.kind for s in stores}
    kind = field_kind or (kinds[0] if kinds else None)
    if kind is K.STATIC_SITE and field_kind is None and store_kinds - {D.OBJECT_STORAGE}:
        kind = K.WEB_SERVICE  # a "site" with a database has a backend
    serverless = reading.has("compute.serverless") or reading.has("edge.api_gateway")
    if kind is None and serverless:
        # Functions run on a schedule when one is asked for, else answer requests (an HTTP
        # API in front of them).
        kind = K.BATCH if reading.has("schedule") else K.API
    if kind is None and reading.has("schedule"):
        kind = K.BATCH  # something runs on a schedule: a scheduled job
    if kind is None and reading.has("compute.service"):
        kind = K.WEB_SERVICE  # "three services (auth, catalog, checkout)": long-running services
    if kind is None and (reading.has("compute.container") or reading.has("compute.vm")):
        kind = K.WEB_SERVICE if reading.has("domain") or reading.has("edge.load_balancer") else None
    extra = tuple(
        dict.fromkeys(k for k in kinds if k is not kind and _can_add(kind, k, store_kinds))
    )
    if reading.has("schedule") and kind in (K.WEB_SERVICE, K.API, K.QUEUE_WORKER):
        # Something of this workload runs on a schedule: a scheduled job beside it.
        extra = tuple(dict.fromkeys((*extra, K.BATCH)))
    rps_ask = reading.get("throughput.rps")
    rps = float(rps_ask.params.get("rps", 0) or 0) if rps_ask else 0.0
    field_availability = workload.availability if workload else None
    text_env = reading.get("environment")
    text_prod = (
        text_env is not None
        and text_env.source.from_text
        and text_env.params.get("environment") == "prod"
    )
    multi_az = needs_multi_az(goal) or (
        field_availability is None
        and (reading.has("availability.multi_az") or text_prod)
        and not reading.has("availability.single_az")
    )
    compliance = set(goal.constraints.compliance if goal.constraints else [])
    backup_ask = reading.get("retention.backups")
    backup_days = int(backup_ask.params["days"]) if backup_ask else None
    backups = (
        goal.environment is Environment.PROD
        or Compliance.BACKUPS in compliance
        or reading.has("backup")
        or backup_days is not None
        or text_prod
    )
    log_ask = reading.get("retention.logs")
    log_days = _log_days(int(log_ask.params["days"])) if log_ask else None
    message_ask = reading.get("retention.messages")
    object_ask = reading.get("retention.objects")
    domain_ask = reading.get("domain")
    schedule_ask = reading.get("schedule")
    nosql_ask = reading.get("store.nosql")
    nosql_size = nosql_ask.params.get("size_gb") if nosql_ask else None
    return Intent(
        kind=kind,
        extra_kinds=extra,
        stores=tuple(stores),
        rps=(workload.expected_rps if workload and workload.expected_rps else rps),
        multi_az=multi_az,
        backups=backups,
        backup_days=min(MAX_BACKUP_DAYS, max(MIN_BACKUP_DAYS, backup_days))
        if backup_days
        else None,
        log_days=log_days,
        message_retention_days=(int(message_ask.params["days"]) if message_ask else None),
        object_days=int(object_ask.params["days"]) if object_ask else None,
        domain=str(domain_ask.params["host"]) if domain_ask else None,
        schedule=str(schedule_ask.params["expression"]) if schedule_ask else None,
        wants_ec2=reading.has("compute.vm"),
        counts=tuple(
            (a.name, int(a.params["count"]), _names(a.params.get("names")))
            for a in reading.asks
            if isinstance(a.params.get("count"), int)
        ),
        serverless=serverless,
        nosql=nosql_ask is not None,
        nosql_size_gb=float(nosql_size) if isinstance(nosql_size, int | float) else None,
    )


def _names(value: object) -> tuple[str, ...]:
    return tuple(n for n in str(value or "").split(",") if n)


def _position(ask: object) -> tuple[int, int]:
    source = getattr(ask, "source")  # noqa: B009
    return (0 if source.field else 1, source.start or 0)


def _can_add(primary: WorkloadKind | None, extra: WorkloadKind, stores: set[DataStoreKind]) -> bool:
    """Workloads the rules can design beside the primary one."""
    if primary in (K.WEB_SERVICE, K.API):
        return extra in (K.BATCH, K.STATIC_SITE, K.QUEUE_WORKER)
    if primary is K.QUEUE_WORKER:
        return extra is K.BATCH
    return False


def _stores(goal: GoalStatement, reading: Reading) -> list[DataStore]:
    stores = list(goal.workload.data_stores) if goal.workload else []
    have = {s.kind for s in stores}
    asks = sorted(reading.named("store.") + reading.named("messaging.queue"), key=_position)
    for ask in asks:
        kind = _STORE_OF.get(ask.name)
        if (
            ask.name == "store.relational"
            and not have & {D.POSTGRES, D.MYSQL}
            and not (reading.has("store.postgres") or reading.has("store.mysql"))
        ):
            kind = D.POSTGRES
        if kind is None or kind in have:
            continue
        size = ask.params.get("size_gb")
        stores.append(DataStore(kind=kind, size_gb=min(65_536.0, float(size)) if size else None))
        have.add(kind)
    return stores


def _log_days(days: int) -> int:
    """CloudWatch's allowed retention at or above `days` (at least the compliance floor
    is applied by the rules where logging is required)."""
    allowed = [d for d in LOG_RETENTION_DAYS if d >= days]
    return allowed[0] if allowed else LOG_RETENTION_DAYS[-1]


__all__ = ["Intent", "intent_of"]
