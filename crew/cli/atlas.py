"""`atlas`: the architect on its own. `atlas plan GOAL.json` prints the design without running
anything: a PlanSpec (exit 0), a DesignBlocked (exit 3), or the input errors (exit 2)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from crew.cli.render import err, out, print_blocked, print_json, print_plan
from crew.inputs import InputError, load_goal
from nodes.atlas import plan_goal
from schemas.plan import PlanSpec

app = typer.Typer(
    name="atlas",
    help="Atlas, the architect: turn a GoalStatement into a PlanSpec (or say why it cannot).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Atlas, the architect."""


@app.command()
def plan(
    goal_file: Annotated[Path, typer.Argument(help="GoalStatement JSON file.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Also write the PlanSpec JSON here.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON on stdout (the default when piped).")
    ] = False,
) -> None:
    """Design for GOAL_FILE. Exit 0 with a PlanSpec, 3 when blocked, 2 for a bad goal."""
    try:
        goal = load_goal(goal_file)
    except InputError as exc:
        for problem in exc.problems:
            err.print(f"[red]{problem.field or '(input)'}[/red]: {problem.problem}")
            err.print(f"  fix: {problem.fix}")
        raise typer.Exit(2) from exc
    digest = hashlib.sha256(goal.model_dump_json().encode()).hexdigest()[:12]
    goal_id = goal.goal_id or f"goal-{digest}"
    result = plan_goal(goal, goal_id=goal_id, plan_id=f"plan-{digest}")
    if output is not None and isinstance(result, PlanSpec):
        output.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if as_json or not out.is_terminal:
        print_json(result)
    elif isinstance(result, PlanSpec):
        print_plan(result)
    else:
        print_blocked(result)
    raise typer.Exit(0 if isinstance(result, PlanSpec) else 3)


def main() -> None:
    app()
