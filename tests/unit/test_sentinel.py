"""Sentinel's verdict: the 80 % brake, severity threshold, waivers, org policy, de-duplication.

checkov is replaced by a stand-in returning given failures (its real runs are in
test_checkov_offline.py and the integration tests); pricing is the real built-in table.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from schemas.validation import Severity, Verdict
from sentinel.policy import OrgPolicy, Waiver, default_policy
from tests.unit.sentinel_support import AT, change, failure, plan_doc, sentinel, subject

DB = {"engine": "postgres", "instance_class": "db.t4g.micro", "allocated_storage": 20}
#: us-east-1 list prices: db 730 h x $0.016 + 20 GB x $0.115 = $13.98; key $1; secret $0.40;
#: one alarm $0.10. Total $15.48: exactly 80 % of $19.35.
PRICED = plan_doc(
    change("aws_db_instance.db", DB),
    change("aws_kms_key.data"),
    change("aws_secretsmanager_secret.token"),
    change("aws_cloudwatch_metric_alarm.cpu"),
)


async def test_forecast_exactly_at_80_percent_passes() -> None:
    report = await sentinel().validate(subject(PRICED, budget=19.35), AT)
    assert report.cost.monthly_usd == 15.48
    brake = report.budget_brake
    assert brake is not None
    assert brake.passed
    assert (brake.forecast_monthly_usd, brake.limit_monthly_usd, brake.cap_monthly_usd) == (
        15.48,
        15.48,
        19.35,
    )
    assert report.verdict is Verdict.PASS
    assert "budget_brake" in report.checks_run


async def test_a_cent_above_80_percent_fails_and_names_forecast_cap_and_top_three() -> None:
    report = await sentinel().validate(subject(PRICED, budget=19.34), AT)
    assert report.verdict is Verdict.FAIL
    brake = report.budget_brake
    assert brake is not None
    assert not brake.passed
    assert brake.limit_monthly_usd == 15.47
    first = report.findings[0]
    assert (first.tool, first.rule_id, first.severity, first.blocking) == (
        "budget",
        "CREW_BUDGET_BRAKE",
        Severity.CRITICAL,
        True,
    )
    assert "forecast $15.48/month exceeds $15.47 (80 % of $19.34)" in first.message
    assert (
        "aws_db_instance.db $13.98, aws_kms_key.data $1.00, aws_secretsmanager_secret.token $0.40"
        in first.message
    )
    assert "alarm" not in first.message
    assert [r.address for r in brake.top_resources] == [
        "aws_db_instance.db",
        "aws_kms_key.data",
        "aws_secretsmanager_secret.token",
    ]
    assert report.reasons[0] == first.message


@pytest.mark.parametrize(
    ("budget", "verdict"), [(1000, Verdict.PASS), (19.36, Verdict.PASS), (10, Verdict.FAIL)]
)
async def test_brake_around_80_percent(budget: float, verdict: Verdict) -> None:
    report = await sentinel().validate(subject(PRICED, budget=budget), AT)
    assert report.verdict is verdict


async def test_the_brake_is_not_waivable() -> None:
    with pytest.raises(ValueError, match="cannot be waived"):
        Waiver(rule_id="CREW_BUDGET_BRAKE", reason="we need it anyway", expires=date(2099, 1, 1))
    lenient = default_policy().model_copy(update={"fail_on": Severity.CRITICAL})
    report = await sentinel(policy=lenient).validate(subject(PRICED, budget=10), AT)
    assert report.verdict is Verdict.FAIL
    assert report.findings[0].rule_id == "CREW_BUDGET_BRAKE"


async def test_not_priced_resources_are_listed_and_named_in_the_brake() -> None:
    doc = plan_doc(change("aws_db_instance.db", DB), change("aws_quantum_widget.q"))
    report = await sentinel().validate(subject(doc, budget=10), AT)
    assert report.cost.not_priced == ["aws_quantum_widget.q"]
    widget = next(r for r in report.cost.per_resource if r.type == "aws_quantum_widget")
    assert widget.monthly_usd is None
    assert "no price" in widget.basis
    assert "1 resource(s) not priced and not counted" in report.findings[0].message


async def test_no_budget_means_no_brake_and_says_so() -> None:
    report = await sentinel().validate(subject(PRICED, budget=None), AT)
    assert report.budget_brake is None
    assert "budget_brake" not in report.checks_run
    assert any("brake was not evaluated" in r for r in report.reasons)


# -- severity threshold and the mapping ---------------------------------------------------


@pytest.mark.parametrize(
    ("fail_on", "verdict"),
    [
        (Severity.HIGH, Verdict.FAIL),
        (Severity.CRITICAL, Verdict.PASS),
        (Severity.MEDIUM, Verdict.FAIL),
    ],
)
async def test_severity_threshold(fail_on: Severity, verdict: Verdict) -> None:
    policy = default_policy().model_copy(update={"fail_on": fail_on})
    # CKV_AWS_16 (unencrypted RDS) is HIGH in sentinel/data/severity.yaml
    report = await sentinel(failure("CKV_AWS_16"), policy=policy).validate(subject(PRICED), AT)
    (finding,) = report.findings
    assert finding.severity is Severity.HIGH
    assert report.verdict is verdict
    assert finding.blocking is (verdict is Verdict.FAIL)


async def test_unmapped_checkov_rules_get_the_default_and_medium_fails_only_when_asked() -> None:
    report = await sentinel(failure("CKV_AWS_9999")).validate(subject(PRICED), AT)
    assert report.findings[0].severity is Severity.MEDIUM
    assert report.verdict is Verdict.PASS
    assert report.reasons[0].startswith("passed: no finding at or above HIGH (1 below")


async def test_policy_severity_override_wins() -> None:
    policy = default_policy().model_copy(
        update={"severity_overrides": {"CKV_AWS_18": Severity.CRITICAL}}
    )
    report = await sentinel(failure("CKV_AWS_18"), policy=policy).validate(subject(PRICED), AT)
    assert report.findings[0].severity is Severity.CRITICAL
    assert report.verdict is Verdict.FAIL


# -- waivers ----------------------------------------------------------------------------------


def waived(expires: date, resources: list[str] | None = None) -> OrgPolicy:
    waiver = Waiver(
        rule_id="CKV_AWS_16",
        reason="legacy database, encrypted copy in migration (TICKET-42)",
        expires=expires,
        resources=resources or [],
    )
    return default_policy().model_copy(update={"waivers": [waiver]})


async def test_a_valid_waiver_waives() -> None:
    report = await sentinel(failure("CKV_AWS_16"), policy=waived(date(2026, 11, 24))).validate(
        subject(PRICED), AT
    )
    (finding,) = report.findings
    assert finding.waived
    assert not finding.blocking
    assert finding.waiver_expires == date(2026, 11, 24)  # the last day still counts
    assert "TICKET-42" in (finding.waiver_reason or "")
    assert report.verdict is Verdict.PASS
    assert "1 waived" in report.reasons[0]


async def test_an_expired_waiver_no_longer_waives_and_says_so() -> None:
    report = await sentinel(failure("CKV_AWS_16"), policy=waived(date(2026, 11, 23))).validate(
        subject(PRICED), AT
    )
    (finding,) = report.findings
    assert not finding.waived
    assert finding.blocking
    assert finding.waiver_reason is not None
    assert finding.waiver_reason.startswith("waiver expired on 2026-11-23")
    assert report.verdict is Verdict.FAIL


async def test_a_waiver_limited_to_resources_covers_only_those() -> None:
    policy = waived(date(2099, 1, 1), resources=["aws_db_instance.other"])
    report = await sentinel(failure("CKV_AWS_16"), policy=policy).validate(subject(PRICED), AT)
    assert report.findings[0].blocking
    policy = waived(date(2099, 1, 1), resources=["aws_db_instance.db"])
    report = await sentinel(failure("CKV_AWS_16", "aws_db_instance.db[0]"), policy=policy).validate(
        subject(PRICED), AT
    )
    assert report.findings[0].waived  # an instance of a waived block is waived


HTTP_ONLY = plan_doc(
    change("aws_lb_listener.lb", {"port": 80, "protocol": "HTTP"}),
    change("aws_s3_bucket.objects"),
)


@pytest.mark.parametrize(
    ("render_waivers", "forge_render", "verdict"),
    [
        ("all", True, Verdict.PASS),
        ("all", False, Verdict.FAIL),  # hand-written Terraform (`crew validate`): no waivers
        ("design", True, Verdict.FAIL),  # an HTTP listener is a parameter choice
        ("none", True, Verdict.FAIL),
    ],
)
async def test_forge_render_waivers_cover_only_a_forge_render_and_only_their_types(
    render_waivers: str, forge_render: bool, verdict: Verdict
) -> None:
    policy = default_policy().model_copy(update={"render_waivers": render_waivers})
    report = await sentinel(
        failure("CKV_AWS_103", "aws_lb_listener.lb"),
        # a documented bucket waiver never covers a listener, nor a rule on another type
        failure("CKV2_AWS_62", "aws_s3_bucket.objects"),
        policy=policy,
    ).validate(subject(HTTP_ONLY, forge_render=forge_render), AT)
    assert report.verdict is verdict
    listener = next(f for f in report.findings if f.rule_id == "CKV_AWS_103")
    assert listener.severity is Severity.HIGH
    assert listener.waived is (verdict is Verdict.PASS)
    if listener.waived:
        assert (listener.waiver_reason or "").startswith("Forge render waiver (parameter): ")


async def test_a_render_waiver_is_never_a_blanket_one() -> None:
    policy = default_policy().with_render_waivers(HTTP_ONLY)
    listener_waivers = [w for w in policy.waivers if w.rule_id == "CKV_AWS_103"]
    assert [w.resources for w in listener_waivers] == [["aws_lb_listener.lb"]]
    # no database in the plan: no database waiver at all (an empty list would mean "all")
    assert not [w for w in policy.waivers if w.rule_id == "CKV_AWS_157"]
    assert all(w.resources for w in policy.waivers)


# -- de-duplication: HCL and plan, stricter verdict -------------------------------------------


async def test_hcl_and_plan_failures_of_one_rule_and_resource_are_one_finding() -> None:
    s = sentinel(
        failure("CKV_AWS_16", "aws_db_instance.db", "hcl"),
        failure("CKV_AWS_16", "aws_db_instance.db", "plan"),
        failure("CKV_AWS_24", "aws_security_group.ssh", "hcl"),
        failure("CKV_AWS_8", "aws_instance.web[0]", "plan"),
        failure("CKV_AWS_8", "aws_instance.web[1]", "plan"),
        failure("CKV_AWS_8", "aws_instance.web", "hcl"),
    )
    report = await s.validate(subject(PRICED), AT)
    found = sorted((f.rule_id, f.resource, tuple(f.sources)) for f in report.findings)
    assert found == [
        ("CKV_AWS_16", "aws_db_instance.db", ("hcl", "plan")),
        ("CKV_AWS_24", "aws_security_group.ssh", ("hcl",)),  # only one input saw it: it counts
        ("CKV_AWS_8", "aws_instance.web[0]", ("hcl", "plan")),
        ("CKV_AWS_8", "aws_instance.web[1]", ("hcl", "plan")),
    ]
    assert next(f.rule_id for f in report.findings) == "CKV_AWS_24"  # CRITICAL first


# -- org policy rules -------------------------------------------------------------------------


async def test_forbidden_types_fail_unless_the_plan_deletes_them() -> None:
    doc = plan_doc(
        change("aws_iam_user.admin", {"name": "admin"}),
        change("aws_iam_access_key.old", None, ["delete"], before={"user": "x"}),
    )
    report = await sentinel().validate(subject(doc), AT)
    forbidden = [f for f in report.findings if f.rule_id == "CREW_POLICY_FORBIDDEN_TYPE"]
    assert [(f.resource, f.severity) for f in forbidden] == [
        ("aws_iam_user.admin", Severity.CRITICAL)
    ]
    assert "aws_iam_user is forbidden" in forbidden[0].message
    assert report.verdict is Verdict.FAIL
    result = next(p for p in report.policy if p.rule == "forbidden_resource_types")
    assert not result.passed


async def test_allowed_regions() -> None:
    policy = default_policy().model_copy(update={"allowed_regions": ["eu-west-1"]})
    report = await sentinel(policy=policy).validate(subject(PRICED), AT)  # plan is us-east-1
    (region,) = [f for f in report.findings if f.rule_id == "CREW_POLICY_REGION"]
    assert "us-east-1 is not allowed" in region.message
    assert region.blocking
    ok = await sentinel(policy=policy).validate(subject(plan_doc(region="eu-west-1")), AT)
    assert ok.verdict is Verdict.PASS


async def test_required_tags_from_policy_and_goal_with_provider_default_tags() -> None:
    tagged: dict[str, Any] = {"tags": {"team": "core"}, "tags_all": None}
    doc = plan_doc(
        change("aws_sqs_queue.jobs", {**tagged}),
        change("aws_sqs_queue.other", {"tags": None}),
        change("aws_iam_role_policy.x", {"policy": "{}"}),  # not taggable
        default_tags={"owner": "ops"},
    )
    policy = default_policy().model_copy(update={"required_tags": {"owner": None, "team": "core"}})
    report = await sentinel(policy=policy).validate(subject(doc, required_tags={"env": "dev"}), AT)
    tags = {
        f.resource: f.message for f in report.findings if f.rule_id == "CREW_POLICY_REQUIRED_TAGS"
    }
    assert tags == {
        "aws_sqs_queue.jobs": "missing tag 'env'",
        "aws_sqs_queue.other": "missing tag 'env'; missing tag 'team'",
    }


async def test_org_cost_ceiling_is_a_waivable_policy_finding() -> None:
    policy = default_policy().model_copy(update={"max_monthly_usd": 15.0})
    report = await sentinel(policy=policy).validate(subject(PRICED, budget=1000), AT)
    (ceiling,) = [f for f in report.findings if f.rule_id == "CREW_POLICY_MAX_COST"]
    assert "exceeds the org ceiling $15.00" in ceiling.message
    assert ceiling.blocking
    waiver = Waiver(
        rule_id="CREW_POLICY_MAX_COST", reason="approved by finance (Q4)", expires=date(2099, 1, 1)
    )
    report = await sentinel(policy=policy.model_copy(update={"waivers": [waiver]})).validate(
        subject(PRICED, budget=1000), AT
    )
    assert report.verdict is Verdict.PASS


async def test_rego_policies_without_conftest_fail_closed(tmp_path: Any) -> None:
    policy = default_policy().model_copy(update={"rego_dir": tmp_path})
    report = await sentinel(policy=policy).validate(subject(PRICED), AT)
    (f,) = [f for f in report.findings if f.rule_id == "CREW_POLICY_REGO_UNAVAILABLE"]
    assert "conftest is not installed" in f.message
    assert f.blocking


async def test_findings_are_ordered_blocking_then_severity() -> None:
    s = sentinel(
        failure("CKV2_AWS_62"), failure("CKV_AWS_16"), failure("CKV_AWS_17"), failure("CKV_AWS_18")
    )
    report = await s.validate(subject(PRICED), AT)
    assert [f.rule_id for f in report.findings] == [
        "CKV_AWS_17",
        "CKV_AWS_16",
        "CKV_AWS_18",
        "CKV2_AWS_62",
    ]
    assert report.reasons == [
        "2 finding(s) at or above HIGH: CKV_AWS_17 on aws_db_instance.db (CRITICAL), "
        "CKV_AWS_16 on aws_db_instance.db (HIGH)"
    ]
