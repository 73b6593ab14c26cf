"""Does a design do what the goal's structured fields ask: the workload kind, every data
store, the expected rps (with the capacity model of catalog/sizing.py)?

Only structured fields are enforced here; hints from the description are the planner's to use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from catalog.components import (
    Access,
    AlbParams,
    CloudFrontParams,
    Ec2AsgParams,
    EcsServiceParams,
    Grant,
    HttpApiParams,
    LambdaFunctionParams,
    Params,
)
from catalog.problems import Problem, ProblemCode
from catalog.sizing import asg_rps, service_rps
from catalog.structure import COMPUTE_TYPES
from schemas.goal import DataStoreKind, GoalStatement, Workload, WorkloadKind
from schemas.plan import Component

STORE_TYPES: dict[DataStoreKind, str] = {
    DataStoreKind.POSTGRES: "rds_postgres",
    DataStoreKind.MYSQL: "rds_mysql",
    DataStoreKind.REDIS: "elasticache_redis",
    DataStoreKind.OBJECT_STORAGE: "s3_bucket",
    DataStoreKind.QUEUE: "sqs_queue",
}
#: Functions scale with requests up to their reserved concurrency: capacity is not counted
#: in tasks, so the rps check applies to load-balanced services only.


def check_coverage(
    components: Sequence[Component], parsed: dict[str, Params], goal: GoalStatement
) -> list[Problem]:
    return list(_coverage(components, parsed, goal.workload or Workload()))


def _missing(what: str, fix: str) -> Problem:
    return Problem(ProblemCode.NOT_COVERED, "workload", what, fix)


def _coverage(
    components: Sequence[Component], parsed: dict[str, Params], workload: Workload
) -> Iterator[Problem]:
    types = {c.name: c.type for c in components}
    present = set(types.values())
    for store in sorted({s.kind for s in workload.data_stores}):
        if STORE_TYPES[store] not in present:
            yield _missing(
                f"the goal asks for {store.value} but the design has no {STORE_TYPES[store]}",
                f"add a {STORE_TYPES[store]} component",
            )
    compute = [n for n, t in types.items() if t in COMPUTE_TYPES]
    kind = workload.kind
    rps = workload.expected_rps or 0.0
    if kind in (WorkloadKind.WEB_SERVICE, WorkloadKind.API):
        targets = [p.target for p in parsed.values() if isinstance(p, AlbParams)]
        apis = [p.target for p in parsed.values() if isinstance(p, HttpApiParams)]
        if not targets and not apis:
            yield _missing(
                f"a {kind.value} needs a load balancer (or an HTTP API) in front of its compute",
                "add an alb whose target is an ecs_service or ec2_asg, or an http_api whose "
                "target is a lambda_function",
            )
        yield from _capacity(targets, parsed, rps, f"behind the load balancer of this {kind}")
    elif kind is WorkloadKind.STATIC_SITE:
        if not any(isinstance(p, CloudFrontParams) for p in parsed.values()):
            yield _missing(
                "a static site is served by CloudFront from a private bucket",
                "add a cloudfront_distribution whose origin is an s3_bucket",
            )
        if compute:
            yield Problem(
                ProblemCode.CONTRADICTION,
                "workload.kind",
                f"a static site needs no compute, but the design runs {', '.join(compute)}",
                "drop the compute components (or use workload.kind web_service)",
            )
    elif kind is WorkloadKind.QUEUE_WORKER:
        consumers = [n for n in compute if any(_consumes(g, types) for g in _grants(parsed.get(n)))]
        if not consumers:
            yield _missing(
                "a queue worker needs compute with a consume grant on an sqs_queue",
                "add an sqs_queue and an ecs_service granted 'consume' on it",
            )
        yield from _capacity(consumers, parsed, rps, "consuming the queue")
    elif kind is WorkloadKind.BATCH and not _scheduled(parsed, present):
        yield _missing(
            "a batch workload runs as a scheduled task (or a scheduled function)",
            "add an ecs_scheduled_task, or a lambda_function with a schedule",
        )
    elif kind is WorkloadKind.DATA_PIPELINE and not ("s3_bucket" in present and compute):
        yield _missing(
            "a data pipeline needs storage and compute that processes it",
            "add an s3_bucket and an ecs_scheduled_task or ecs_service granted access to it",
        )


def _scheduled(parsed: dict[str, Params], present: set[str]) -> bool:
    functions = [p for p in parsed.values() if isinstance(p, LambdaFunctionParams)]
    return "ecs_scheduled_task" in present or any(p.schedule for p in functions)


def _grants(params: Params | None) -> list[Grant]:
    grants: list[Grant] = getattr(params, "grants", [])
    return grants


def _consumes(grant: Grant, types: dict[str, str]) -> bool:
    return grant.access is Access.CONSUME and types.get(grant.component) == "sqs_queue"


def _capacity(
    names: list[str], parsed: dict[str, Params], rps: float, where: str
) -> Iterator[Problem]:
    if rps <= 0 or not names:
        return
    capacity = 0.0
    for name in names:
        p = parsed.get(name)
        if isinstance(p, EcsServiceParams):
            capacity += service_rps(p)
        elif isinstance(p, Ec2AsgParams):
            capacity += asg_rps(p)
    if capacity < rps:
        yield Problem(
            ProblemCode.CAPACITY,
            "workload.expected_rps",
            f"the compute {where} serves about {capacity:g} rps at its desired count, "
            f"below the expected {rps:g} rps",
            f"raise desired_count (or cpu) so that desired_count x cpu/1024 x 200 >= {rps:g}",
        )
