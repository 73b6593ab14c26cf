"""From tools' failed checks to the report's findings: de-duplicated, rated, waived, judged.

checkov runs on both the .tf files and the plan JSON. Each sees things the other misses (the
plan has resolved values and instances; the HCL has the references the plan shows as "known
after apply"), so a rule failing on either input fails: per rule and resource the stricter
verdict is kept, and the finding records both sources. A plan instance (`aws_subnet.a[0]`)
and its HCL block (`aws_subnet.a`) are the same resource.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from schemas.validation import Finding
from sentinel.policy import SEVERITY_ORDER, UNWAIVABLE, OrgPolicy, at_least
from sentinel.severity import SeverityTable
from tools.scan import CheckFailure, base_address


def deduplicate(failures: Iterable[CheckFailure]) -> list[tuple[CheckFailure, list[str]]]:
    """One entry per (tool, rule, resource), with the inputs that showed it.

    Plan instances are kept apart (each is a real resource); an HCL failure on a block is
    folded into the plan failures of its instances, and stands alone when the plan had none.
    """
    groups: dict[tuple[str, str, str | None], list[CheckFailure]] = {}
    for f in failures:
        groups.setdefault((f.tool, f.rule_id, base_address(f.resource)), []).append(f)
    merged: list[tuple[CheckFailure, list[str]]] = []
    for group in groups.values():
        sources = sorted({f.source for f in group})
        plan = [f for f in group if f.source == "plan"]
        chosen: dict[str | None, CheckFailure] = {}
        for f in plan or group:
            chosen.setdefault(f.resource, f)
        merged += [(f, sources) for f in chosen.values()]
    return merged


def judge(
    failure: CheckFailure,
    sources: list[str],
    *,
    policy: OrgPolicy,
    table: SeverityTable,
    today: date,
) -> Finding:
    """Rate one failure and decide whether it is waived and whether it alone fails the run."""
    rated = table.rate(failure.rule_id, failure.severity, policy.severity_overrides)
    waiver = None
    expired = None
    if failure.rule_id not in UNWAIVABLE:
        resource_keys = {failure.resource, base_address(failure.resource)}
        for key in resource_keys:
            waiver = waiver or policy.waiver_for(failure.rule_id, key, today)
            expired = expired or policy.expired_waiver_for(failure.rule_id, key, today)
    blocking = failure.rule_id in UNWAIVABLE or (
        waiver is None and at_least(rated.severity, policy.fail_on)
    )
    reason: str | None = None
    expires = None
    if waiver is not None:
        reason, expires = waiver.reason, waiver.expires
    elif expired is not None:
        reason = f"waiver expired on {expired.expires.isoformat()}: {expired.reason}"
        expires = expired.expires
    return Finding(
        tool=failure.tool,
        rule_id=failure.rule_id,
        severity=rated.severity,
        resource=failure.resource,
        message=failure.message,
        guideline=failure.guideline or rated.why,
        waived=waiver is not None,
        waiver_reason=reason,
        waiver_expires=expires,
        blocking=blocking,
        sources=sources,
    )


def judge_all(
    failures: Iterable[CheckFailure], *, policy: OrgPolicy, table: SeverityTable, today: date
) -> list[Finding]:
    findings = [
        judge(f, sources, policy=policy, table=table, today=today)
        for f, sources in deduplicate(failures)
    ]
    return sort_findings(findings)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Blocking first, then most severe, then waived last; stable by tool, rule, resource."""
    return sorted(
        findings,
        key=lambda f: (
            not f.blocking,
            f.waived,
            -SEVERITY_ORDER[f.severity],
            f.tool,
            f.rule_id,
            f.resource or "",
        ),
    )
