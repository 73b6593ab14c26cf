"""The README is part of the interface: its configuration table, state diagram and test
command must match the code."""

from __future__ import annotations

from pathlib import Path

from crew.settings import Settings
from graph.diagram import render_diagrams

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"CREW_{name.upper()}"
        for name in Settings.model_fields
        if f"`CREW_{name.upper()}`" not in README
    ]
    assert missing == [], f"document these in README's configuration table: {missing}"


def test_readme_state_diagram_matches_the_graph() -> None:
    generated = render_diagrams()["conductor.mmd"]
    body = generated.split("stateDiagram-v2", 1)[1].strip()
    assert body in README, "README's state diagram is stale: copy docs/diagrams/src/conductor.mmd"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in README
    assert ci.strip().splitlines()[-1] == "make test"
