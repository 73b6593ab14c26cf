"""`atlas plan`: a PlanSpec (exit 0), a DesignBlocked (3), a bad goal or settings (2); JSON
when piped or with --json, a human summary on a terminal. (The LLM path of the CLI runs
against a local server in tests/integration/test_llm_planner.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import cli.atlas
import cli.render
from cli.atlas import app
from schemas.plan import DesignBlocked, PlanSpec
from tests.unit.support import EXAMPLES, goal_dict

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("CREW_PLANNER", "CREW_LLM_MODEL", "CREW_LLM_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CREW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CREW_MERMAID_CLI", "")  # no SVG rendering, whatever is on PATH


def write_goal(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "goal.json"
    path.write_text(json.dumps(goal_dict("goal-web-api.json", **changes)), encoding="utf-8")
    return path


def test_a_plan_is_printed_as_json_when_piped_and_written_with_o(tmp_path: Path) -> None:
    out_file = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(EXAMPLES / "goal-web-api.json"), "-o", str(out_file)])
    assert result.exit_code == 0, result.output
    plan = PlanSpec.model_validate_json(result.stdout)
    assert plan.goal_id == "orders-api-2026-11"
    assert plan.provenance.planner == "catalog"
    assert PlanSpec.model_validate_json(out_file.read_text()) == plan


def test_a_blocked_design_exits_3_with_its_reasons(tmp_path: Path) -> None:
    goal = write_goal(tmp_path, budget={"monthly_usd": 50})
    out_file = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(goal), "--json", "-o", str(out_file)])
    assert result.exit_code == 3, result.output
    blocked = DesignBlocked.model_validate_json(result.stdout)
    assert blocked.reasons[0].suggestion.startswith("raise budget.monthly_usd to >= ")
    assert not out_file.exists()  # -o writes PlanSpecs only


def test_a_bad_goal_exits_2_naming_the_field(tmp_path: Path) -> None:
    goal = write_goal(tmp_path, regoin="eu-west-1")
    result = runner.invoke(app, ["plan", str(goal)])
    assert result.exit_code == 2
    assert "regoin" in result.stderr
    assert "did you mean 'region'" in result.stderr


def test_the_llm_planner_without_a_model_is_a_settings_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLES / "goal-web-api.json"), "--planner", "llm"])
    assert result.exit_code == 2
    assert "CREW_LLM_MODEL" in result.stderr


def test_on_a_terminal_a_human_summary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    screen = Console(force_terminal=True, record=True, width=160)
    monkeypatch.setattr(cli.atlas, "out", screen)
    monkeypatch.setattr(cli.render, "out", screen)
    result = runner.invoke(app, ["plan", str(EXAMPLES / "goal-web-api.json")])
    assert result.exit_code == 0, result.output
    text = screen.export_text()
    assert "API behind a load balancer in eu-west-1 (prod)" in text
    for name in ("network", "api", "lb", "db", "alarms"):
        assert name in text
    assert "design estimate $239.41/month of $400.00 (60%; brake at $320.00)" in text
    assert "designed by catalog in 1 attempt(s)" in text
    assert "risk (high): lb listens on plain HTTP" in text
    blocked = write_goal(tmp_path, region="us-east-1")
    screen = Console(force_terminal=True, record=True, width=160)
    monkeypatch.setattr(cli.atlas, "out", screen)
    monkeypatch.setattr(cli.render, "out", screen)
    assert runner.invoke(app, ["plan", str(blocked)]).exit_code == 3
    text = screen.export_text()
    assert "design blocked" in text
    assert "fix: use region eu-west-1" in text


def test_help_teaches_the_exit_codes() -> None:
    result = runner.invoke(app, ["plan", "--help"])
    assert result.exit_code == 0
    for phrase in ("--planner", "DesignBlocked", "0 a PlanSpec", "3 a DesignBlocked"):
        assert phrase in result.stdout
