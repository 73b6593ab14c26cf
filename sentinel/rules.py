"""The org policy's own checks on a plan: forbidden types, regions, required tags, cost ceiling.

Each returns the failures (as `CheckFailure`s with tool "policy", judged like any other
finding, so waivers apply) and one `PolicyResult` saying what was checked and how it went.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.validation import PolicyResult, Severity
from sentinel.planfile import (
    effective_tags,
    is_taggable,
    planned_resources,
    provider_default_tags,
    provider_regions,
)
from sentinel.policy import FORBIDDEN_TYPE, MAX_COST, REGION, REQUIRED_TAGS, OrgPolicy
from tools.scan import CheckFailure

Checked = tuple[list[CheckFailure], PolicyResult]


def _failure(rule: str, severity: Severity, resource: str | None, message: str) -> CheckFailure:
    return CheckFailure(
        tool="policy",
        rule_id=rule,
        resource=resource,
        message=message,
        source="plan",
        severity=severity,
        guideline="org policy (CREW_POLICY_FILE); see `crew validate --help`",
    )


def check_forbidden_types(plan: Mapping[str, Any], policy: OrgPolicy) -> Checked:
    forbidden = set(policy.forbidden_resource_types)
    failures = [
        _failure(
            FORBIDDEN_TYPE,
            Severity.CRITICAL,
            r.address,
            f"resource type {r.type} is forbidden by the org policy",
        )
        for r in planned_resources(plan)
        if r.remains and r.type in forbidden
    ]
    message = (
        f"{len(failures)} resource(s) of forbidden types"
        if failures
        else f"none of {len(forbidden)} forbidden types present"
    )
    return failures, PolicyResult(
        rule="forbidden_resource_types", passed=not failures, message=message
    )


def check_regions(plan: Mapping[str, Any], policy: OrgPolicy, fallback: str | None) -> Checked:
    allowed = policy.allowed_regions
    regions, unresolved = provider_regions(plan)
    if not regions and fallback:
        regions, unresolved = [fallback], False
    if not allowed:
        return [], PolicyResult(
            rule="allowed_regions", passed=True, message="any region allowed by the policy"
        )
    failures = [
        _failure(
            REGION,
            Severity.HIGH,
            None,
            f"region {r} is not allowed by the org policy (allowed: {', '.join(allowed)})",
        )
        for r in regions
        if r not in allowed
    ]
    if unresolved:
        failures.append(
            _failure(
                REGION,
                Severity.HIGH,
                None,
                "the AWS provider's region could not be determined from the plan, so the "
                "allowed-regions policy cannot be verified",
            )
        )
    message = "; ".join(f.message for f in failures) or f"region(s) {', '.join(regions)} allowed"
    return failures, PolicyResult(rule="allowed_regions", passed=not failures, message=message)


def check_required_tags(plan: Mapping[str, Any], required: Mapping[str, str | None]) -> Checked:
    if not required:
        return [], PolicyResult(rule="required_tags", passed=True, message="no tags required")
    defaults = provider_default_tags(plan)
    failures = []
    checked = 0
    for r in planned_resources(plan):
        if not r.remains or not is_taggable(r):
            continue
        checked += 1
        tags = effective_tags(r, defaults)
        problems = []
        for key, value in sorted(required.items()):
            if key not in tags:
                problems.append(f"missing tag '{key}'")
            elif value is not None and tags[key] != value:
                problems.append(f"tag '{key}' is '{tags[key]}', must be '{value}'")
        if problems:
            failures.append(_failure(REQUIRED_TAGS, Severity.HIGH, r.address, "; ".join(problems)))
    message = (
        f"{len(failures)} of {checked} taggable resource(s) lack required tags"
        if failures
        else f"{checked} taggable resource(s) carry {', '.join(sorted(required))}"
    )
    return failures, PolicyResult(rule="required_tags", passed=not failures, message=message)


def check_max_cost(forecast: float, policy: OrgPolicy) -> Checked:
    cap = policy.max_monthly_usd
    if cap is None:
        return [], PolicyResult(rule="max_monthly_usd", passed=True, message="no org ceiling")
    if forecast <= cap:
        return [], PolicyResult(
            rule="max_monthly_usd",
            passed=True,
            message=f"forecast ${forecast:,.2f}/month within the org ceiling ${cap:,.2f}",
        )
    message = f"forecast ${forecast:,.2f}/month exceeds the org ceiling ${cap:,.2f}/month"
    return [_failure(MAX_COST, Severity.HIGH, None, message)], PolicyResult(
        rule="max_monthly_usd", passed=False, message=message
    )
