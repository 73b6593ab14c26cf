"""scripts/diagrams: the committed SVGs match their sources, and the CI check (`--check`) tells
a changed source, a hand-edited SVG, a new toolchain or a broken diagram apart, on a copy of
docs/diagrams with a stand-in Mermaid CLI (no node, no browser)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIAGRAMS = ROOT / "docs" / "diagrams"
SCRIPT = ROOT / "scripts" / "diagrams"

#: A stand-in for mmdc: an "SVG" naming its source's digest; a source saying BROKEN fails as
#: mmdc does on a parse error. It logs every call, so a test can tell it was not run.
FAKE_MMDC = """#!/usr/bin/env bash
set -eu
while [ $# -gt 0 ]; do
    case "$1" in
        --input) input=$2; shift 2 ;;
        --output) output=$2; shift 2 ;;
        *) shift ;;
    esac
done
echo "$input" >>"$(dirname "$0")/calls"
if grep -q BROKEN "$input"; then
    echo "Error: Parse error on line 1:" >&2
    exit 1
fi
printf '<svg>%s</svg>\\n' "$(sha256sum <"$input" | cut -c1-64)" >"$output"
"""


@pytest.fixture
def diagrams(tmp_path: Path) -> Path:
    """A copy of docs/diagrams (sources, SVGs, manifest, toolchain files; no node_modules)."""
    copy = tmp_path / "diagrams"
    shutil.copytree(DIAGRAMS, copy, ignore=shutil.ignore_patterns("node_modules"))
    fake = tmp_path / "bin" / "mmdc"
    fake.parent.mkdir()
    fake.write_text(FAKE_MMDC)
    fake.chmod(0o755)
    return copy


def run(diagrams: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIAGRAMS_DIR": str(diagrams), "MMDC": str(_fake(diagrams))}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def _fake(diagrams: Path) -> Path:
    return diagrams.parent / "bin" / "mmdc"


def _calls(diagrams: Path) -> list[str]:
    log = diagrams.parent / "bin" / "calls"
    return log.read_text().split() if log.exists() else []


def test_the_committed_svgs_match_their_sources() -> None:
    # what `make test` runs before pytest: nothing to render, no node, no browser (how long
    # it takes is not asserted here: timings belong to benchmarks)
    result = subprocess.run(
        [str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout
    sources = {p.stem for p in (DIAGRAMS / "src").glob("*.mmd")}
    assert {"conductor", "conductor-graph", "flow", "topology"} <= sources
    assert {p.stem for p in DIAGRAMS.glob("*.svg")} == sources


def test_unchanged_diagrams_are_not_rendered(diagrams: Path) -> None:
    result = run(diagrams, "--check")
    assert result.returncode == 0, result.stderr
    assert _calls(diagrams) == []


def test_a_changed_source_is_rendered_and_reported_stale(diagrams: Path) -> None:
    source = diagrams / "src" / "flow.mmd"
    source.write_text(source.read_text() + "    extra --> node\n")
    committed = (diagrams / "flow.svg").read_bytes()
    result = run(diagrams, "--check")
    assert result.returncode == 1
    assert "flow.svg: src/flow.mmd changed" in result.stderr
    assert "run `make diagrams` and commit" in result.stderr
    assert _calls(diagrams) == ["src/flow.mmd"]  # linted, only it
    assert (diagrams / "flow.svg").read_bytes() == committed  # the check writes nothing


def test_a_broken_source_fails_with_the_clis_message(diagrams: Path) -> None:
    (diagrams / "src" / "topology.mmd").write_text("flowchart TD\n    BROKEN -->>> [\n")
    result = run(diagrams, "--check")
    assert result.returncode == 1
    assert "src/topology.mmd does not render" in result.stderr
    assert "Parse error on line 1" in result.stderr


def test_a_hand_edited_svg_and_a_new_source_are_stale(diagrams: Path) -> None:
    (diagrams / "conductor.svg").write_text("<svg>edited</svg>")
    (diagrams / "src" / "new.mmd").write_text("flowchart LR\n    a --> b\n")
    result = run(diagrams, "--check")
    assert result.returncode == 1
    assert "conductor.svg: conductor.svg is missing or was edited by hand" in result.stderr
    assert "new.svg: src/new.mmd is new" in result.stderr


def test_a_new_toolchain_renders_every_diagram_again(diagrams: Path) -> None:
    config = diagrams / "mermaid-config.json"
    config.write_text(config.read_text().replace('"handDrawnSeed": 1', '"handDrawnSeed": 2'))
    result = run(diagrams, "--check")
    assert result.returncode == 1
    assert sorted(_calls(diagrams)) == sorted(
        f"src/{p.name}" for p in (diagrams / "src").glob("*.mmd")
    )
    assert "mermaid-config.json changed" in result.stderr


def test_rendering_writes_the_svgs_and_a_manifest_the_check_accepts(diagrams: Path) -> None:
    source = diagrams / "src" / "flow.mmd"
    source.write_text(source.read_text() + "    extra --> node\n")
    (diagrams / "src" / "conductor-graph.mmd").unlink()
    changed = run(diagrams, "--changed")
    assert changed.returncode == 0, changed.stderr
    assert _calls(diagrams) == ["src/flow.mmd"]
    assert (diagrams / "flow.svg").read_text().startswith("<svg>")
    assert not (diagrams / "conductor-graph.svg").exists()  # its source is gone
    assert "conductor-graph" not in (diagrams / "rendered.sha256").read_text()
    subprocess.run(["sha256sum", "--check", "--quiet", "rendered.sha256"], cwd=diagrams, check=True)
    checked = run(diagrams, "--check")
    assert checked.returncode == 0, checked.stderr
    assert _calls(diagrams) == ["src/flow.mmd"]
