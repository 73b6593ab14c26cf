"""`atlas`: the architect on its own. `atlas plan GOAL.json` prints the design without running
anything: a PlanSpec (exit 0), a DesignBlocked (exit 3), or the input errors (exit 2)."""

from __future__ import annotations

import asyncio
import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from cli.render import (
    err,
    out,
    print_blocked,
    print_json,
    print_plan,
    setting_default,
    version_option,
)
from crew.settings import Settings
from schemas.errors import ConfigurationError, CrewError
from schemas.inputs import InputError, load_goal, problems_from_errors
from schemas.plan import DesignBlocked, PlanSpec

app = typer.Typer(
    name="atlas",
    help=(
        "Atlas, the architect: turn a GoalStatement into a PlanSpec (or say why it cannot).\n\n"
        "The design uses only the vetted component catalog; its cost is forecast from the "
        "built-in price table and must stay within 80 % of the goal's budget."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class PlannerChoice(StrEnum):
    CATALOG = "catalog"
    LLM = "llm"


@app.callback()
def _root(
    _version: Annotated[bool, version_option("atlas")] = False,
) -> None:
    """Atlas, the architect."""


@app.command()
def plan(
    goal_file: Annotated[Path, typer.Argument(help="GoalStatement JSON file.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Also write the PlanSpec JSON here.")
    ] = None,
    planner: Annotated[
        PlannerChoice | None,
        typer.Option(
            "--planner",
            help="catalog: offline rules; llm: CREW_LLM_MODEL at CREW_LLM_BASE_URL; auto: llm "
            "when CREW_LLM_MODEL is set.",
            show_default=setting_default("planner"),
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON on stdout (the default when piped).")
    ] = False,
) -> None:
    """Design for GOAL_FILE and print the PlanSpec: components, forecast vs budget, risks.

    Exit codes: 0 a PlanSpec; 3 a DesignBlocked (each reason says what to change in the
    goal); 2 a bad goal file or bad settings; 1 the planner failed (e.g. the LLM endpoint is
    down: the message says so). Nothing is built or applied; past plans are not consulted
    (that needs the service's database).
    """
    # Imported here, after argument parsing: `atlas --help` does not load the planners.
    from crew.container import build_planner, build_reading_aids
    from nodes.atlas import design_goal, with_svg
    from sentinel.policy import load_policy

    try:
        goal = load_goal(goal_file)
    except InputError as exc:
        for problem in exc.problems:
            err.print(f"[red]{problem.field or '(input)'}[/red]: {problem.problem}")
            err.print(f"  fix: {problem.fix}")
        raise typer.Exit(2) from exc
    try:
        settings = Settings()
        aids = build_reading_aids(settings)
        chosen = build_planner(settings, planner.value if planner else None, aids=aids)
        unsupported = load_policy(settings.policy_file).unsupported_asks
    except ValidationError as exc:
        details = "; ".join(str(p) for p in problems_from_errors(exc.errors(include_url=False)))
        _fail(2, f"bad settings: {details}")
    except ConfigurationError as exc:
        _fail(2, str(exc))
    except InputError as exc:
        _fail(2, "; ".join(f"{p.field}: {p.problem}" for p in exc.problems))
    digest = hashlib.sha256(goal.model_dump_json().encode()).hexdigest()[:12]
    goal_id = goal.goal_id or f"goal-{digest}"

    async def run() -> PlanSpec | DesignBlocked:
        result = await design_goal(
            goal,
            planner=chosen,
            goal_id=goal_id,
            plan_id=f"plan-{digest}",
            aids=aids,
            unsupported_asks=unsupported,
        )
        if isinstance(result, PlanSpec):
            return await with_svg(result, settings.mermaid_cli)
        return result

    try:
        result = asyncio.run(run())
    except ConfigurationError as exc:
        _fail(2, str(exc))
    except CrewError as exc:
        _fail(1, f"the {chosen.name} planner failed: {exc}")
    if output is not None and isinstance(result, PlanSpec):
        output.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if as_json or not out.is_terminal:
        print_json(result)
    elif isinstance(result, PlanSpec):
        print_plan(result)
    else:
        print_blocked(result)
    raise typer.Exit(0 if isinstance(result, PlanSpec) else 3)


def _fail(code: int, message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


def main() -> None:
    app()
