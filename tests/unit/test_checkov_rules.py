"""tools/checkov_rules: the console links every checkov finding to the file that defines its
rule, at the installed checkov version (offline checkov has no guideline URLs of its own)."""

from __future__ import annotations

from pathlib import Path

import checkov
import pytest
import yaml
from checkov.version import version

from api.web.views import rule_link
from schemas.validation import Finding, Severity
from tools.checkov import scan_in_process
from tools.checkov_rules import REPOSITORY, rule_source_url

PACKAGE = Path(checkov.__file__).parent
SEVERITY = Path(__file__).resolve().parents[2] / "sentinel" / "data" / "severity.yaml"


def _local(url: str) -> Path:
    """The installed file a URL names (the URL is the same path in the repository)."""
    prefix = f"{REPOSITORY}/{version}/checkov/"
    assert url.startswith(prefix), url
    return PACKAGE / url.removeprefix(prefix)


@pytest.mark.parametrize(
    ("check_id", "file"),
    [
        # a Python check sharing a base class: check_id="CKV_AWS_24"
        ("CKV_AWS_24", "terraform/checks/resource/aws/SecurityGroupUnrestrictedIngress22.py"),
        # a graph check: metadata.id in JSON
        ("CKV2_AWS_6", "terraform/checks/graph_checks/aws/S3BucketHasPublicAccessBlock.json"),
    ],
)
def test_a_rule_links_to_its_definition_at_this_version(check_id: str, file: str) -> None:
    url = rule_source_url(check_id)
    assert url == f"{REPOSITORY}/{version}/checkov/{file}"
    assert check_id in _local(url).read_text()


def test_an_unknown_rule_has_no_link() -> None:
    assert rule_source_url("CKV_AWS_999999") is None
    assert rule_source_url("not-a-rule") is None


def test_every_rule_sentinel_rates_has_a_link() -> None:
    rated = yaml.safe_load(SEVERITY.read_text())["checkov"]
    missing = [rule for rule in rated if rule_source_url(rule) is None]
    assert missing == []


def test_the_console_links_a_checkov_finding_to_its_rule(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'resource "aws_security_group" "ssh" {\n'
        "  ingress {\n"
        "    from_port   = 22\n"
        "    to_port     = 22\n"
        '    protocol    = "tcp"\n'
        '    cidr_blocks = ["0.0.0.0/0"]\n'
        "  }\n"
        "}\n"
    )
    (report,) = scan_in_process(tmp_path, None)
    assert report.failures
    for failure in report.failures:  # every rule checkov ran here has its file
        assert rule_source_url(failure.rule_id), failure.rule_id
    ssh = Finding(
        tool="checkov",
        rule_id="CKV_AWS_24",
        severity=Severity.CRITICAL,
        message="SSH open",
        guideline="SSH (22) open to 0.0.0.0/0",  # Sentinel's reason: text, kept as is
    )
    assert rule_link(ssh) == rule_source_url("CKV_AWS_24")
    given = ssh.model_copy(update={"guideline": "https://docs.example.com/ckv_aws_24"})
    assert rule_link(given) == "https://docs.example.com/ckv_aws_24"
    other = ssh.model_copy(update={"tool": "trivy", "guideline": None})
    assert rule_link(other) is None
