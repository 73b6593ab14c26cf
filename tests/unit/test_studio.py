"""LangGraph Studio's side of the Conductor, without the server: langgraph.json, the factory's
graph, JSON state coerced for the nodes, the file apply ledger. The server itself is driven in
tests/integration/test_studio.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graph.context import LocalStackLocks
from graph.graph import TRANSITIONS, build_graph
from graph.state import coerce_state, initial_state
from graph.studio import FileApplyLedger, conductor, studio_context
from schemas.goal import GoalStatement
from schemas.states import ConductorState
from tests.conftest import example_goal

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_langgraph_json_names_the_studio_factory() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["graphs"] == {"conductor": "graph.studio:conductor"}
    cli_config = pytest.importorskip("langgraph_cli.config")
    cli_config.validate_config_file(ROOT / "langgraph.json")


async def test_factory_builds_the_conductor_with_its_context_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREW_DATA_DIR", str(tmp_path))
    async with conductor() as graph:
        assert graph.checkpointer is None  # the API server brings its own
        assert graph.context_schema is None  # callers pass JSON, not a CrewContext
        assert set(TRANSITIONS) <= set(graph.nodes)
        assert graph.get_graph().edges == build_graph().get_graph().edges
        schema = graph.get_input_jsonschema()
        assert {"run_id", "goal", "conductor_state"} <= set(schema["properties"])


def test_studio_context_reads_settings_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREW_DATA_DIR", str(tmp_path))
    context = studio_context({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"})
    assert context.config.workspaces_dir == tmp_path / "workspaces"
    assert context.worker_id.startswith("studio-")
    assert isinstance(context.stack_locks, LocalStackLocks)
    assert context.events is None
    assert isinstance(context.ledger, FileApplyLedger)
    assert context.ledger.directory == tmp_path / "studio" / "applies"


def test_json_state_becomes_typed_and_typed_state_passes_unchanged() -> None:
    goal = GoalStatement.model_validate(example_goal())
    typed = initial_state("run-1", "goal-1", goal, T0)
    as_json = json.loads(json.dumps(coerce_state(typed), default=str))
    as_json["goal"] = goal.model_dump(mode="json")

    coerced = coerce_state(as_json)
    assert coerced["goal"] == goal
    assert coerced["started_at"] == T0
    assert coerced["conductor_state"] is ConductorState.PENDING
    assert coerce_state(typed)["goal"] is goal


async def test_file_ledger_starts_an_apply_once(tmp_path: Path) -> None:
    ledger = FileApplyLedger(tmp_path / "applies")
    assert await ledger.mark_apply_started("run-1", T0) is True
    assert await ledger.mark_apply_started("run-1", T0) is False
    assert await FileApplyLedger(tmp_path / "applies").mark_apply_started("run-1", T0) is False
    assert await ledger.mark_apply_started("../run-2", T0) is True
    assert [p.parent for p in (tmp_path / "applies").iterdir()] == [tmp_path / "applies"] * 2
