"""What a new user hits at once with `crew` (issue 15, item 14): run ids cut in `crew runs`,
no `--version`, help without defaults."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

import cli.render
import crew
from cli.atlas import app as atlas_app
from cli.main import app as crew_app
from crew.settings import Settings
from schemas.run import RunSummary
from schemas.states import ConductorState

T0 = datetime(2026, 12, 7, 1, 33, 31, tzinfo=UTC)
runner = CliRunner()


def summaries() -> list[RunSummary]:
    """Runs as `crew runs` lists them (ids in the form `crew.service.new_run_id` makes)."""
    long_title = "Object storage for the quarterly reports of the finance team, versioned"
    return [
        RunSummary(
            run_id=f"{T0 + timedelta(seconds=i):%Y%m%dT%H%M%S}-{i:08x}",
            goal_id=f"goal-{i}",
            revision=1,
            title=long_title if i % 2 else "API",
            requested_by="alice.longname@finance.example.com" if i % 2 else None,
            state=state,
            created_at=T0,
            updated_at=T0,
            summary={"budget_monthly_usd": 50.0, "forecast_monthly_usd": 7.09}
            | ({"forecast_source": "validated"} if i % 2 else {}),
        )
        for i, state in enumerate(
            [ConductorState.WAIT_FOR_APPROVE, ConductorState.IN_PROGRESS, ConductorState.DONE]
        )
    ]


def listed(width: int) -> list[str]:
    screen = Console(file=io.StringIO(), width=width, highlight=False, record=True)
    original = cli.render.out
    cli.render.out = screen
    try:
        cli.render.print_runs(summaries())
    finally:
        cli.render.out = original
    return screen.export_text().splitlines()


@pytest.mark.parametrize("width", [200, 120, 80, 40])
def test_crew_runs_never_cuts_a_run_id(width: int) -> None:
    lines = listed(width)
    for run in summaries():
        assert any(run.run_id in line for line in lines), (run.run_id, "\n".join(lines))
    assert not any("…" in line for line in lines), "\n".join(lines)  # nothing ellipsized
    text = " ".join(" ".join(lines).split())
    assert "WAIT_FOR_APPROVE" in text
    assert "(design estimate)" in text  # the runs whose plan is not priced yet


def test_crew_runs_is_a_table_where_one_fits() -> None:
    assert any("┃ run" in line for line in listed(200))
    assert not any("┃ run" in line for line in listed(40))


def test_version() -> None:
    installed = metadata.version("infra-crew")
    for app, name in ((crew_app, "crew"), (atlas_app, "atlas")):
        result = runner.invoke(app, ["--version"])
        assert result.exit_code == 0, result.output
        assert result.output == f"{name} {installed}\n"
    assert installed == crew.__version__  # pyproject.toml and the package agree


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every command under a typer group (typer ships its own click: duck-typed here)."""
    for name, command in group.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


@pytest.mark.parametrize("app", [crew_app, atlas_app], ids=["crew", "atlas"])
def test_every_option_shows_its_default(app: typer.Typer) -> None:
    """An option with a value when not given shows it; one that falls back to a setting names
    the CREW_ variable and the setting's own default."""
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    checked = 0
    for name, command in commands(root):
        for option in command.params:
            if not isinstance(option, typer.core.TyperOption) or option.name in {"help", "version"}:
                continue
            where = f"{name} {option.opts[0]}"
            if option.default is None:
                if "CREW_" in (option.help or ""):
                    assert isinstance(option.show_default, str), f"{where}: name the setting"
                continue
            assert option.show_default, f"{where}: default {option.default!r} hidden"
            checked += 1
    assert checked


def test_serve_and_worker_help_show_the_settings_defaults() -> None:
    defaults = Settings.model_fields
    serve = runner.invoke(crew_app, ["serve", "--help"], env={"COLUMNS": "200"}, color=False)
    assert serve.exit_code == 0, serve.output
    assert f"[default: (CREW_HOST, else {defaults['host'].default})]" in serve.output
    assert f"[default: (CREW_PORT, else {defaults['port'].default})]" in serve.output
    assert "[default: worker]" in serve.output
    worker = runner.invoke(crew_app, ["worker", "--help"], env={"COLUMNS": "200"}, color=False)
    assert "CREW_WORKER_CONCURRENCY, else 4" in worker.output
    assert "CREW_METRICS_PORT, else no /metrics" in worker.output
    approve = runner.invoke(crew_app, ["approve", "--help"], env={"COLUMNS": "200"}, color=False)
    assert "[default: cli]" in approve.output
    assert "[default: wait]" in approve.output
