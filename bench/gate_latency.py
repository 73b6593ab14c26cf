"""Time to the gate against terraform's floor: `python -m bench.gate_latency [--quick] [--json]`.

A person who submits a goal waits for the approval request; the floor of that wait is what
terraform itself must do for the workspace (init, plan, show of the plan JSON). In one run of
this command, so that the machine's noise hits every figure alike (see bench/README.md,
"Gate latency benchmark"):

  1. for goals that plan about 15, 60 and 120 resources, each product tree under test
     (`before`: a checkout of `--baseline`, default a36a6ee, the commit issue 16 measured;
     `after`: this tree) drives the goal to the gate in a fresh process (`bench/_gate_probe.py`:
     `crew run`'s path, timed by node), twice: `cold` (the process's first run) and `warm`
     (a second run in the same process: a long-lived worker);
  2. the floor: terraform init + plan + show, run by the benchmark itself on a copy of the
     same workspace (its .tf files and lock file), with the product's CLI configuration;
  3. `crew run`'s start-up: from exec to the run's creation (`created_at`), and its wall time.

Trees and sizes are interleaved round by round, the order of the trees alternating.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._stack import REPO_ROOT, moto_server, postgres, scratch_dir

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROBE = Path(__file__).resolve().parent / "_gate_probe.py"
DEFAULT_BASELINE = "a36a6ee"
GATE_RATIO_TARGET = 1.2
STARTUP_TARGET_S = 2.0
NODES = ("design", "build", "validate", "request_approval")
TF_STEPS = ("version", "init", "validate", "plan", "show")

_BASE_GOAL: dict[str, Any] = {
    "schema_version": "0.1",
    "cloud": "aws",
    "region": "eu-west-1",
    "environment": "dev",
    "constraints": {"required_tags": {"team": "platform", "cost-center": "cc-1234"}},
    "requested_by": "bench@example.com",
}
#: Goals the catalog planner designs as about 15, 60 and 120 planned resources (the table
#: prints the count terraform planned).
GOALS: dict[str, dict[str, Any]] = {
    "~15": {
        "title": "Log archive bucket",
        "description": "A private, encrypted bucket where our services ship their logs.",
        "budget": {"monthly_usd": 20},
        "workload": {"data_stores": [{"kind": "object_storage", "size_gb": 100}]},
    },
    "~60": {
        "title": "Orders API",
        "description": "A web API with a Postgres database and a bucket for uploads.",
        "budget": {"monthly_usd": 900},
        "workload": {
            "kind": "api",
            "expected_rps": 100,
            "data_stores": [
                {"kind": "postgres", "size_gb": 20},
                {"kind": "object_storage", "size_gb": 50},
            ],
        },
    },
    "~120": {
        "title": "Orders platform",
        "description": "A web API with Postgres and Redis, a queue worker and a bucket.",
        "budget": {"monthly_usd": 3000},
        "environment": "prod",
        "workload": {
            "kind": "api",
            "expected_rps": 400,
            "availability": "multi_az",
            "data_stores": [
                {"kind": "postgres", "size_gb": 50},
                {"kind": "redis", "size_gb": 5},
                {"kind": "object_storage", "size_gb": 200},
                {"kind": "queue"},
            ],
        },
    },
}


# -- the trees under test ---------------------------------------------------------------------


@contextlib.contextmanager
def baseline_tree(ref: str, into: Path) -> Iterator[Path]:
    """`ref` of this repository, exported (git archive) into `into`."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", ref],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    yield into


@contextlib.contextmanager
def working_tree(into: Path) -> Iterator[Path]:
    """This tree as it is now (committed or not), copied: edits during the run don't leak in."""
    listed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    yield into


