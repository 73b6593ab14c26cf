"""Catalog planner vs LLM planner on the goal corpus, in one run:
`python -m bench.atlas_llm [--local 0.5b,1.5b | --base-url URL --model NAME]
[--subset N | --ids ID,...] [--split all|dev|test] [--strategy draft|scratch]
[--slots N] [--threads N] [--rows] [--json FILE]`.

Every goal of bench/corpus/goals.jsonl (or a subset: `--subset N` takes N goals spread over
the corpus, the same N every run) goes through `design_goal`, the design node's own code,
once with the catalog planner and once per LLM; each result is traced against the asks the
corpus expects, as in bench/atlas_fidelity.py. One table, one row per planner:

- fidelity: expected asks met / refused / unsupported (named) / assumed, `dropped` (an
  expected ask the design's trace does not hold: the target is 0), `wrong` (a status other
  than the expected one);
- plans / blocked: PlanSpecs and DesignBlockeds;
- valid 1st: of the goals the LLM was asked about, the share whose first answer passed
  validation (catalog: every design is its first); retries: attempts beyond the first, in all;
- latency p50 / p95 (seconds per goal, the LLM's queueing included when `--slots` > 1) and
  tokens in / out per goal (mean).

`--local` starts the models `scripts/local-llm` installed (`--model 1.5b` for the second),
one after the other, each on a free loopback port with `--slots` parallel slots; the goals
run `--slots` at a time. The same retries and provenance as in the product: a rejected
answer, with its problems, is in `--rows` and in the JSON. Slow on a CPU: a 0.5B model on
two shared cores takes about a minute a goal, the 1.5B two to three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.atlas_fidelity import _DERIVED, _UNSCORED
from catalog.reading import ReadingAids
from fixtures.corpus import Case, load_corpus
from graph.planner import Planner
from nodes.atlas import design_goal
from nodes.planners.catalog import CatalogPlanner
from nodes.planners.llm import LlmPlanner
from schemas.plan import PlanSpec
from tools.llama_server import local_model, running_server
from tools.llm import LlmClient

SIZES = {"0.5b": "qwen2.5-coder-0.5b", "1.5b": "qwen2.5-coder-1.5b"}


@dataclass
class Row:
    """One goal designed by one planner."""

    goal: str
    planner: str
    outcome: str
    seconds: float
    attempts: int
    asked: bool
    """Whether a model was asked (a goal that contradicts itself is blocked before)."""
    prompt_tokens: int
    completion_tokens: int
    statuses: dict[str, str]
    dropped: list[str]
    wrong: list[str]
    extra: list[str]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    method: str | None = None
    artifact: dict[str, Any] = field(default_factory=dict, repr=False)
    """The PlanSpec or DesignBlocked, canonical JSON (`--save`)."""


@dataclass
class Summary:
    planner: str
    rows: list[Row]

    def counts(self) -> Counter[str]:
        return Counter(s for r in self.rows for s in r.statuses.values())

    def line(self) -> dict[str, Any]:
        asked = [r for r in self.rows if r.asked]
        seconds = [r.seconds for r in self.rows]
        counts = self.counts()
        return {
            "planner": self.planner,
            "goals": len(self.rows),
            **{k: counts[k] for k in ("met", "refused", "unsupported", "assumed")},
            "dropped": sum(len(r.dropped) for r in self.rows),
            "wrong": sum(len(r.wrong) for r in self.rows),
            "extra": sum(len(r.extra) for r in self.rows),
            "plans": sum(r.outcome == "PlanSpec" for r in self.rows),
            "blocked": sum(r.outcome == "DesignBlocked" for r in self.rows),
            "asked": len(asked),
            "valid_first_try": sum(not r.rejected for r in asked),
            "retries": sum(r.attempts - 1 for r in asked),
            "p50_s": _pct(seconds, 0.5),
            "p95_s": _pct(seconds, 0.95),
            "tokens_in": round(statistics.mean(r.prompt_tokens for r in self.rows)),
            "tokens_out": round(statistics.mean(r.completion_tokens for r in self.rows)),
        }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def subset(cases: list[Case], n: int | None, ids: list[str] | None) -> list[Case]:
    """`ids`, or `n` cases spread evenly over the corpus (deterministic), or all."""
    if ids:
        by_id = {c.id: c for c in cases}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise SystemExit(f"atlas_llm: no goal {', '.join(unknown)} in the corpus")
        return [by_id[i] for i in ids]
    if n is None or n >= len(cases):
        return cases
    step = len(cases) / n
    return [cases[int(i * step)] for i in range(n)]


async def design_one(case: Case, planner: Planner, label: str, aids: ReadingAids) -> Row:
    started = time.perf_counter()
    result = await design_goal(
        case.goal, planner=planner, goal_id=case.id, plan_id=f"{case.id}-r1", aids=aids
    )
    seconds = time.perf_counter() - started
    found = {r.ask.name: r.status.value for r in result.requirements}
    statuses = {ask: found[ask] for ask in case.expect if ask in found}
    p = result.provenance
    asked = p is not None and p.planner != "catalog"
    return Row(
        goal=case.id,
        planner=label,
        outcome="PlanSpec" if isinstance(result, PlanSpec) else "DesignBlocked",
        seconds=round(seconds, 2),
        attempts=p.attempts if p else getattr(result, "attempts", 1),
        asked=asked,
        prompt_tokens=p.prompt_tokens if p else 0,
        completion_tokens=p.completion_tokens if p else 0,
        statuses=statuses,
        dropped=[a for a in case.expect if a not in found],
        wrong=[
            f"{a}: {statuses[a]} (expected {s})"
            for a, s in case.expect.items()
            if a in statuses and statuses[a] != s
        ],
        extra=[
            a
            for a in found
            if a not in case.expect and a not in _UNSCORED and not a.startswith(_DERIVED)
        ],
        rejected=[r.model_dump() for r in p.rejected] if p else [],
        method=p.output_method if p else None,
        artifact=result.model_dump(mode="json"),
    )


async def run_planner(
    cases: list[Case], planner: Planner, label: str, aids: ReadingAids, slots: int
) -> Summary:
    gate = asyncio.Semaphore(slots)

    async def one(case: Case) -> Row:
        async with gate:
            row = await design_one(case, planner, label, aids)
        print(f"  {label} {case.id}: {row.outcome} in {row.seconds:.1f} s, {row.attempts} "
              f"attempt(s), tokens {row.prompt_tokens}/{row.completion_tokens}, asks "
              f"{row.statuses} dropped {row.dropped}, rejected {row.rejected}",
              file=sys.stderr, flush=True)  # fmt: skip
        return row

    return Summary(label, list(await asyncio.gather(*(one(c) for c in cases))))


def llm_planner(url: str, model: str, args: argparse.Namespace) -> LlmPlanner:
    """The settings `scripts/local-llm` prints for a small model with a 4k context."""
    client = LlmClient(
        model=model,
        base_url=url,
        api_key=None,
        timeout_s=args.timeout,
        max_retries=0,
        max_output_tokens=args.max_tokens,
    )
    return LlmPlanner(client, draft=args.strategy == "draft", prompt_budget_chars=args.budget)


@contextmanager
def endpoints(args: argparse.Namespace) -> Iterator[Iterator[tuple[str, str]]]:
    """(base URL, model) per LLM to measure: the local models one at a time, or `--base-url`."""

    def local() -> Iterator[tuple[str, str]]:
        for size in args.local:
            model = local_model(alias=SIZES[size])
            with running_server(model, threads=args.threads, slots=args.slots) as url:
                yield url, model.alias

    if args.local:
        yield local()
    elif args.base_url:
        yield iter([(args.base_url, args.model)])
    else:
        yield iter([])


async def run(args: argparse.Namespace, cases: list[Case]) -> list[Summary]:
    if args.reader == "meaning":
        from tools.ask_matcher import build_reading_aids

        aids = build_reading_aids()
    else:
        aids = ReadingAids()
    summaries = [await run_planner(cases, CatalogPlanner(aids), "catalog", aids, 1)]
    with endpoints(args) as llms:
        for url, model in llms:
            planner = llm_planner(url, model, args)
            label = f"llm {model} ({args.strategy})"
            summaries.append(await run_planner(cases, planner, label, aids, args.slots))
    return summaries


def render(summaries: list[Summary], cases: list[Case]) -> str:
    expected = sum(len(c.expect) for c in cases)
    head = (f"{'planner':<36}{'met':>5}{'refus.':>7}{'unsup.':>7}{'assum.':>7}{'dropped':>8}"
            f"{'wrong':>6}{'plans':>6}{'block.':>7}{'valid 1st':>10}{'retries':>8}"
            f"{'p50 s':>8}{'p95 s':>8}{'tok in/out':>12}")  # fmt: skip
    lines = [f"Atlas, catalog vs LLM planner: {len(cases)} goals of the corpus, "
             f"{expected} expected asks", "", head]  # fmt: skip
    for s in summaries:
        d = s.line()
        first = f"{d['valid_first_try']}/{d['asked']}" if d["asked"] else "-"
        lines.append(
            f"{d['planner']:<36}{d['met']:>5}{d['refused']:>7}{d['unsupported']:>7}"
            f"{d['assumed']:>7}{d['dropped']:>8}{d['wrong']:>6}{d['plans']:>6}{d['blocked']:>7}"
            f"{first:>10}{d['retries']:>8}{d['p50_s']:>8.2f}{d['p95_s']:>8.2f}"
            f"{d['tokens_in']:>6}/{d['tokens_out']:<5}"
        )
    return "\n".join(lines)


def render_rows(summaries: list[Summary]) -> str:
    lines = []
    for s in summaries:
        for r in s.rows:
            lines.append(
                f"{r.planner:<36}{r.goal:<28}{r.outcome:<14}{r.seconds:>7.1f} s  "
                f"attempts {r.attempts}  tokens {r.prompt_tokens}/{r.completion_tokens}"
                + (f"  dropped {', '.join(r.dropped)}" if r.dropped else "")
            )
            for rej in r.rejected:
                lines.append(f"    rejected attempt {rej['attempt']}: {'; '.join(rej['problems'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.atlas_llm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--local", type=lambda v: v.split(","), default=[],
                        help="local models to start, comma-separated: 0.5b, 1.5b")  # fmt: skip
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible endpoint instead")
    parser.add_argument("--model", default=None, help="the model name at --base-url")
    parser.add_argument("--subset", type=int, default=None, help="N goals spread over the corpus")
    parser.add_argument("--ids", type=lambda v: v.split(","), default=None, help="goal ids")
    parser.add_argument("--split", choices=["all", "dev", "test"], default="all")
    parser.add_argument("--strategy", choices=["draft", "scratch"], default="draft")
    parser.add_argument("--reader", choices=["rules", "meaning"], default="rules",
                        help="how asks are read (meaning loads the embedding model)")  # fmt: skip
    parser.add_argument("--slots", type=int, default=2, help="goals in flight (server slots)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--budget", type=int, default=8_000, help="prompt budget (characters)")
    parser.add_argument("--max-tokens", type=int, default=1024, help="output cap per answer")
    parser.add_argument("--rows", action="store_true", help="also one line per goal")
    parser.add_argument("--json", type=Path, default=None, help="write every row to FILE")
    parser.add_argument("--save", type=Path, default=None,
                        help="write each LLM design (PlanSpec or DesignBlocked, with its "
                        "provenance) to DIR/MODEL/GOAL.json")  # fmt: skip
    args = parser.parse_args(argv)
    # `kill` stops the run like Ctrl-C: the local server's process group goes with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if any(size not in SIZES for size in args.local):
        parser.error(f"--local takes {', '.join(SIZES)}")
    if args.base_url and not args.model:
        parser.error("--base-url needs --model")
    cases = subset(load_corpus(args.split), args.subset, args.ids)
    summaries = asyncio.run(run(args, cases))
    print(render(summaries, cases))
    if args.rows:
        print()
        print(render_rows(summaries))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"summary": s.line(), "rows": [{k: v for k, v in r.__dict__.items()
                                               if k != "artifact"} for r in s.rows]}
                for s in summaries]  # fmt: skip
        args.json.write_text(json.dumps(rows, indent=1))
    if args.save:
        for r in (r for s in summaries[1:] for r in s.rows):
            out = args.save / r.planner.split()[1] / f"{r.goal}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(r.artifact, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
