"""`crew --help` and `crew --version` start fast because the CLI imports its heavy machinery
(LangGraph, LangSmith, psycopg, the HCL parser, Slack, scanners, embeddings) only in the
commands that use it. Checked by what a fresh interpreter imports, not by timing
(`python -m bench.cli_startup` measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.cli_startup import COMMANDS, table

#: Top-level packages `crew --help` must not import.
HEAVY = (
    "langgraph",
    "langchain_core",
    "langsmith",
    "psycopg",
    "hcl2",
    "checkov",
    "sentence_transformers",
    "torch",
    "slack_sdk",
    "httpx",
    "fastapi",
    "uvicorn",
    "prometheus_client",
    "memory",
    "graph",
    "nodes",
)

_PROBE = """
import json, sys
from typer.testing import CliRunner
from cli.main import app
for args in (["--help"], ["--version"], ["run", "--help"], ["show", "--help"]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_help_and_version_import_none_of_the_heavy_machinery() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert "crew" in loaded
    assert sorted(loaded.intersection(HEAVY)) == []


def test_the_bench_table_gives_each_command_its_ratio_to_a_bare_interpreter() -> None:
    samples = {
        tree: {label: [0.1 * (i + 1)] for i, label in enumerate(COMMANDS)}
        for tree in ("before", "after")
    }
    lines = table({"samples": samples, "modules": {"before": 1600, "after": 440}})
    assert lines[0].split() == [
        "command",
        "before",
        "s",
        "after",
        "s",
        "before",
        "x",
        "pass",
        "after",
        "x",
        "pass",
    ]
    help_row = next(line for line in lines if line.startswith("crew --help"))
    assert help_row.split()[-2:] == ["3.0", "3.0"]  # 0.3 s against 0.1 s
    assert lines[-1].endswith("0.30 s, PASS")
