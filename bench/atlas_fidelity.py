"""Atlas fidelity benchmark: `python -m bench.atlas_fidelity [--reader meaning|rules|both]
[--split all|dev|test] [--build N] [--tune] [--json]`.

Plans every goal of the corpus (bench/corpus/goals.jsonl: free-text goals as people write
them, several languages, typos, shapes the catalog covers and shapes it does not, each with
the asks a careful reader finds and the status the design should give them) and prints, per
planner, how the expected asks fared:

- met / refused / unsupported-and-named / assumed: the ask is in the PlanSpec's (or the
  DesignBlocked's) requirements with that status; `wrong status` counts those whose status
  differs from the expected one;
- silently dropped: an expected ask that appears nowhere in the trace (target 0);
- extra: asks read that the corpus does not expect (possible false readings);
- PlanSpec-to-code: of the goals that give a PlanSpec, a sample of `--build N` (default 6) is
  rendered by Forge, planned with terraform against moto and validated by Sentinel (checkov);
  the rate is over that sample (the rest are not built: it takes ~30 s a plan here);
- latency: ask extraction + catalog planner + validation per goal (`plan_goal`), with the
  embedding model warm; p50 / p99 wall time (`python -m bench.atlas_latency` splits it by
  stage and gives the CPU time too, which a loaded machine does not inflate).

`--tune` sweeps the embedding matcher's threshold on the dev split and prints F1 per value
(the shipped THRESHOLD in tools/ask_matcher.py was chosen this way). The LLM planner needs
an endpoint (CREW_LLM_MODEL); without one its row says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from catalog.reading import ReadingAids, read_goal
from fixtures.corpus import Case, load_corpus
from nodes.atlas import plan_goal
from schemas.plan import DesignBlocked, PlanSpec, Requirement

#: Asks every goal has from its required fields: not scored (they cannot be dropped).
ALWAYS = {"region", "budget"}
#: Asks that restate what every catalog design does: not counted as extra readings.
_UNSCORED = ALWAYS | {"compute.container", "edge.load_balancer", "backup", "privacy.private",
                      "encryption.at_rest"}  # fmt: skip
_DERIVED = ("default", "availability", "throughput", "environment")


@dataclass
class Score:
    name: str
    counts: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    plans: list[tuple[Case, PlanSpec]] = field(default_factory=list)
    blocked: int = 0
    built: tuple[int, int] | None = None


def score(name: str, cases: list[Case], aids: ReadingAids) -> Score:
    s = Score(name)
    for case in cases:
        started = time.perf_counter()
        result = plan_goal(case.goal, goal_id=case.id, plan_id=f"{case.id}-r1", aids=aids)
        s.latency_ms.append((time.perf_counter() - started) * 1000)
        requirements: list[Requirement] = list(result.requirements)
        if isinstance(result, PlanSpec):
            s.plans.append((case, result))
        else:
            assert isinstance(result, DesignBlocked)
            s.blocked += 1
        found = {r.ask.name: r.status.value for r in requirements}
        for ask, expected in case.expect.items():
            got = found.get(ask)
            if got is None:
                s.dropped.append(f"{case.id}:{ask}")
                continue
            s.counts[got] += 1
            if got != expected:
                s.wrong.append(f"{case.id}:{ask} {got} (expected {expected})")
        for ask in found:
            if ask not in case.expect and ask not in _UNSCORED and not ask.startswith(_DERIVED):
                s.extra.append(f"{case.id}:{ask}")
    return s


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _build(plans: list[tuple[Case, PlanSpec]]) -> tuple[int, int, list[str]]:
    """Forge renders and plans each against moto; Sentinel validates (checkov in process)."""
    import tempfile

    from bench._stack import moto_server
    from crew.container import build_sentinel, build_terraform_runner
    from crew.settings import Settings
    from nodes.forge import build_workspace
    from nodes.sentinel import PLAN_JSON, read_plan_json
    from sentinel.engine import Subject
    from tools.backend import StateBackend

    ok = 0
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, moto_server():
        settings = Settings(data_dir=Path(tmp) / "data", checkov_mode="in_process",
                            extra_scanners=False)  # fmt: skip
        runner = build_terraform_runner(settings, dict(os.environ))
        sentinel = build_sentinel(settings, {})
        backend = StateBackend.local(Path(tmp) / "state")
        for case, plan in plans:
            workspace = Path(tmp) / case.id / "r1"
            status = await build_workspace(plan, workspace, runner, backend=backend)
            if not status.ok:
                why = "; ".join(str(e) for e in status.errors)[:300]
                failures.append(f"{case.id}: build failed: {why}")
                continue
            plan_path = workspace / PLAN_JSON
            subject = Subject(
                plan_id=plan.plan_id,
                plan_json=read_plan_json(plan_path),
                plan_json_path=plan_path,
                hcl_dir=workspace,
                budget_monthly_usd=case.goal.budget.monthly_usd,
                region=plan.region,
                required_tags=dict(plan.tags),
                plan=plan,
                forge_render=True,
            )
            report = await sentinel.validate(subject, datetime.now(UTC))
            if report.verdict.value == "PASS":
                ok += 1
            else:
                failures.append(f"{case.id}: validation {report.verdict.value}")
    return ok, len(plans), failures


def tune(cases: list[Case]) -> None:
    from tools.ask_matcher import EmbeddingMatcher, WordPieceLexicon
    from tools.embeddings import MiniLmEmbedder

    embedder, lexicon = MiniLmEmbedder(), WordPieceLexicon()
    print("threshold  precision  recall  F1   (dev split, asks from the description)")
    for threshold in (0.5, 0.55, 0.58, 0.6, 0.62, 0.65, 0.68, 0.72, 0.8):
        matcher = EmbeddingMatcher(embedder, threshold=threshold)
        aids = ReadingAids(meaning=matcher, known_word=lexicon)
        tp = fp = fn = 0
        for case in cases:
            read = {a.name for a in read_goal(case.goal, aids).asks} - ALWAYS
            expected = set(case.expect) - ALWAYS
            tp += len(read & expected)
            fn += len(expected - read)
            fp += len({n for n in read - expected if not n.startswith(("default",))})
        p = tp / max(1, tp + fp)
        r = tp / max(1, tp + fn)
        print(f"  {threshold:.2f}      {p:.3f}     {r:.3f}  {2 * p * r / max(1e-9, p + r):.3f}")


def render(scores: list[Score], cases: list[Case]) -> str:
    expected = sum(len(c.expect) for c in cases)
    lines = [
        f"Atlas fidelity: {len(cases)} goals, {expected} expected asks "
        f"({', '.join(f'{k} {v}' for k, v in sorted(Counter(c.lang for c in cases).items()))})",
        "",
        f"{'planner':<26}{'met':>6}{'refused':>9}{'unsupp.':>9}{'assumed':>9}{'dropped':>9}"
        f"{'wrong':>7}{'extra':>7}{'plans':>7}{'blocked':>9}{'to-code':>11}"
        f"{'p50 ms':>8}{'p99 ms':>8}",
    ]
    for s in scores:
        built = f"{s.built[0]}/{s.built[1]}" if s.built else "not run"
        lines.append(
            f"{s.name:<26}{s.counts['met']:>6}{s.counts['refused']:>9}"
            f"{s.counts['unsupported']:>9}{s.counts['assumed']:>9}{len(s.dropped):>9}"
            f"{len(s.wrong):>7}{len(s.extra):>7}{len(s.plans):>7}{s.blocked:>9}{built:>11}"
            f"{statistics.median(s.latency_ms):>8.1f}{_pct(s.latency_ms, 0.99):>8.1f}"
        )
    lines.append(f"{'llm':<26}not run: needs an endpoint (CREW_LLM_MODEL); its proposals are "
                 "traced by the same code (catalog/trace.py)")  # fmt: skip
    for s in scores:
        if s.dropped or s.wrong:
            lines += ["", f"{s.name}: dropped {len(s.dropped)}, wrong status {len(s.wrong)}"]
            lines += [f"  dropped  {d}" for d in s.dropped]
            lines += [f"  wrong    {w}" for w in s.wrong]
        if s.extra:
            lines += [f"  extra    {', '.join(s.extra)}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.atlas_fidelity")
    parser.add_argument("--reader", choices=["meaning", "rules", "both"], default="both")
    parser.add_argument("--split", choices=["all", "dev", "test"], default="all")
    parser.add_argument("--build", type=int, default=6, help="PlanSpecs to build (0: none)")
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.tune:
        tune(load_corpus("dev"))
        return 0
    cases = load_corpus(args.split)
    scores = []
    if args.reader in ("rules", "both"):
        scores.append(score("catalog (rules)", cases, ReadingAids()))
    if args.reader in ("meaning", "both"):
        from tools.ask_matcher import build_reading_aids

        aids = build_reading_aids()
        read_goal(cases[0].goal, aids)  # load the model and embed the examples once
        scores.append(score("catalog (rules + meaning)", cases, aids))
    if args.build:
        best = scores[-1]
        sample = random.Random(17).sample(best.plans, min(args.build, len(best.plans)))
        ok, n, failures = asyncio.run(_build(sample))
        best.built = (ok, n)
        for f in failures:
            print("build:", f, file=sys.stderr)
    print(render(scores, cases))
    if args.json:
        out = Path(__file__).resolve().parent / "results" / "atlas-fidelity.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps([{"planner": s.name, **s.counts, "dropped": s.dropped,
                                    "wrong": s.wrong, "extra": s.extra} for s in scores],
                                  indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
