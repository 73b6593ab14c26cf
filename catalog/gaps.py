"""Gaps between what a goal asks and what a design does, as problems and risks.

An `unsupported` requirement blocks a design by default: a green plan that silently does
less than was asked is the one failure an architect cannot have. The org policy's
`unsupported_asks: warn` lets a team accept a partial design, with every gap listed as a
risk at the gate. For the LLM planner, an ask the catalog *could* meet but the proposal
ignores is a problem fed back in its retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from catalog.problems import Problem, ProblemCode
from catalog.reading.capabilities import BY_NAME
from schemas.plan import Requirement, RequirementStatus, Risk, RiskSeverity

UnsupportedAsks = Literal["block", "warn"]
#: Asks the catalog cannot meet whatever the design (the rest a design can meet).
_NEVER = ("aws.", "refused.", "compliance.framework")


def catalog_can(name: str) -> bool:
    if name.startswith(_NEVER):
        return False
    cap = BY_NAME.get(name)
    return cap is None or cap.supported


def _where(r: Requirement) -> str:
    if r.source.field:
        return r.source.field
    return "description"


def gap_problems(requirements: Sequence[Requirement]) -> list[Problem]:
    """One problem per unsupported ask: what was asked, where, and what to do."""
    problems: list[Problem] = []
    for r in requirements:
        if r.status is not RequirementStatus.UNSUPPORTED:
            continue
        asked = f"'{r.source.text}'" if r.source.field is None else r.source.text
        problems.append(
            Problem(
                ProblemCode.UNSUPPORTED_ASK,
                _where(r),
                f"the goal asks for {r.ask.title} ({asked}), which this design does not "
                f"provide: {r.note or 'the catalog cannot express it'}",
                "drop it from the goal (or reword it), wait for a catalog component that "
                "provides it, or set the org policy's unsupported_asks: warn to accept the "
                "design with this gap listed at the gate",
            )
        )
    return problems


def gap_risks(requirements: Sequence[Requirement]) -> list[Risk]:
    return [
        Risk(
            severity=RiskSeverity.HIGH,
            description=f"Asked but not designed: {r.ask.title} ('{r.source.text[:200]}'). "
            f"{r.note or ''}".strip(),
            mitigation="Accepted by the org policy (unsupported_asks: warn); a human provides "
            "it outside infra-crew, or drops it from the goal.",
        )
        for r in requirements
        if r.status is RequirementStatus.UNSUPPORTED
    ]


def uncovered_problems(requirements: Sequence[Requirement]) -> list[Problem]:
    """Asks the catalog could meet that the design leaves unmet (the LLM's retry feedback)."""
    return [
        Problem(
            ProblemCode.NOT_COVERED,
            _where(r),
            f"the goal asks for {r.ask.title} ('{r.source.text[:200]}') and the design does "
            f"not provide it: {r.note or 'no component meets it'}",
            f"add or size catalog components so that {r.ask.title} is met",
        )
        for r in requirements
        if r.status is RequirementStatus.UNSUPPORTED and catalog_can(r.ask.name)
    ]


def asked_vs_designed(requirements: Sequence[Requirement]) -> list[tuple[str, str, str, str]]:
    """(status, what was asked, where it was asked, what meets it or why not) per ask, the
    gaps first: what `crew show`, the console and the Slack message print, so nothing unmet
    is approved unseen. Atlas's own defaults (source 'default') are left to the assumptions."""
    order = {"unsupported": 0, "refused": 1, "assumed": 2, "met": 3}
    rows = []
    for r in requirements:
        if r.source.field == "default":
            continue
        asked = r.ask.title + (
            f" ({', '.join(f'{k} {v}' for k, v in r.ask.params.items() if k != 'service')})"
            if any(k != "service" for k in r.ask.params)
            else ""
        )
        where = r.source.field or f"'{r.source.text}'"
        designed = ", ".join(r.by) if r.status is RequirementStatus.MET and r.by else ""
        why = " ".join(x for x in (designed, r.note or "") if x)
        rows.append((r.status.value, asked, where, why))
    return sorted(rows, key=lambda row: order.get(row[0], 9))
