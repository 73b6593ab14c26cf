"""Mermaid diagrams generated from the compiled Conductor graph.

`conductor.mmd` is the state diagram (states and the node that moves a run between them),
built from each node's declared transitions; `conductor-graph.mmd` is LangGraph's own node
flowchart. `crew diagram export` writes both; a test fails when the committed files differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graph.graph import build_graph
from schemas.states import TERMINAL_STATES, ConductorState

DIAGRAM_DIR = Path(__file__).resolve().parent.parent / "docs" / "diagrams" / "src"


def state_diagram(compiled: Any) -> str:
    drawable = compiled.get_graph()
    edges: list[tuple[str, str, str]] = []
    for node_id, node in drawable.nodes.items():
        for pair in (node.metadata or {}).get("transitions", []):
            edges.append((pair[0], pair[1], node_id))
    lines = [
        "---",
        "title: Conductor states (generated from graph/graph.py; do not edit)",
        "---",
        "stateDiagram-v2",
        f"    [*] --> {ConductorState.PENDING.value}",
    ]
    lines += [f"    {a} --> {b}: {node}" for a, b, node in edges]
    lines += [f"    {s.value} --> [*]" for s in ConductorState if s in TERMINAL_STATES]
    return "\n".join(lines) + "\n"


def node_diagram(compiled: Any) -> str:
    text: str = compiled.get_graph().draw_mermaid()
    return text if text.endswith("\n") else text + "\n"


def render_diagrams() -> dict[str, str]:
    compiled = build_graph()
    return {"conductor.mmd": state_diagram(compiled), "conductor-graph.mmd": node_diagram(compiled)}


def export_diagrams(target: Path = DIAGRAM_DIR) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_diagrams().items():
        path = target / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