def child_env(tree: Path, database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env.update(
        PYTHONPATH=str(tree),
        CREW_DATABASE_URL=database_url,
        CREW_DATA_DIR=str(data_dir),
        CREW_LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def probe(tree: Path, env: dict[str, str], goals: list[Path]) -> list[dict[str, Any]]:
    """Drive `goals` to the gate in one fresh process of `tree`; one record per goal."""
    done = subprocess.run(
        [sys.executable, "-P", str(PROBE), *map(str, goals)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe failed in {tree}:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def crew_run(tree: Path, env: dict[str, str], goal: Path) -> dict[str, float]:
    """`crew run --json GOAL` from `tree`: start-up (exec -> run created) and wall time."""
    spawned = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cli.main import main; main()",
            "run",
            "--json",
            str(goal),
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"crew run failed in {tree}:\n{done.stderr[-3000:]}")
    detail = json.loads(done.stdout)
    created = datetime.fromisoformat(detail["created_at"]).timestamp()
    return {"startup": created - spawned, "wall": ended - spawned}


# -- what a run record says -------------------------------------------------------------------


_EXIT = re.compile(r"^exit (-?\d+) after ([0-9.]+)s$")


def terraform_steps(workspace: Path) -> dict[str, float]:
    """Seconds of each terraform command, from the workspace's logs/<step>.log."""
    found: dict[str, float] = {}
    logs = workspace / "logs"
    for step in TF_STEPS:
        path = logs / f"{step}.log"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if match := _EXIT.match(line.strip()):
                found[step] = found.get(step, 0.0) + float(match.group(2))
    return found


def summarize(record: dict[str, Any]) -> dict[str, float]:
    """The figures of one probe record: to the gate, per node, per terraform command."""
    detail = record["detail"]
    if detail["state"] != "WAIT_FOR_APPROVE":
        raise RuntimeError(f"run {detail['run_id']} stopped in {detail['state']}: {detail}")
    figures = {"gate": record["stopped"] - record["started"]}
    previous = record["started"]
    for _, node, at in record["marks"]:
        figures[f"node:{node}"] = figures.get(f"node:{node}", 0.0) + at - previous
        previous = at
    build = detail["artifacts"]["build"]
    for step, seconds in terraform_steps(Path(build["workspace"])).items():
        figures[f"tf:{step}"] = seconds
    own = [figures.get(f"tf:{step}") for step in ("init", "plan", "show")]
    if all(own):
        # the floor at the very moment of the run: its own init + plan + show
        figures["ratio-own"] = figures["gate"] / sum(x for x in own if x)
    figures["resources"] = float(build["plan"]["create"])
    for timing in detail.get("timings") or []:  # the product's own breakdown, when it has one
        figures[f"product:{timing['step']}"] = timing["seconds"]
        for part in timing.get("parts") or []:
            figures[f"product:{timing['step']}/{part['name']}"] = part["seconds"]
    return figures


# -- the floor --------------------------------------------------------------------------------


def floor(workspace: Path, into: Path, env: dict[str, str], cli_config: Path) -> dict[str, float]:
    """terraform init + plan + show on a copy of `workspace` (.tf files and lock file)."""
    into.mkdir(parents=True)
    for path in workspace.iterdir():
        if path.is_file() and (path.suffix == ".tf" or path.name == ".terraform.lock.hcl"):
            shutil.copy2(path, into / path.name)
    tf_env = {k: v for k, v in env.items() if k != "PYTHONPATH" and not k.startswith("CREW_")}
    tf_env.update(
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    figures: dict[str, float] = {}
    for step, args in (
        ("init", ["init", "-json", "-input=false", "-no-color"]),
        ("plan", ["plan", "-json", "-input=false", "-no-color", "-out=floor.tfplan"]),
        ("show", ["show", "-json", "-no-color", "floor.tfplan"]),
    ):
        started = time.perf_counter()
        done = subprocess.run(
            ["terraform", *args], cwd=into, env=tf_env, capture_output=True, timeout=1800
        )
        figures[f"floor:{step}"] = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"floor terraform {step} failed: {done.stderr[-2000:]!r}")
    figures["floor"] = sum(figures.values())
    shutil.rmtree(into, ignore_errors=True)
    return figures


# -- the table --------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "—"
    return f"{value:.2f}{unit}"


def table(samples: dict[str, list[dict[str, float]]], variants: list[str]) -> list[str]:
    """Markdown rows: one block per size, a column per tree and temperature."""

    def med(key: str, column: str) -> float | None:
        return median([s[key] for s in samples.get(column, []) if key in s])

    columns = [f"{v} {t}" for t in ("cold", "warm") for v in variants]
    lines = ["| figure | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for size in GOALS:
        cols = [f"{size}|{c}" for c in columns]
        floor_s = med("floor", f"{size}|floor")
        counts = {int(v) for c in cols for s in samples.get(c, []) if (v := s.get("resources"))}
        planned = "/".join(str(n) for n in sorted(counts)) or "?"
        lines.append(f"| **{size} resources ({planned} planned)** |" + " |" * len(cols))

        def row(label: str, key: str, cols: list[str] = cols) -> None:
            values = [med(key, c) for c in cols]
            if any(v is not None for v in values):
                lines.append(f"| {label} | " + " | ".join(fmt(v) for v in values) + " |")

        failed = [c.split("|")[1] for c in samples if c.startswith(f"{size}|") and "failed" in c]
        if failed:
            lines.append(
                f"| did not reach the gate | {', '.join(failed)} |" + " |" * (len(cols) - 1)
            )
        row("time to the gate", "gate")
        ratios = [med("ratio", c) for c in cols]
        lines.append(
            f"| ratio to its floor (target <= {GATE_RATIO_TARGET}x) | "
            + " | ".join(fmt(r, "x") for r in ratios)
            + " |"
        )
        row("ratio to the run's own init + plan + show", "ratio-own")
        for node in NODES:
            row(f"node {node}", f"node:{node}")
        for step in TF_STEPS:
            row(f"  terraform {step} (log)", f"tf:{step}")
        keys = sorted({k for c in cols for s in samples.get(c, []) for k in s})
        for key in (k for k in keys if k.startswith("product:")):
            row(f"  product timing {key.removeprefix('product:')}", key)
        floor_parts = " + ".join(
            fmt(med(f"floor:{s}", f"{size}|floor")) for s in ("init", "plan", "show")
        )
        lines.append(
            f"| floor: terraform init + plan + show | {fmt(floor_s)} ({floor_parts}) |"
            + " |" * (len(cols) - 1)
        )
    lines.append("")
    lines.append("| `crew run` (~15 resources) | " + " | ".join(variants) + " |")
    lines.append("|---" * (len(variants) + 1) + "|")
    for label, key in (
        (f"start-up: exec -> run created (target <= {STARTUP_TARGET_S:.0f} s)", "startup"),
        ("wall: exec -> exit at the gate", "wall"),
    ):
        values = [med(key, f"crew-run|{v}") for v in variants]
        lines.append(f"| {label} | " + " | ".join(fmt(v) for v in values) + " |")
    return lines


# -- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> dict[str, list[dict[str, float]]]:
    sizes = ["~15"] if args.quick else [f"~{n}" for n in args.sizes.split(",")]
    goal_files: dict[str, Path] = {}
    for size in {*sizes, "~15"}:  # `crew run`'s start-up is timed on the ~15 goal
        goal_files[size] = tmp / f"goal{size.strip('~')}.json"
        goal_files[size].write_text(json.dumps({**_BASE_GOAL, **GOALS[size]}), encoding="utf-8")
    samples: dict[str, list[dict[str, float]]] = defaultdict(list)
    with moto_server(), postgres(tmp) as pg, contextlib.ExitStack() as stack:
        trees = {"after": stack.enter_context(working_tree(tmp / "after-tree"))}
        if args.baseline:
            trees = {
                "before": stack.enter_context(baseline_tree(args.baseline, tmp / "before-tree")),
                **trees,
            }
        envs = {
            name: child_env(tree, pg.create_database(f"bench_gate_{name}"), tmp / f"data-{name}")
            for name, tree in trees.items()
        }
        rounds = 1 if args.quick else args.rounds
        for number in range(rounds):
            order = list(trees) if number % 2 == 0 else list(reversed(trees))
            for size in sizes:
                for name in order:
                    try:
                        cold, warm = probe(trees[name], envs[name], [goal_files[size]] * 2)
                        summarize(cold), summarize(warm)
                    except RuntimeError as exc:  # e.g. a tree whose build fails at this size
                        print(f"{size} {name}: {str(exc)[:300]}", file=sys.stderr)
                        samples[f"{size}|{name} failed"].append({"failed": 1.0})
                        continue
                    # The floor right after, on the same workspace: the load it sees is the
                    # load the runs saw, and each run's ratio is to its own floor.
                    workspace = Path(warm["detail"]["artifacts"]["build"]["workspace"])
                    bottom = floor(
                        workspace,
                        tmp / f"floor-{number}-{size.strip('~')}-{name}",
                        envs[name],
                        Path(envs[name]["CREW_DATA_DIR"]) / "terraform.rc",
                    )
                    samples[f"{size}|floor"].append(bottom)
                    for temperature, record in (("cold", cold), ("warm", warm)):
                        figures = summarize(record)
                        figures["ratio"] = figures["gate"] / bottom["floor"]
                        samples[f"{size}|{name} {temperature}"].append(figures)
                        shown = {k: round(v, 2) for k, v in figures.items() if ":" not in k}
                        print(f"{size} {name} {temperature}: {shown}", file=sys.stderr)
                    print(f"round {number + 1} {size} {name}: floor {bottom}", file=sys.stderr)
            for name in order:
                samples[f"crew-run|{name}"].append(
                    crew_run(trees[name], envs[name], goal_files["~15"])
                )
    return samples


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gate_latency", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every size (default 2)")
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help=f"git ref measured as `before` (default {DEFAULT_BASELINE}); '' for none",
    )
    parser.add_argument(
        "--sizes", default="15,60,120", help="goal sizes to drive (default 15,60,120)"
    )
    parser.add_argument("--quick", action="store_true", help="1 round, the ~15 goal only")
    parser.add_argument("--json", action="store_true", help="also write bench/results/*.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with scratch_dir() as tmp:
        samples = run(args, tmp)
    variants = (["before"] if args.baseline else []) + ["after"]
    load = os.getloadavg()
    print(
        f"# gate latency: {', '.join(variants)} (before = {args.baseline or 'none'}); "
        f"{args.rounds if not args.quick else 1} round(s); medians; "
        f"{time.monotonic() - started:.0f} s; load {load[0]:.1f} {load[1]:.1f}\n"
    )
    print("\n".join(table(samples, variants)))
    if args.json:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"gate-latency-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(samples, indent=2), encoding="utf-8")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
