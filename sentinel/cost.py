"""The cost forecast of a plan: per resource, the total, and the change against what is applied.

Prices come from the built-in table (`sentinel.pricing`) or, when configured, from infracost
(`from_infracost`); the report says which. The diff against the applied revision is read from
the plan itself: terraform's `before` is what is applied now (nothing for a first revision,
so everything is new), `after` is what will be.

Plan resources are matched to PlanSpec components by Forge's naming (a resource is named
after its component, `NAME` or `NAME_suffix`); the resource named exactly like the component
carries the component's usage parameters, every other usage-based resource the catalog's
defaults (which lean high, the safe side of a budget brake).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from catalog import parse_params
from catalog.components import (
    CloudFrontParams,
    CloudWatchLogGroupParams,
    DynamoDbTableParams,
    EcsScheduledTaskParams,
    LambdaFunctionParams,
    S3BucketParams,
    SqsQueueParams,
)
from catalog.cost import (
    AVERAGE_TO_PEAK,
    LOG_KB_PER_INVOCATION,
    REQUESTS_PER_CONNECTION,
    RESPONSE_KB,
)
from catalog.prices import PriceTable, load_prices
from schemas.plan import Component, PlanSpec
from schemas.validation import CostReport, ResourceCost
from sentinel.planfile import PlannedResource, planned_resources, provider_regions
from sentinel.pricing import PlanLookup, Pricer, Usage
from tools.infracost import InfracostBreakdown


def _default(model: Any, name: str) -> float:
    return float(model.model_fields[name].default)


#: The catalog's parameter defaults: what a resource with no component is assumed to use.
DEFAULT_USAGE = Usage(
    source="default",
    storage_gb=_default(S3BucketParams, "size_gb"),
    requests_million=_default(S3BucketParams, "monthly_requests_million"),
    transfer_gb=_default(CloudFrontParams, "monthly_transfer_gb"),
    ingest_gb=_default(CloudWatchLogGroupParams, "monthly_ingest_gb"),
    run_minutes=_default(EcsScheduledTaskParams, "run_minutes"),
    lcu=1.0,
    duration_ms=_default(LambdaFunctionParams, "average_duration_ms"),
    reads_million=_default(DynamoDbTableParams, "monthly_reads_million"),
    writes_million=_default(DynamoDbTableParams, "monthly_writes_million"),
)
assert _default(SqsQueueParams, "monthly_requests_million") == DEFAULT_USAGE.requests_million


def component_of(resource_name: str, components: Mapping[str, Component]) -> Component | None:
    """The component a resource belongs to by name (`web`, `web_logs` -> `web`)."""
    matches = [
        c for n, c in components.items() if resource_name == n or resource_name.startswith(n + "_")
    ]
    return max(matches, key=lambda c: len(c.name), default=None)


def usage_for(
    resource: PlannedResource, component: Component | None, plan: PlanSpec | None
) -> Usage:
    if component is None or resource.name != component.name:
        return _with_lcu(DEFAULT_USAGE, plan)
    params = parse_params(component).model_dump()
    invocations = params.get("monthly_invocations_million")
    ingest = params.get("monthly_ingest_gb", DEFAULT_USAGE.ingest_gb)
    if invocations is not None:  # a function's log group: its invocations' log lines
        ingest = invocations * LOG_KB_PER_INVOCATION
    usage = Usage(
        source=f"component {component.name}",
        storage_gb=float(params.get("size_gb", DEFAULT_USAGE.storage_gb)),
        requests_million=float(
            params.get(
                "monthly_requests_million",
                DEFAULT_USAGE.requests_million if invocations is None else invocations,
            )
        ),
        transfer_gb=float(params.get("monthly_transfer_gb", DEFAULT_USAGE.transfer_gb)),
        ingest_gb=float(ingest),
        run_minutes=float(params.get("run_minutes", DEFAULT_USAGE.run_minutes)),
        duration_ms=float(params.get("average_duration_ms", DEFAULT_USAGE.duration_ms)),
        reads_million=float(params.get("monthly_reads_million", DEFAULT_USAGE.reads_million)),
        writes_million=float(params.get("monthly_writes_million", DEFAULT_USAGE.writes_million)),
    )
    return _with_lcu(usage, plan)


def _with_lcu(usage: Usage, plan: PlanSpec | None) -> Usage:
    """Load-balancer capacity from the PlanSpec's expected peak rps (as Atlas forecasts it)."""
    rps = plan.budget.perf.expected_rps if plan else None
    if not rps:
        return usage
    average = rps * AVERAGE_TO_PEAK
    gb_per_hour = average * RESPONSE_KB * 3600 / 1_000_000
    lcu = max(1.0, gb_per_hour, average / REQUESTS_PER_CONNECTION / 25)
    return Usage(**{**usage.__dict__, "lcu": lcu})


