"""Parsers of scanner output, on recorded (trivy, checkov) and documented-format fixtures."""

from __future__ import annotations

import json

import pytest

from schemas.errors import ToolError
from schemas.validation import Severity
from tests.unit.support import FIXTURES
from tools.checkov import parse_cli_json
from tools.infracost import parse_infracost_json
from tools.opa import parse_conftest_json
from tools.trivy import parse_tfsec_json, parse_trivy_json

SCANNERS = FIXTURES / "scanners"


def text(name: str) -> str:
    return (SCANNERS / name).read_text(encoding="utf-8")


def test_trivy_recorded_output() -> None:
    report = parse_trivy_json(text("trivy.json"))
    found = {(f.rule_id, f.resource, f.severity) for f in report.failures}
    assert ("AWS-0107", "aws_security_group.ssh", Severity.HIGH) in found
    assert ("AWS-0178", "aws_vpc.main", Severity.MEDIUM) in found
    assert all(f.tool == "trivy" and f.source == "hcl" for f in report.failures)
    assert report.passed > 0


def test_tfsec_documented_output_skips_passed_results() -> None:
    report = parse_tfsec_json(text("tfsec.json"))
    assert [(f.rule_id, f.resource, f.severity) for f in report.failures] == [
        ("AWS-0107", "aws_security_group.ssh", Severity.CRITICAL),
        ("AWS-0178", "aws_vpc.main", Severity.MEDIUM),
    ]  # Aqua's id as trivy prints it: one id per check, whichever tool ran it
    assert report.failures[0].guideline == "Set a more restrictive cidr range"
    assert parse_tfsec_json('{"results": null}').failures == []


def test_checkov_cli_recorded_output() -> None:
    (report,) = parse_cli_json(text("checkov-cli.json"))
    rules = {(f.rule_id, f.resource) for f in report.failures}
    assert ("CKV_AWS_24", "aws_security_group.ssh") in rules
    assert all(f.source == "hcl" and f.severity is None for f in report.failures)
    assert report.passed > 0
    # several frameworks print a list of reports; "nothing to scan" prints a bare summary
    doubled = json.dumps([json.loads(text("checkov-cli.json"))] * 2)
    assert len(parse_cli_json(doubled)) == 2
    assert parse_cli_json('{"passed": 0, "failed": 0}') == []


def test_conftest_documented_output() -> None:
    report = parse_conftest_json(text("conftest.json"), deny_severity=Severity.CRITICAL)
    assert [(f.rule_id, f.resource, f.severity) for f in report.failures] == [
        ("ORG_NO_PUBLIC_SSH", "aws_security_group.ssh", Severity.CRITICAL),
        ("main.deny", None, Severity.CRITICAL),
        ("main.warn", None, Severity.LOW),
    ]
    assert report.passed == 4


def test_infracost_documented_output() -> None:
    b = parse_infracost_json(text("infracost.json"))
    assert b.total_monthly_usd == 16.644
    assert b.past_total_monthly_usd == 0
    assert [(r.address, r.monthly_usd) for r in b.resources] == [
        ("aws_db_instance.db", 16.644),
        ("aws_sqs_queue.jobs", None),
    ]
    assert b.free_types == {"aws_security_group"}
    assert b.unsupported_types == {"aws_quantum_widget"}


@pytest.mark.parametrize(
    "parse",
    [parse_trivy_json, parse_tfsec_json, parse_conftest_json, parse_infracost_json, parse_cli_json],
)
def test_garbage_is_a_tool_error(parse: object) -> None:
    with pytest.raises(ToolError):
        parse("not json")  # type: ignore[operator]
