"""What the console's pages show, derived from the API's own views (schemas/run.py).

Templates get these small, typed views instead of digging through artifacts themselves: the
run list's row, a run's findings grouped by severity, its cost lines, which gate buttons apply.
Nothing here reads the database; the handlers fetch through the same service functions as
REST and pass the results in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.web.hcl import HclView
from catalog.gaps import asked_vs_designed
from crew.progress import describe_progress
from schemas.plan import PlanSpec
from schemas.run import RunDetail, RunSummary
from schemas.states import TERMINAL_STATES, ConductorState
from schemas.validation import Finding, Severity
from sentinel.forecast import run_forecast, summary_forecast
from tools.checkov_rules import rule_source_url

#: Badge colour family of each state (console.css: .tone-*); words always accompany colour.
STATE_TONES: dict[ConductorState, str] = {
    ConductorState.PENDING: "busy",
    ConductorState.IN_PROGRESS: "busy",
    ConductorState.VALIDATING: "busy",
    ConductorState.READY_FOR_APPLY: "busy",
    ConductorState.WAIT_FOR_APPROVE: "wait",
    ConductorState.APPLYING: "busy",
    ConductorState.DONE: "ok",
    ConductorState.BLOCKED: "stop",
    ConductorState.ROLLBACK: "warn",
    ConductorState.REJECTED: "stop",
    ConductorState.FAILED: "bad",
}
SEVERITY_TONES: dict[Severity, str] = {
    Severity.CRITICAL: "bad",
    Severity.HIGH: "warn",
    Severity.MEDIUM: "wait",
    Severity.LOW: "busy",
    Severity.INFO: "stop",
}
#: Messages a redirect after a decision may show (`?notice=`): a fixed set, never echoed text.
NOTICES = {
    "approved": "Approved. A worker applies exactly the validated plan; this page follows it.",
    "rejected": "Rejected. Nothing will be applied.",
    "rollback": "Rollback requested. A worker restores the stack to its state before the apply.",
    "cancelled": "Cancelled. The run ended REJECTED; nothing will be applied.",
    "submitted": "Goal submitted. The crew designs, builds and validates it, then waits here.",
    "existing": "This goal_id was submitted before: this is its run.",
}


@dataclass(frozen=True)
class RunRow:
    """One line of the runs list."""

    run: RunSummary
    forecast_usd: float | None
    budget_usd: float | None
    forecast_label: str = "forecast"
    """"forecast" (the terraform plan priced by Sentinel) or "design estimate" (Atlas's)."""

    @property
    def brake_usd(self) -> float | None:
        return self.budget_usd * 0.8 if self.budget_usd else None

    @property
    def share(self) -> int | None:
        """Forecast as a percentage of the budget."""
        if self.forecast_usd is None or not self.budget_usd:
            return None
        return round(100 * self.forecast_usd / self.budget_usd)


def run_row(run: RunSummary) -> RunRow:
    forecast, budget = summary_forecast(run.summary), run.summary.get("budget_monthly_usd")
    return RunRow(
        run=run,
        forecast_usd=forecast.monthly_usd if forecast else None,
        budget_usd=float(budget) if isinstance(budget, int | float) else None,
        forecast_label=forecast.label if forecast else "forecast",
    )


@dataclass(frozen=True)
class ComponentRow:
    name: str
    type: str
    params: dict[str, Any]
    depends_on: list[str]
    monthly_usd: float | None
    basis: str


def component_rows(plan: PlanSpec) -> list[ComponentRow]:
    """The PlanSpec's components with Atlas's cost line for each."""
    lines = {line.component: line for line in plan.budget.breakdown}
    rows = []
    for c in plan.components:
        line = lines.get(c.name)
        rows.append(
            ComponentRow(
                name=c.name,
                type=c.type,
                params=c.params,
                depends_on=c.depends_on,
                monthly_usd=line.monthly_usd if line else None,
                basis=line.basis if line else "",
            )
        )
    return rows


@dataclass(frozen=True)
class FindingGroup:
    severity: Severity
    findings: list[Finding]

    @property
    def blocking(self) -> int:
        return sum(1 for f in self.findings if f.blocking)


def findings_by_severity(findings: list[Finding]) -> list[FindingGroup]:
    """Most severe first; only severities that have findings; blocking before waived."""
    groups = []
    for severity in Severity:
        found = [f for f in findings if f.severity is severity]
        if found:
            found.sort(key=lambda f: (not f.blocking, f.waived, f.rule_id, f.resource or ""))
            groups.append(FindingGroup(severity, found))
    return groups


@dataclass(frozen=True)
class GateButtons:
    """Which decisions the run's state allows now (the visitor's right is separate)."""

    approve: bool = False
    reject: bool = False
    rollback: bool = False
    cancel: bool = False

    @property
    def any(self) -> bool:
        return self.approve or self.reject or self.rollback or self.cancel


#: States a run can be cancelled in (crew/lifecycle.py CANCELLABLE), at the gate aside.
_CANCELLABLE_BEFORE_GATE = (
    ConductorState.PENDING,
    ConductorState.IN_PROGRESS,
    ConductorState.VALIDATING,
    ConductorState.READY_FOR_APPLY,
)


def gate_buttons(detail: RunDetail) -> GateButtons:
    """Approve/reject/cancel while undecided at the gate; cancel before it; roll back a DONE
    run whose apply worked and that was not rolled back. The gate re-checks all of it when
    the form is posted."""
    if detail.state is ConductorState.WAIT_FOR_APPROVE and detail.decision is None:
        return GateButtons(approve=True, reject=True, cancel=True)
    if detail.state in _CANCELLABLE_BEFORE_GATE and detail.decision is None:
        return GateButtons(cancel=True)
    applied, undone = detail.artifacts.apply_result, detail.artifacts.rollback_result
    if (
        detail.state is ConductorState.DONE
        and applied is not None
        and applied.ok
        and not (undone is not None and undone.ok)
    ):
        return GateButtons(rollback=True)
    return GateButtons()


def live_version(detail: RunDetail) -> str:
    """Changes whenever anything the detail page shows can have changed."""
    decided = detail.decision.at.isoformat() if detail.decision else "-"
    moved = detail.progress.updated_at.isoformat() if detail.progress else "-"
    seen = (
        f"{detail.state.value}|{len(detail.audit)}|{decided}|{detail.updated_at.isoformat()}"
        f"|{moved}"
    )
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


def is_live(state: ConductorState) -> bool:
    """Pages keep refreshing until the run stops on its own."""
    return state not in TERMINAL_STATES


def run_page_context(
    detail: RunDetail, may_decide: bool, hcl: HclView | None, now: datetime
) -> dict[str, Any]:
    """The run page's template values. `may_decide` is the visitor's right to decide at the
    gate (`Visitor.may_decide`): without it there are no buttons, whatever the state."""
    validation, plan = detail.artifacts.validation, detail.artifacts.plan
    return {
        "run": detail,
        "plan": plan,
        "forecast": run_forecast(plan, validation),
        "components": component_rows(plan) if plan else [],
        "asked": asked_vs_designed(plan.requirements) if plan else [],
        "finding_groups": findings_by_severity(validation.findings) if validation else [],
        "buttons": gate_buttons(detail) if may_decide else None,
        "hcl": hcl,
        "live": is_live(detail.state),
        "version": live_version(detail),
        "now": now,
    }


# -- template filters ------------------------------------------------------------------------


def usd(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: datetime, now: datetime | None = None) -> str:
    """'42 s ago', '3 min ago', '5 h ago', '2 d ago' (the script keeps it current)."""
    seconds = max(0, int(((now or datetime.now(UTC)) - value).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "—"


def safe_link(url: str | None) -> str | None:
    """Only http(s) links are rendered as links (no javascript: or data: from a report)."""
    if url and url.startswith(("https://", "http://")):
        return url
    return None


def rule_link(finding: Finding) -> str | None:
    """A finding's guideline URL when its scanner gave one, else (checkov, offline: never a
    URL) the file that defines the rule at the installed checkov version."""
    given = safe_link(finding.guideline)
    if given is not None:
        return given
    if finding.tool == "checkov":
        return rule_source_url(finding.rule_id)
    return None


FILTERS: dict[str, Callable[..., Any]] = {
    "usd": usd,
    "when": when,
    "ago": ago,
    "params": params_text,
    "safe_link": safe_link,
    "rule_link": rule_link,
    "progress": describe_progress,
    "state_tone": lambda s: STATE_TONES.get(ConductorState(s), "stop"),
    "severity_tone": lambda s: SEVERITY_TONES.get(Severity(s), "stop"),
}
