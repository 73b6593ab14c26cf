"""Catalog planner vs LLM planner on the example goals, in one run:
`python -m bench.atlas_llm [--goals examples/goal-*.json] [--strategy draft|scratch|both]
[--base-url URL --model NAME | --local] [--json]`.

For each goal and planner: the outcome (PlanSpec or DesignBlocked, and why), seconds,
prompt and completion tokens, attempts (retries = attempts - 1) and the output method the
server accepted. `--local` starts the model `scripts/local-llm` installed (llama-server,
Qwen2.5-Coder-0.5B) on a free loopback port for the run. Both LLM strategies can be compared
side by side (`--strategy both`): designing from nothing, or revising the catalog planner's
draft (CREW_LLM_DRAFT). Slow on a CPU: minutes per goal on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from graph.planner import Planner
from nodes.atlas import design_goal
from nodes.planners.catalog import CatalogPlanner
from nodes.planners.llm import LlmPlanner
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec
from tools.llama_server import local_model, running_server
from tools.llm import LlmClient


async def _one(goal: GoalStatement, planner: Planner, label: str, name: str) -> dict[str, Any]:
    started = time.perf_counter()
    result = await design_goal(goal, planner=planner, goal_id=name, plan_id=f"{name}-{label}")
    seconds = time.perf_counter() - started
    p = result.provenance
    row: dict[str, Any] = {
        "goal": name,
        "planner": label,
        "outcome": "PlanSpec" if isinstance(result, PlanSpec) else "DesignBlocked",
        "seconds": round(seconds, 2),
        "prompt_tokens": p.prompt_tokens if p else 0,
        "completion_tokens": p.completion_tokens if p else 0,
        "attempts": p.attempts if p else getattr(result, "attempts", 1),
        "method": (p.output_method if p else None) or "-",
        "rejected": [r.model_dump() for r in p.rejected] if p else [],
    }
    if isinstance(result, PlanSpec):
        row["detail"] = ", ".join(sorted(c.type for c in result.components))
    else:
        row["detail"] = "; ".join(f"{r.constraint}: {r.why}" for r in result.reasons)[:200]
    return row


@contextmanager
def _endpoint(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    if not args.local:
        yield args.base_url, args.model
        return
    model = local_model()
    with running_server(model, threads=args.threads) as url:
        yield url, model.alias


async def _run(
    args: argparse.Namespace, goals: list[tuple[str, GoalStatement]]
) -> list[dict[str, Any]]:
    rows = [await _one(g, CatalogPlanner(), "catalog", n) for n, g in goals]
    strategies = ["draft", "scratch"] if args.strategy == "both" else [args.strategy]
    ctx = _endpoint(args) if (args.local or args.base_url) else nullcontext(None)
    with ctx as endpoint:
        if endpoint is None:
            return rows
        url, model = endpoint
        for strategy in strategies:
            client = LlmClient(
                model=model,
                base_url=url,
                api_key=None,
                timeout_s=args.timeout,
                max_retries=0,
                max_output_tokens=1024,
            )
            planner = LlmPlanner(
                client, draft=strategy == "draft", prompt_budget_chars=args.budget_chars
            )
            rows += [await _one(g, planner, f"llm/{strategy}", n) for n, g in goals]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--goals", nargs="+", default=["examples/goal-*.json"])
    parser.add_argument("--strategy", choices=["draft", "scratch", "both"], default="both")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--local", action="store_true", help="start the local model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--budget-chars", type=int, default=8_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = sorted(f for pattern in args.goals for f in glob.glob(pattern))
    goals = [(Path(f).stem, GoalStatement.model_validate_json(Path(f).read_text())) for f in files]
    rows = asyncio.run(_run(args, goals))
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title="Atlas: catalog vs LLM planner")
    for column in ("goal", "planner", "outcome", "seconds", "tokens in/out", "attempts", "method"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["goal"],
            r["planner"],
            r["outcome"],
            f"{r['seconds']:.2f}",
            f"{r['prompt_tokens']}/{r['completion_tokens']}",
            str(r["attempts"]),
            r["method"],
        )
    Console().print(table)


if __name__ == "__main__":
    main()
