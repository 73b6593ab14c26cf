"""Clashes inside a goal itself, found before any planner is asked.

No design can fix these: a region outside `allowed_regions` or the price table, prod with
single-AZ availability, a static site with a database, targets beyond what the catalog can
size, or nothing to build at all (tags AWS refuses are refused earlier, by the contract:
schemas/goal.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from catalog.prices import load_prices
from catalog.problems import Problem, ProblemCode
from catalog.signals import read_signals
from catalog.sizing import CACHE_NODE_GIB, MAX_RDS_STORAGE_GB, MAX_SERVICE_RPS, MAX_STATIC_RPS
from schemas.goal import (
    Availability,
    DataStoreKind,
    Environment,
    GoalStatement,
    Workload,
    WorkloadKind,
)

C = ProblemCode


def needs_multi_az(goal: GoalStatement) -> bool:
    workload = goal.workload or Workload()
    return goal.environment is Environment.PROD or workload.availability is Availability.MULTI_AZ


def priced_region_for(goal: GoalStatement) -> str | None:
    """The region to suggest: an allowed, priced one near the goal's; None if there is none."""
    table = load_prices()
    allowed = goal.constraints.allowed_regions if goal.constraints else []
    candidates = [r for r in allowed if table.supports(r)] if allowed else list(table.regions)
    if not candidates:
        return None
    prefix = goal.region.split("-", 1)[0]
    return next((r for r in candidates if r.startswith(prefix)), candidates[0])


def check_goal(goal: GoalStatement) -> list[Problem]:
    """Clashes within the goal: no design can satisfy these, so no planner is asked."""
    return list(_goal_problems(goal))


def _goal_problems(goal: GoalStatement) -> Iterator[Problem]:
    constraints = goal.constraints
    workload = goal.workload or Workload()
    table = load_prices()
    allowed = constraints.allowed_regions if constraints else []
    suggestion = priced_region_for(goal)
    if allowed and goal.region not in allowed:
        yield Problem(
            C.REGION_NOT_ALLOWED,
            "constraints.allowed_regions",
            f"region {goal.region} is not in the allowed regions {', '.join(allowed)}",
            f"use region {suggestion or allowed[0]}",
        )
    if not table.supports(goal.region):
        fix = (
            f"use region {suggestion}"
            if suggestion
            else f"allow one of the priced regions ({', '.join(table.regions)})"
        )
        yield Problem(
            C.REGION_UNPRICED,
            "region",
            f"{goal.region} is not in the price table, so no forecast can be made "
            f"(priced: {', '.join(table.regions)})",
            fix,
        )
    if goal.environment is Environment.PROD and workload.availability is Availability.SINGLE_AZ:
        yield Problem(
            C.CONTRADICTION,
            "workload.availability",
            "environment prod implies multi-AZ, but availability asks for single_az",
            "set workload.availability to multi_az (or leave it out), or use environment staging",
        )
    kinds = {s.kind for s in workload.data_stores}
    unreachable = sorted(k.value for k in kinds - {DataStoreKind.OBJECT_STORAGE})
    if workload.kind is WorkloadKind.STATIC_SITE and unreachable:
        yield Problem(
            C.CONTRADICTION,
            "workload.data_stores",
            f"a static site has no compute that could use {', '.join(unreachable)}",
            "use workload.kind web_service for a site with a backend, or drop those stores",
        )
    rps = workload.expected_rps or 0
    limit = MAX_STATIC_RPS if workload.kind is WorkloadKind.STATIC_SITE else MAX_SERVICE_RPS
    if rps > limit:
        yield Problem(
            C.OUT_OF_RANGE,
            "workload.expected_rps",
            f"{rps:g} rps is beyond what one catalog design serves ({limit:g} rps)",
            f"lower workload.expected_rps to <= {limit:g}, or split the workload",
        )
    yield from _store_sizes(workload)
    signals = read_signals(goal.description)
    if workload.kind is None and not kinds and signals.kind is None and not signals.stores:
        yield Problem(
            C.NOTHING_TO_BUILD,
            "workload",
            "the goal names no workload kind and no data store, and the description gives "
            "no plain hint of one",
            "set workload.kind (web_service, api, static_site, queue_worker, batch, "
            "data_pipeline) or list workload.data_stores",
        )


def _store_sizes(workload: Workload) -> Iterator[Problem]:
    biggest_cache = max(CACHE_NODE_GIB.values())
    for i, store in enumerate(workload.data_stores):
        size = store.size_gb or 0
        db = store.kind in (DataStoreKind.POSTGRES, DataStoreKind.MYSQL)
        if db and size > MAX_RDS_STORAGE_GB:
            limit = MAX_RDS_STORAGE_GB
        elif store.kind is DataStoreKind.REDIS and size > biggest_cache:
            limit = int(biggest_cache)
        else:
            continue
        yield Problem(
            C.OUT_OF_RANGE,
            f"workload.data_stores[{i}].size_gb",
            f"{size:g} GB of {store.kind.value} is beyond the catalog's largest ({limit} GB)",
            f"lower size_gb to <= {limit}, or split the data",
        )
