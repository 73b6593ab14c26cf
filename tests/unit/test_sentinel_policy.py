"""The org policy file: the documented default, overriding it, and errors that name the field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from schemas.inputs import InputError
from schemas.validation import Severity
from sentinel.policy import OrgPolicy, default_policy, load_policy


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_policy_is_the_shipped_file() -> None:
    policy = load_policy(None)
    assert policy == default_policy()
    assert policy.fail_on is Severity.HIGH
    assert policy.source is None
    assert {"aws_iam_user", "aws_iam_access_key", "null_resource"} <= set(
        policy.forbidden_resource_types
    )
    assert policy.waivers == []
    assert policy.max_monthly_usd is None


def test_a_file_states_only_what_it_changes(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    path = write(
        tmp_path,
        """
fail_on: CRITICAL
allowed_regions: [eu-west-1, eu-central-1]
required_tags: {owner: null, cost-center: "1234"}
max_monthly_usd: 500
custom_checks_dir: checks
waivers:
  - rule_id: CKV_AWS_18
    reason: "access logs go to the org trail"
    expires: 2027-06-30
""",
    )
    policy = load_policy(path)
    assert policy.fail_on is Severity.CRITICAL
    assert policy.required_tags == {"owner": None, "cost-center": "1234"}
    assert policy.waivers[0].expires == date(2027, 6, 30)
    assert policy.custom_checks_dir == (tmp_path / "checks").resolve()
    assert policy.source == str(path)
    # not stated: the default's value
    assert policy.forbidden_resource_types == default_policy().forbidden_resource_types


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("fail_on: SEVERE\n", "fail_on", "CRITICAL"),
        ("failon: HIGH\n", "failon", "did you mean 'fail_on'"),
        (
            "waivers:\n  - rule_id: CKV_AWS_1\n    expires: 2027-01-01\n",
            "waivers.0.reason",
            "required",
        ),
        (
            "waivers:\n  - rule_id: CKV_AWS_1\n    reason: a good reason here\n"
            "    expires: someday\n",
            "waivers.0.expires",
            "date",
        ),
        (
            "waivers:\n  - {rule_id: CREW_BUDGET_BRAKE, reason: please please, "
            "expires: 2030-01-01}\n",
            "waivers.0.rule_id",
            "cannot be waived",
        ),
        ("allowed_regions: [mars-north-1]\n", "allowed_regions", "unknown AWS region"),
        ("max_monthly_usd: -5\n", "max_monthly_usd", "greater than 0"),
        ("custom_checks_dir: nowhere\n", "custom_checks_dir", "not a directory"),
        ("version: 2\n", "version", "1"),
    ],
)
def test_mistakes_name_the_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        load_policy(write(tmp_path, text))
    problems = {p.field: f"{p.problem} {p.fix}" for p in caught.value.problems}
    assert field in problems, problems
    assert words in problems[field]


@pytest.mark.parametrize("text", ["fail_on: [unclosed\n", "- just\n- a list\n"])
def test_not_yaml_or_not_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError, match="policy file"):
        load_policy(write(tmp_path, text))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_every_default_field_is_documented_in_the_default_file() -> None:
    from sentinel.policy import default_policy_text

    text = default_policy_text()
    for name in OrgPolicy.model_fields:
        if name != "source":
            assert f"\n{name}:" in text, name