def _flatten(expressions: Any, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    if isinstance(expressions, list):
        for item in expressions:
            yield from _flatten(item, prefix)
    elif isinstance(expressions, dict):
        if "references" in expressions and prefix:
            yield prefix.rstrip("."), list(expressions["references"])
            return
        for key, value in expressions.items():
            yield from _flatten(value, f"{prefix}{key}.")


def plan_lookup(plan_json: Mapping[str, Any]) -> PlanLookup:
    values: dict[str, Mapping[str, Any]] = {}
    for r in planned_resources(plan_json):
        chosen = r.after if r.remains else r.before
        values.setdefault(r.address.split("[", 1)[0], chosen or {})
    module = (plan_json.get("configuration") or {}).get("root_module") or {}
    references = {
        str(res["address"]): dict(_flatten(res.get("expressions") or {}))
        for res in module.get("resources") or []
    }
    return PlanLookup(values=values, references=references)


def forecast_cost(
    plan_json: Mapping[str, Any],
    *,
    region: str | None,
    plan: PlanSpec | None = None,
    table: PriceTable | None = None,
) -> CostReport:
    """Monthly forecast per resource with the built-in table, and the change it makes."""
    table = table or load_prices()
    regions, _ = provider_regions(plan_json)
    where = regions[0] if regions else region or (plan.region if plan else "")
    pricer = Pricer(table, where, plan_lookup(plan_json))
    components = {c.name: c for c in plan.components} if plan else {}
    lines: list[ResourceCost] = []
    assumptions: list[str] = []
    for r in planned_resources(plan_json):
        component = component_of(r.name, components)
        usage = usage_for(r, component, plan)
        now = pricer.price(r.type, r.address, r.after or {}, usage) if r.remains else None
        was = pricer.price(r.type, r.address, r.before or {}, usage) if r.existed else None
        if now is not None:
            assumptions += [a for a in now.assumptions if a not in assumptions]
        lines.append(
            ResourceCost(
                address=r.address,
                type=r.type,
                monthly_usd=(now.monthly_usd if now else 0.0),
                basis=now.basis if now else was.basis if was else "",
                action=r.action,
                previous_monthly_usd=_round(was.monthly_usd) if was else 0.0,
                component=component.name if component else None,
            )
        )
    return _report(lines, "builtin", assumptions, table, where)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _report(
    lines: list[ResourceCost], source: str, assumptions: list[str], table: PriceTable, region: str
) -> CostReport:
    lines = [line.model_copy(update={"monthly_usd": _round(line.monthly_usd)}) for line in lines]
    not_priced = [line.address for line in lines if line.monthly_usd is None]
    total = round(sum(line.monthly_usd or 0.0 for line in lines), 2)
    previous = round(sum(line.previous_monthly_usd or 0.0 for line in lines), 2)
    notes = list(assumptions)
    if source == "builtin":
        notes.append(
            f"list prices for {region} from the built-in table ({table.how_priced(region)}); "
            "free tiers not deducted; internet data transfer not included"
        )
    if not_priced:
        notes.append(f"{len(not_priced)} resource(s) not priced: the total leaves them out")
    return CostReport(
        monthly_usd=total,
        source=source,
        per_resource=lines,
        not_priced=not_priced,
        previous_monthly_usd=previous,
        delta_monthly_usd=round(total - previous, 2),
        assumptions=notes,
    )


def from_infracost(
    breakdown: InfracostBreakdown, plan_json: Mapping[str, Any], plan: PlanSpec | None
) -> CostReport:
    """infracost's prices for the plan's resources (not priced / free as infracost says)."""
    priced = {r.address: r for r in breakdown.resources}
    components = {c.name: c for c in plan.components} if plan else {}
    lines = []
    for r in planned_resources(plan_json):
        component = component_of(r.name, components)
        hit = priced.get(r.address)
        if not r.remains:
            monthly: float | None = 0.0
            basis = "removed by this plan"
        elif hit is not None:
            monthly, basis = hit.monthly_usd, "infracost"
            if monthly is None:
                basis = "infracost: usage-based, no usage given"
        elif r.type in breakdown.free_types:
            monthly, basis = 0.0, "infracost: no price (free)"
        else:
            monthly, basis = None, "infracost does not price this type"
        lines.append(
            ResourceCost(
                address=r.address,
                type=r.type,
                monthly_usd=monthly,
                basis=basis,
                action=r.action,
                previous_monthly_usd=None if r.existed else 0.0,
                component=component.name if component else None,
            )
        )
    report = _report(lines, "infracost", [], load_prices(), "")
    past = breakdown.past_total_monthly_usd
    return report.model_copy(
        update={
            "previous_monthly_usd": past,
            "delta_monthly_usd": None if past is None else round(report.monthly_usd - past, 2),
        }
    )
