"""One cost figure per run: the terraform plan's as Sentinel priced it, once there is one;
Atlas's design estimate, labelled as such, before. The runs list once showed Atlas's $3.62
while the gate showed Sentinel's $7.09 for the same run (issue 15, item 14)."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest
from rich.console import Console

import cli.render
from api.web.render import TEMPLATES
from api.web.views import run_page_context, run_row
from crew.gate.slack_message import render_message
from graph.state import summarize
from schemas.plan import PlanSpec
from schemas.run import RunArtifacts, RunDetail, RunSummary
from schemas.states import ConductorState
from schemas.validation import ValidationReport
from sentinel.forecast import run_forecast, summary_forecast
from tests.unit.support import ARTIFACT_EXAMPLES, make_goal

T0 = datetime(2026, 12, 7, 1, 33, 31, tzinfo=UTC)


@pytest.fixture
def validation() -> ValidationReport:
    """Sentinel's report on the example plan: $7.09 (the bucket, its log bucket, the key)."""
    return ValidationReport.model_validate_json(
        (ARTIFACT_EXAMPLES / "ValidationReport.json").read_text(encoding="utf-8")
    )


def detail(plan: PlanSpec | None, validation: ValidationReport | None) -> RunDetail:
    goal = make_goal()
    values = {"goal": goal, "plan": plan, "validation": validation}
    return RunDetail(
        run_id="20261207T013331-abcdef12",
        goal_id=goal.goal_id or "g-1",
        revision=1,
        title=goal.title,
        requested_by="alice",
        state=ConductorState.WAIT_FOR_APPROVE if validation else ConductorState.IN_PROGRESS,
        created_at=T0,
        updated_at=T0,
        summary=summarize(values),
        goal=goal,
        artifacts=RunArtifacts(plan=plan, validation=validation),
    )


def test_the_plans_figure_wins_once_priced(
    example_plan: PlanSpec, validation: ValidationReport
) -> None:
    design = example_plan.budget.forecast_monthly_usd
    assert design != validation.cost.monthly_usd == 7.09  # two figures exist for one run
    priced = run_forecast(example_plan, validation)
    assert priced is not None
    assert (priced.monthly_usd, priced.source, priced.label) == (7.09, "validated", "forecast")
    assert priced.budget_usd == example_plan.budget.cap_monthly_usd
    estimate = run_forecast(example_plan, None)
    assert estimate is not None
    assert (estimate.monthly_usd, estimate.label) == (design, "design estimate")
    stale = validation.model_copy(update={"plan_id": "an-older-revision"})
    assert run_forecast(example_plan, stale) == estimate
    assert run_forecast(None, None) is None
    # a summary written before the source was recorded held Atlas's figure
    old = summary_forecast({"forecast_monthly_usd": 3.62, "budget_monthly_usd": 20})
    assert old is not None
    assert (old.monthly_usd, old.source, old.budget_usd) == (3.62, "design", 20.0)


def test_the_rest_summary_adds_keys_and_keeps_the_old_one(
    example_plan: PlanSpec, validation: ValidationReport
) -> None:
    summary = detail(example_plan, validation).summary
    assert summary["forecast_monthly_usd"] == summary["validated_monthly_usd"] == 7.09
    assert summary["forecast_source"] == "validated"
    assert summary["design_estimate_monthly_usd"] == example_plan.budget.forecast_monthly_usd


def summary_of(run: RunDetail) -> RunSummary:
    return RunSummary.model_validate(run.model_dump(include=set(RunSummary.model_fields)))


def shown(run: RunSummary | RunDetail, width: int = 200) -> str:
    screen = Console(file=io.StringIO(), width=width, highlight=False, record=True)
    original = cli.render.out
    cli.render.out = screen
    try:
        if isinstance(run, RunDetail):
            cli.render.print_run(run)
        else:
            cli.render.print_runs([run])
    finally:
        cli.render.out = original
    return screen.export_text()


def test_the_cli_shows_one_figure_and_names_the_estimate(
    example_plan: PlanSpec, validation: ValidationReport
) -> None:
    design = f"${example_plan.budget.forecast_monthly_usd:,.2f}"
    listed = shown(detail(example_plan, validation))
    assert "forecast $7.09/month of $20.00 (35%), priced from the terraform plan" in listed
    assert f"design estimate {design}/month" in listed
    assert f"forecast {design}" not in listed

    runs = shown(summary_of(detail(example_plan, validation)))
    assert "$7.09 / $20.00" in runs
    assert design not in runs
    early = shown(summary_of(detail(example_plan, None)))
    assert f"{design} / $20.00 (design estimate)" in " ".join(early.split())


def test_the_console_shows_one_figure_and_names_the_estimate(
    example_plan: PlanSpec, validation: ValidationReport
) -> None:
    priced = run_row(detail(example_plan, validation))
    assert (priced.forecast_usd, priced.forecast_label) == (7.09, "forecast")
    early = run_row(detail(example_plan, None))
    assert early.forecast_label == "design estimate"
    assert early.forecast_usd == example_plan.budget.forecast_monthly_usd
    context = run_page_context(detail(example_plan, validation), False, None, T0)
    assert context["forecast"] == run_forecast(example_plan, validation)

    def page(run: RunDetail) -> str:
        context = run_page_context(run, False, None, T0)
        html = TEMPLATES.get_template("partials/run_body.html").render(visitor=None, **context)
        return " ".join(re.sub(r"<[^>]+>", " ", html).split())

    design = f"${example_plan.budget.forecast_monthly_usd:,.2f}"
    priced = page(detail(example_plan, validation))
    assert "Forecast $7.09 / month of $20.00" in priced
    assert f"Design estimate {design} / month" in priced  # the Design section, labelled
    assert f"Forecast {design}" not in priced
    early = page(detail(example_plan, None))
    assert f"Design estimate {design} / month of $20.00" in early
    rows = TEMPLATES.get_template("partials/runs_table.html").render(
        rows=[run_row(detail(example_plan, None))], now=T0, state=None, offset=0, more=False
    )
    assert "design estimate" in rows


def test_the_slack_message_shows_one_figure_and_names_the_estimate(
    example_plan: PlanSpec, validation: ValidationReport
) -> None:
    _, blocks = render_message(detail(example_plan, validation), "https://crew.example/runs/r")
    text = json.dumps(blocks)
    assert "*Forecast vs budget*\\n$7.09 of $20.00 a month (35%)" in text
    assert f"${example_plan.budget.forecast_monthly_usd:,.2f}" not in text

    _, blocks = render_message(detail(example_plan, None), "https://crew.example/runs/r")
    text = json.dumps(blocks)
    assert f"*Design estimate vs budget*\\n${example_plan.budget.forecast_monthly_usd:,.2f}" in text
