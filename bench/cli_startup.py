"""How fast the `crew` command starts: `python -m bench.cli_startup [--rounds N] [--json]`.

A person typing `crew --help` or `crew run GOAL` waits first for Python to import the CLI. The
table compares, for two product trees (`before`: `--baseline`, default the last commit before
the CLI imported its heavy dependencies lazily; `after`: this working tree, copied at the
start), each command's wall time from exec to exit, as a median of `--rounds` fresh processes,
and its ratio to a bare `python -c pass` measured in the same rounds (so the machine's load
hits every figure alike). No database, no terraform: the rows are

- `python -c pass`: the interpreter alone, the floor;
- `crew --version`, `crew --help`, `crew run --help`: argument parsing and help only;
- `crew run BAD_GOAL`: `crew run` up to its first action, reading and validating the goal
  (a goal that does not validate, so it exits 2 before opening anything);
- `import crew.container`: what `crew run` imports next, before the run begins (LangGraph,
  the scanners' wiring, psycopg): the part of the start-up that stays with the command;
- `modules`: how many modules `crew --help` imports.

Target (issue 16): `crew --help` <= 2 s on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.gate_latency import RESULTS_DIR, baseline_tree, working_tree

#: A commit whose CLI imported everything at start-up (main before issue 16's lazy imports).
DEFAULT_BASELINE = "dee8505"
HELP_TARGET_S = 2.0
_CLI = "from cli.main import main; main()"
_BAD_GOAL = {"schema_version": "0.1", "title": "", "cloud": "aws"}

#: label -> python arguments (after `python -P`); `{bad_goal}` is filled in.
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "crew --version": ["-c", _CLI, "--version"],
    "crew --help": ["-c", _CLI, "--help"],
    "crew run --help": ["-c", _CLI, "run", "--help"],
    "crew run BAD_GOAL (first action)": ["-c", _CLI, "run", "{bad_goal}"],
    "import crew.container": ["-c", "import crew.container"],
}
_MODULES = "import sys; from cli.main import app; print(len(sys.modules))"


def _env(tree: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env.update(PYTHONPATH=str(tree), CREW_DATA_DIR=str(data_dir), PYTHONDONTWRITEBYTECODE="1")
    return env


def _time(tree: Path, env: dict[str, str], args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-P", *args],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    return time.perf_counter() - started


def _warm(tree: Path, env: dict[str, str]) -> int:
    """Import the CLI once (the OS caches the files; .pyc writing is off) and count modules."""
    done = subprocess.run(
        [sys.executable, "-P", "-c", _MODULES],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return int(done.stdout.strip())


def measure(trees: dict[str, Path], rounds: int, bad_goal: Path, data_dir: Path) -> dict[str, Any]:
    envs = {name: _env(tree, data_dir) for name, tree in trees.items()}
    modules = {name: _warm(tree, envs[name]) for name, tree in trees.items()}
    samples: dict[str, dict[str, list[float]]] = {n: {c: [] for c in COMMANDS} for n in trees}
    names = list(trees)
    for round_no in range(rounds):
        order = names if round_no % 2 == 0 else names[::-1]  # alternate which tree goes first
        for label, args in COMMANDS.items():
            filled = [a.replace("{bad_goal}", str(bad_goal)) for a in args]
            for name in order:
                samples[name][label].append(_time(trees[name], envs[name], filled))
    return {"samples": samples, "modules": modules}


def table(result: dict[str, Any]) -> list[str]:
    samples: dict[str, dict[str, list[float]]] = result["samples"]
    names = list(samples)
    medians = {n: {c: statistics.median(v) for c, v in s.items()} for n, s in samples.items()}
    header = ["command", *(f"{n} s" for n in names), *(f"{n} x pass" for n in names)]
    rows = [header]
    for label in COMMANDS:
        seconds = [f"{medians[n][label]:.2f}" for n in names]
        ratios = [f"{medians[n][label] / medians[n]['python -c pass']:.1f}" for n in names]
        rows.append([label, *seconds, *ratios])
    rows.append(["modules `crew --help` imports", *(str(result["modules"][n]) for n in names)])
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    after = medians[names[-1]]["crew --help"]
    verdict = "PASS" if after <= HELP_TARGET_S else "MISS (is the machine quiet?)"
    lines.append("")
    lines.append(f"target: `crew --help` <= {HELP_TARGET_S:.0f} s: {after:.2f} s, {verdict}")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_startup", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="processes per command and tree")
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help="git revision to compare with ('' to time this tree alone)",
    )
    parser.add_argument("--json", action="store_true", help="also write bench/results/*.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="crew-cli-startup-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        trees: dict[str, Path] = {}
        if args.baseline:
            trees["before"] = stack.enter_context(baseline_tree(args.baseline, root / "before"))
        (root / "after").mkdir()
        trees["after"] = stack.enter_context(working_tree(root / "after"))
        bad_goal = root / "bad-goal.json"
        bad_goal.write_text(json.dumps(_BAD_GOAL), encoding="utf-8")
        result = measure(trees, args.rounds, bad_goal, root / "data")
    print(f"crew CLI start-up, median of {args.rounds} processes per command and tree")
    if args.baseline:
        print(f"before: {args.baseline}   after: this working tree")
    print()
    for line in table(result):
        print(line)
    if args.json:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"cli-startup-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
