"""`crew validate DIR_OR_PLAN_JSON`: Sentinel on its own, no database, no run.

Exit codes: 0 PASS, 1 FAIL, 2 bad input (a path that is neither, a policy file with a
mistake, bad settings).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.render import err, out, print_json, setting_default
from schemas.errors import CrewError
from schemas.inputs import InputError, Problem

if TYPE_CHECKING:  # Sentinel (scanners, the HCL parser) loads when a command validates
    from sentinel.engine import Subject

PLAN_JSON_NAME = "plan.json"


def _bad(problem: str, fix: str) -> InputError:
    return InputError([Problem(field="", problem=problem, fix=fix)], "input")


def _load_plan(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _bad(
            f"cannot read {path} as JSON: {exc}", "give a `terraform show -json` file"
        ) from exc
    if not isinstance(doc, dict) or not ({"resource_changes", "planned_values"} & doc.keys()):
        raise _bad(
            f"{path} is not a Terraform plan JSON (no resource_changes)",
            "run `terraform show -json PLANFILE > plan.json` and give that file",
        )
    return doc


def subject_for(path: Path, budget: float | None, region: str | None) -> Subject:
    """What to judge: a plan JSON (+ the .tf files beside it) or a directory (+ its plan.json)."""
    from sentinel.engine import Subject
    from sentinel.hclplan import plan_from_hcl

    if path.is_dir():
        tf_files = list(path.glob("*.tf"))
        plan_path = path / PLAN_JSON_NAME
        if not tf_files and not plan_path.is_file():
            raise _bad(f"{path} has no .tf files and no {PLAN_JSON_NAME}", "give a Terraform dir")
        if plan_path.is_file():
            doc, stand_in = _load_plan(plan_path), False
        else:
            doc, stand_in, plan_path = plan_from_hcl(path), True, None  # type: ignore[assignment]
        return Subject(
            plan_id=path.resolve().name,
            plan_json=doc,
            plan_json_path=plan_path,
            hcl_dir=path if tf_files else None,
            budget_monthly_usd=budget,
            region=region,
            stand_in_plan=stand_in,
        )
    if path.is_file():
        doc = _load_plan(path)
        beside = path.parent if any(path.parent.glob("*.tf")) else None
        return Subject(
            plan_id=path.stem,
            plan_json=doc,
            plan_json_path=path,
            hcl_dir=beside,
            budget_monthly_usd=budget,
            region=region,
        )
    raise _bad(f"{path} does not exist", "give a Terraform directory or a plan JSON file")


def validate_command(
    target: Annotated[
        Path,
        typer.Argument(
            help="A Terraform directory (its .tf files, and plan.json if present) or a plan "
            "JSON from `terraform show -json`.",
            show_default=False,
        ),
    ],
    budget: Annotated[
        float | None,
        typer.Option(help="Monthly budget in USD: above 80 % of it the brake fails the plan."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="Org policy YAML.",
            show_default=setting_default("policy_file", "the shipped policy"),
        ),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Region to price in when the plan does not say.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The ValidationReport as JSON.")] = False,
) -> None:
    """Validate Terraform with Sentinel: checkov (HCL + plan, offline), trivy/tfsec if
    installed, the org policy, the monthly cost forecast and the 80 % budget brake.

    Prints the ValidationReport. Exit 0 PASS, 1 FAIL, 2 bad input.

    Example: `crew validate ./workspace --budget 50 --policy policy.yaml`
    """
    from cli.runner import fail, load_settings
    from crew.container import build_sentinel

    if budget is not None and budget <= 0:
        fail(2, "--budget must be a positive number of USD per month")
    settings = load_settings(policy_file=policy)
    try:
        subject = subject_for(target, budget, region)
        sentinel = build_sentinel(settings)
        report = asyncio.run(sentinel.validate(subject, datetime.now(UTC)))
    except InputError as exc:
        for p in exc.problems:
            err.print(f"[red]{p.field or '(input)'}[/red]: {p.problem}", soft_wrap=True)
            err.print(f"  fix: {p.fix}", soft_wrap=True)
        raise typer.Exit(2) from exc
    except CrewError as exc:
        fail(1, str(exc))
    if as_json:
        print_json(report)
    else:
        from cli.report import print_validation

        print_validation(report, out)
    raise typer.Exit(0 if report.verdict.value == "PASS" else 1)
