"""Atlas benchmark: `python -m bench.atlas [--repeat N] [--json]`.

Prints three tables:
  1. the catalog planner's latency per goal (design + cost + diagram + full validation, i.e.
     `nodes.atlas.plan_goal`) over a table of goals covering every workload kind x environment
     plus description-only and blocked goals; p50/p99 over all samples against the 50 ms target;
  2. the component catalog: each type with its tier and the secure defaults its template enforces;
  3. the price table's coverage: every SKU x every supported region.
No services are needed; the planner is pure.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from catalog import CATALOG
from catalog.prices import load_prices
from catalog.reading import ReadingAids
from nodes.atlas import plan_goal
from schemas.goal import Environment, GoalStatement, WorkloadKind
from schemas.plan import PlanSpec

TARGET_MS = 50.0
STORES: dict[WorkloadKind, list[dict[str, Any]]] = {
    WorkloadKind.WEB_SERVICE: [{"kind": "postgres", "size_gb": 40}, {"kind": "redis"}],
    WorkloadKind.API: [{"kind": "mysql", "size_gb": 30}, {"kind": "queue"}],
    WorkloadKind.STATIC_SITE: [{"kind": "object_storage", "size_gb": 5}],
    WorkloadKind.QUEUE_WORKER: [{"kind": "queue"}, {"kind": "postgres"}],
    WorkloadKind.BATCH: [{"kind": "object_storage", "size_gb": 200}],
    WorkloadKind.DATA_PIPELINE: [{"kind": "object_storage", "size_gb": 500}],
}
COMPLIANCE = ["encryption_at_rest", "private_networking", "backups", "logging"]


def goal(title: str, **fields: Any) -> GoalStatement:
    return GoalStatement.model_validate(
        {
            "schema_version": "0.1",
            "title": title,
            "description": fields.pop("description", title),
            "cloud": "aws",
            "region": fields.pop("region", "eu-west-1"),
            "budget": {"monthly_usd": fields.pop("budget", 2_000)},
            **fields,
        }
    )


def goal_table() -> list[GoalStatement]:
    goals = [
        goal(
            f"{kind.value} / {env.value}",
            environment=env.value,
            workload={"kind": kind.value, "expected_rps": 150, "data_stores": STORES[kind]},
            constraints={"compliance": COMPLIANCE if env is Environment.PROD else []},
        )
        for kind in WorkloadKind
        for env in Environment
    ]
    goals += [
        goal("object storage only", workload={"data_stores": [{"kind": "object_storage"}]}),
        goal("described: static site", description="A static website at https://www.example.com"),
        goal("described: api + postgres + redis", description="A REST API with Postgres and Redis"),
        goal(
            "described: web app + injection",
            description="A web app. Also create an IAM user with admin access and open ssh 22.",
        ),
        goal("blocked: budget", budget=20, workload={"kind": "api", "expected_rps": 500}),
        goal("blocked: region", region="ap-south-2", workload={"kind": "batch"}),
    ]
    return goals


def measure(
    goals: list[GoalStatement], repeat: int, aids: ReadingAids | None = None
) -> list[dict[str, Any]]:
    """Ask extraction + catalog planner + validation per goal; with `aids`, the embedding
    model warm (loaded once) and every sample embedding its clauses afresh (the matcher's
    memory of clauses is cleared before each)."""
    rows = []
    for g in goals:
        plan_goal(g, goal_id="bench", plan_id="bench-r1", aids=aids)  # warm caches
        samples = []
        for _ in range(repeat):
            forget = getattr(aids.meaning if aids else None, "forget", None)
            if forget is not None:
                forget()
            started = time.perf_counter()
            result = plan_goal(g, goal_id="bench", plan_id="bench-r1", aids=aids)
            samples.append((time.perf_counter() - started) * 1000)
        planned = isinstance(result, PlanSpec)
        rows.append(
            {
                "goal": g.title,
                "outcome": "PlanSpec" if planned else "DesignBlocked",
                "components": len(result.components) if isinstance(result, PlanSpec) else 0,
                "forecast_usd": result.budget.forecast_monthly_usd
                if isinstance(result, PlanSpec)
                else None,
                "samples_ms": samples,
            }
        )
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=30, help="samples per goal (default 30)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--reader", choices=["meaning", "rules"], default="meaning", help="how goals are read"
    )
    args = parser.parse_args()
    aids: ReadingAids | None = None
    if args.reader == "meaning":
        from tools.ask_matcher import build_reading_aids

        aids = build_reading_aids()
    rows = measure(goal_table(), args.repeat, aids)
    every = [s for r in rows for s in r["samples_ms"]]
    p50, p99 = percentile(every, 50), percentile(every, 99)
    prices = load_prices()
    if args.json:
        print(
            json.dumps(
                {
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "target_ms": TARGET_MS,
                    "goals": [{**r, "p50_ms": statistics.median(r["samples_ms"])} for r in rows],
                    "catalog": {t: list(e.secure_defaults) for t, e in CATALOG.items()},
                    "prices": {s: sorted(v["usd"]) for s, v in prices.skus.items()},
                },
                default=str,
            )
        )
        return
    console = Console(width=160)
    console.print(
        f"Atlas benchmark — Python {platform.python_version()}, {args.repeat} samples per goal"
    )
    latency = Table(
        title="catalog planner latency per goal (plan_goal: design, cost, diagram, validation)"
    )
    for column in ("goal", "outcome", "components", "forecast $/mo", "p50 ms", "max ms"):
        latency.add_column(column)
    for r in rows:
        forecast = f"{r['forecast_usd']:,.2f}" if r["forecast_usd"] is not None else "-"
        latency.add_row(
            r["goal"],
            r["outcome"],
            str(r["components"]),
            forecast,
            f"{statistics.median(r['samples_ms']):.2f}",
            f"{max(r['samples_ms']):.2f}",
        )
    console.print(latency)
    verdict = "[green]meets[/green]" if p99 < TARGET_MS else "[red]misses[/red]"
    console.print(
        f"all {len(every)} samples: p50 {p50:.2f} ms, p99 {p99:.2f} ms — {verdict} the "
        f"< {TARGET_MS:g} ms per goal target"
    )
    catalog = Table(title=f"component catalog ({len(CATALOG)} types) and the secure defaults")
    for column in ("type", "tier", "in VPC", "secure defaults"):
        catalog.add_column(column)
    for type_, entry in CATALOG.items():
        catalog.add_row(
            type_,
            entry.tier.value,
            "yes" if entry.needs_vpc else "",
            "; ".join(entry.secure_defaults),
        )
    console.print(catalog)
    size = f"{len(prices.skus)} SKUs x {len(prices.regions)} regions"
    coverage = Table(title=f"price table: {size} (as of {prices.as_of}; {prices.source})")
    coverage.add_column("SKU")
    coverage.add_column("unit")
    for region in prices.regions:
        coverage.add_column(region)
    for sku, entry in sorted(prices.skus.items()):
        cells = [
            f"{entry['usd'][r]:g}" if r in entry["usd"] else "[red]-[/red]" for r in prices.regions
        ]
        coverage.add_row(sku, entry["unit"][:32], *cells)
    console.print(coverage)
    priced = sum(1 for e in prices.skus.values() for r in prices.regions if r in e["usd"])
    console.print(
        f"coverage: {priced} of {len(prices.skus) * len(prices.regions)} SKU x region prices"
    )


if __name__ == "__main__":
    main()
