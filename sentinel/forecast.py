"""Which monthly cost a run shows: one figure, the plan's once Sentinel has priced it.

Two numbers exist for a run. Atlas prices its *design* from the catalog's table before any
terraform runs (`PlanSpec.budget.forecast_monthly_usd`): a design estimate. Sentinel prices
the *terraform plan* (`ValidationReport.cost`), with everything the stack adds around the
components (keys, log buckets, alarms); that is what the gate shows and what the budget brake
holds. Showing both side by side as "forecast" told a user two different things, so every
view (CLI, console, REST summary, Slack) shows the plan's figure once there is one, and labels
Atlas's as a design estimate where it still appears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from schemas.plan import PlanSpec
from schemas.validation import ValidationReport

ForecastSource = Literal["validated", "design"]

#: Keys of a run's `summary` (REST `RunSummary.summary`) that carry its cost.
FORECAST_KEY = "forecast_monthly_usd"
"""The run's figure: the plan's forecast when priced, else the design estimate."""
SOURCE_KEY = "forecast_source"
""""validated" (Sentinel, from the terraform plan) or "design" (Atlas's estimate)."""
VALIDATED_KEY = "validated_monthly_usd"
"""Sentinel's figure, as the audit's cost report calls it (`RunCost.validated_monthly_usd`)."""
DESIGN_ESTIMATE_KEY = "design_estimate_monthly_usd"
BUDGET_KEY = "budget_monthly_usd"

_LABELS: dict[ForecastSource, str] = {"validated": "forecast", "design": "design estimate"}


@dataclass(frozen=True)
class RunForecast:
    monthly_usd: float
    source: ForecastSource
    budget_usd: float | None = None

    @property
    def label(self) -> str:
        """What to call the figure: "forecast" (the priced plan) or "design estimate"."""
        return _LABELS[self.source]

    @property
    def share(self) -> float | None:
        """The figure as a share of the budget."""
        return self.monthly_usd / self.budget_usd if self.budget_usd else None


def run_forecast(plan: PlanSpec | None, validation: ValidationReport | None) -> RunForecast | None:
    """The run's one figure. A validation of another revision's plan does not price this one."""
    budget = plan.budget.cap_monthly_usd if plan is not None else None
    if validation is not None and (plan is None or validation.plan_id == plan.plan_id):
        brake = validation.budget_brake
        if budget is None and brake is not None:
            budget = brake.cap_monthly_usd
        return RunForecast(round(validation.cost.monthly_usd, 2), "validated", budget)
    if plan is not None:
        return RunForecast(round(plan.budget.forecast_monthly_usd, 2), "design", budget)
    return None


def forecast_summary(plan: PlanSpec | None, validation: ValidationReport | None) -> dict[str, Any]:
    """The cost keys of a run's summary (added to, never renamed: REST clients read them)."""
    summary: dict[str, Any] = {}
    if plan is not None:
        summary[DESIGN_ESTIMATE_KEY] = round(plan.budget.forecast_monthly_usd, 2)
    forecast = run_forecast(plan, validation)
    if forecast is not None:
        if forecast.source == "validated":
            summary[VALIDATED_KEY] = forecast.monthly_usd
        summary[FORECAST_KEY] = forecast.monthly_usd
        summary[SOURCE_KEY] = forecast.source
    return summary


def summary_forecast(summary: Mapping[str, Any]) -> RunForecast | None:
    """A run's figure read back from its summary. Summaries written before the source was
    recorded only had Atlas's figure, so no source means a design estimate."""
    value, budget = summary.get(FORECAST_KEY), summary.get(BUDGET_KEY)
    if not isinstance(value, int | float):
        return None
    validated = summary.get(SOURCE_KEY) == "validated"
    source: ForecastSource = "validated" if validated else "design"
    return RunForecast(
        float(value), source, float(budget) if isinstance(budget, int | float) else None
    )
