"""Forge's accepted risks (tools/render/waivers.py): one row per risk, waived alike under every
scanner that reports it, and rated alike so the installed scanners never change a verdict.

The live proof (real checkov and trivy on every workload kind's render) is
tests/integration/test_scanner_matrix.py; here the table and its reading by the policy.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from schemas.inputs import InputError
from schemas.validation import Severity, Verdict
from sentinel.policy import SEVERITY_ORDER, at_least, default_policy, load_policy
from sentinel.severity import severity_table
from tests.unit.sentinel_support import AT, change, failure, plan_doc, sentinel, subject
from tools.render.waivers import ACCEPTED_RISKS, SCANNER_COLUMN, risks_by_name, risks_by_rule
from tools.scan import CheckFailure
from tools.trivy import aqua_check_id, parse_tfsec_json

ID_FORMAT = {"checkov": re.compile(r"CKV2?_AWS_\d+"), "aqua": re.compile(r"AWS-\d{4}")}
CDN = plan_doc(change("aws_cloudfront_distribution.cdn"), change("aws_s3_bucket.site"))


def tool_failure(tool: str, rule: str, resource: str, severity: Severity | None) -> CheckFailure:
    return replace(failure(rule, resource, "hcl"), tool=tool, severity=severity)


def test_one_row_per_risk_each_id_in_its_scanners_format() -> None:
    assert len(risks_by_name()) == len(ACCEPTED_RISKS)
    assert len(risks_by_rule()) == sum(len(r.rule_ids()) for r in ACCEPTED_RISKS)
    for risk in ACCEPTED_RISKS:
        assert risk.rule_ids(), risk
        for scanner, column in SCANNER_COLUMN.items():
            for rule in risk.rule_ids(scanner):
                assert ID_FORMAT[column].fullmatch(rule), (scanner, rule)
    # trivy and tfsec run Aqua's checks: one column serves both
    cdn = risks_by_name()["cdn-without-waf"]
    assert cdn.rule_ids("trivy") == cdn.rule_ids("tfsec") == ("AWS-0011",)
    assert cdn.rule_ids("checkov") == ("CKV_AWS_68", "CKV2_AWS_47")


def test_a_risk_only_optional_scanners_see_never_blocks_on_its_own() -> None:
    """checkov always runs; a risk only trivy/tfsec report must not fail a run that checkov
    alone would pass, even when a policy drops the render waivers (the project rates it in
    sentinel/data/severity.yaml, whatever the tool says)."""
    table = severity_table()
    threshold = default_policy().fail_on
    for risk in ACCEPTED_RISKS:
        if risk.checkov or not risk.aqua:
            continue
        for rule in risk.aqua:
            rated = table.rate(rule, Severity.CRITICAL)  # the tool's word must not count
            assert not at_least(rated.severity, threshold), (risk.name, rule, rated)


def test_a_risk_both_see_is_rated_alike_where_the_project_rates_it() -> None:
    table = severity_table()
    for risk in ACCEPTED_RISKS:
        if not (risk.checkov and risk.aqua):
            continue
        checkov = max((table.rate(r, None).severity for r in risk.checkov), key=SEVERITY_ORDER.get)
        for rule in risk.aqua:
            if rule in table.overrides:
                assert table.overrides[rule].severity is checkov, (risk.name, rule)


def test_aqua_ids_read_alike_from_trivy_and_tfsec_and_in_a_policy(tmp_path: Path) -> None:
    assert aqua_check_id("AWS-0011") == aqua_check_id("AVD-AWS-0011") == "AWS-0011"
    doc = '{"results": [{"rule_id": "AVD-AWS-0011", "severity": "HIGH", "status": 0}]}'
    assert parse_tfsec_json(doc).failures[0].rule_id == "AWS-0011"
    # a policy written for tfsec's spelling keeps working
    file = tmp_path / "policy.yaml"
    file.write_text(
        "waivers:\n"
        "  - {rule_id: AVD-AWS-0107, reason: bastion ticket OPS-1, expires: 2099-01-01}\n"
        "severity_overrides: {AVD-AWS-0178: LOW}\n",
        encoding="utf-8",
    )
    policy = load_policy(file)
    assert policy.waivers[0].rule_id == "AWS-0107"
    assert policy.severity_overrides == {"AWS-0178": Severity.LOW}


def test_one_risk_gives_every_scanners_id_the_same_waiver() -> None:
    policy = default_policy().with_render_waivers(CDN)
    waivers = {w.rule_id: w for w in policy.waivers}
    for rule in ("CKV_AWS_68", "CKV2_AWS_47", "AWS-0011"):
        assert waivers[rule].resources == ["aws_cloudfront_distribution.cdn"], rule
        assert waivers[rule].reason == "Forge render waiver (design): WAF is not in the catalog"


@pytest.mark.parametrize(
    "scanners",
    [("checkov",), ("checkov", "trivy"), ("checkov", "tfsec"), ("checkov", "trivy", "tfsec")],
)
async def test_the_verdict_on_a_render_is_the_same_whichever_scanners_report(
    scanners: tuple[str, ...],
) -> None:
    reported = {
        "checkov": [failure("CKV_AWS_68", "aws_cloudfront_distribution.cdn")],
        "trivy": [
            tool_failure("trivy", "AWS-0011", "aws_cloudfront_distribution.cdn", Severity.HIGH)
        ],
        "tfsec": [
            tool_failure("tfsec", "AWS-0011", "aws_cloudfront_distribution.cdn", Severity.HIGH)
        ],
    }
    failures = [f for s in scanners for f in reported[s]]
    report = await sentinel(*failures).validate(subject(CDN, forge_render=True), AT)
    assert report.verdict is Verdict.PASS, report.reasons
    assert {f.tool for f in report.findings} == set(scanners)
    assert all(f.waived and not f.blocking for f in report.findings)
    assert {f.waiver_reason for f in report.findings} == {
        "Forge render waiver (design): WAF is not in the catalog"
    }
    # dropping the waivers: each scanner's finding is rated LOW (the project's rating), so
    # the verdict still does not depend on which scanners ran
    strict = default_policy().model_copy(update={"render_waivers": "none"})
    report = await sentinel(*failures, policy=strict).validate(subject(CDN, forge_render=True), AT)
    assert report.verdict is Verdict.PASS
    assert {f.severity for f in report.findings} == {Severity.LOW}


async def test_hand_written_terraform_gets_no_accepted_risk() -> None:
    found = tool_failure("trivy", "AWS-0054", "aws_lb_listener.lb", Severity.CRITICAL)
    report = await sentinel(found).validate(subject(CDN, forge_render=False), AT)
    assert report.verdict is Verdict.FAIL
    assert not report.findings[0].waived


async def test_the_orgs_own_rule_ids_join_an_accepted_risk(tmp_path: Path) -> None:
    """Conftest runs the org's Rego: the org names which of its rules flag which risk."""
    file = tmp_path / "policy.yaml"
    file.write_text("accepted_risk_rules:\n  cdn-without-waf: [ORG_CDN_WAF]\n", encoding="utf-8")
    policy = load_policy(file)
    rego = tool_failure("conftest", "ORG_CDN_WAF", "aws_cloudfront_distribution.cdn", None)
    rego = replace(rego, severity=Severity.HIGH, source="plan")
    report = await sentinel(rego, policy=policy).validate(subject(CDN, forge_render=True), AT)
    assert report.verdict is Verdict.PASS
    (finding,) = report.findings
    assert finding.waived
    assert finding.waiver_reason == "Forge render waiver (design): WAF is not in the catalog"
    # without the mapping it fails, as the org's policy says
    report = await sentinel(rego).validate(subject(CDN, forge_render=True), AT)
    assert report.verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accepted_risk_rules:\n  no-such-risk: [X]\n", "unknown accepted risk(s): no-such-risk"),
        ("accepted_risk_rules:\n  cdn-without-waf: [CREW_BUDGET_BRAKE]\n", "cannot be waived"),
    ],
)
def test_a_bad_accepted_risk_mapping_is_refused_naming_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    file = tmp_path / "policy.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_policy(file)
    assert "accepted_risk_rules" in str(caught.value)
    assert message in str(caught.value)
