"""`crew build PLAN.json`: Forge on its own (render, guard, init, plan, show), no run.

Exit codes: 0 planned (the BuildStatus says what would change); 1 terraform reported errors
(printed); 2 bad input (not a PlanSpec, components the templates refuse, an output directory
holding other Terraform files, bad settings).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cli.render import err, out, print_json
from crew.settings import Settings
from schemas.build import BuildStatus
from schemas.errors import CrewError
from schemas.inputs import InputError, Problem, problems_from
from schemas.plan import PlanSpec

# Forge's templates, terraform and the container are imported where they are used, so that
# `crew --help` does not load them (bench/cli_startup.py).


def _bad(problem: str, fix: str, field: str = "") -> InputError:
    return InputError([Problem(field=field, problem=problem, fix=fix)], "plan")


def load_plan(path: Path) -> PlanSpec:
    """A PlanSpec the templates can render, or InputError saying what to fix."""
    from tools.render import RenderError, render_workspace_files

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _bad(f"cannot read {path}: {exc.strerror}", "check the path") from exc
    try:
        plan = PlanSpec.model_validate_json(text)
    except ValidationError as exc:
        raise InputError(problems_from(exc, PlanSpec), "plan") from exc
    try:
        render_workspace_files(plan)
    except (RenderError, ValueError) as exc:
        raise _bad(str(exc), "fix the PlanSpec's components (see `crew build --help`)") from exc
    return plan


def print_build(status: BuildStatus) -> None:
    p = status.plan
    verdict = "[green]planned[/green]" if status.ok else "[red]failed[/red]"
    out.print(f"build {verdict} ({status.plan_id}, terraform {status.terraform_version or '?'})")
    out.print(f"workspace {status.workspace}")
    if status.ok:
        out.print(
            f"plan: {p.create} to add, {p.update} to change, {p.delete} to destroy, "
            f"{p.replace} to replace"
        )
        out.print(f"plan file {status.plan_file} sha256 {status.plan_file_digest}")
    for d in status.errors:
        where = f" ({d.filename}:{d.line})" if d.filename else ""
        out.print(f"[red]error[/red] {d.summary}{where}: {d.detail}", soft_wrap=True)
    for d in status.warnings:
        out.print(f"[yellow]warning[/yellow] {d.summary}: {d.detail}", soft_wrap=True)


def build_command(
    plan_file: Annotated[
        Path, typer.Argument(help="PlanSpec JSON (e.g. from `atlas plan -o`).", show_default=False)
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Workspace directory. Forge owns it: its own files are rewritten; other "
            "Terraform files there are refused.",
            show_default="CREW_DATA_DIR/builds/<plan_id>",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="BuildStatus as JSON.")] = False,
) -> None:
    """Render a PlanSpec to Terraform and plan it: init, plan, show; nothing is applied.

    Before terraform runs, the pre-plan guard checks the workspace holds only catalog resources.

    The plan reads the stack's state from CREW_TF_BACKEND: it shows what an apply would change.
    """
    from cli.runner import fail, load_settings, run_async
    from crew.container import build_forge_tools
    from nodes.forge import build_workspace
    from tools.workspace import foreign_config_files

    settings: Settings = load_settings()
    plan = run_async(_load(plan_file))
    directory = out_dir or settings.data_dir / "builds" / plan.plan_id
    foreign = foreign_config_files(directory)
    if foreign:
        fail(
            2,
            f"{directory} holds Terraform files Forge did not write ({foreign[0].name}); "
            "use an empty directory",
        )
    terraform, backend = build_forge_tools(settings)

    def progress(message: str) -> None:
        if not as_json and out.is_terminal:
            err.print(f"[dim]{message}[/dim]", soft_wrap=True)

    try:
        status = asyncio.run(
            build_workspace(plan, directory, terraform, backend=backend, progress=progress)
        )
    except CrewError as exc:
        fail(1, str(exc))
    if as_json:
        print_json(status)
    else:
        print_build(status)
    raise typer.Exit(0 if status.ok else 1)


async def _load(path: Path) -> PlanSpec:
    return load_plan(path)
