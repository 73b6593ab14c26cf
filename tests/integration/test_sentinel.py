"""Sentinel on real plans: known-bad Terraform planned by the real terraform against moto fails
with the expected rules; `crew validate` (offline, a subprocess) with a custom checkov YAML
policy; exit codes 0 / 1 / 2. That every catalog render passes the default policy is checked
where the renders are planned (test_forge_render.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crew.container import build_sentinel
from crew.settings import Settings
from schemas.validation import ValidationReport, Verdict
from sentinel.engine import Subject
from tests.integration.test_cli import assert_exit, crew
from tests.unit.support import FIXTURES
from tools.process import run_process

pytestmark = pytest.mark.integration

BAD = FIXTURES / "terraform" / "bad"
GOLDEN = FIXTURES / "golden" / "object-storage"

#: The rules each known-bad case must fail (checkov ids and Sentinel's own policy rules).
EXPECTED = {
    "public_bucket": {"CKV_AWS_20", "CKV_AWS_57", "CKV2_AWS_6", "CKV_AWS_53"},
    "ssh_open": {"CKV_AWS_24"},
    "unencrypted_rds": {"CKV_AWS_16", "CKV_AWS_17"},
    "iam_admin_user": {"CKV_AWS_273", "CKV_AWS_274", "CREW_POLICY_FORBIDDEN_TYPE"},
}

#: A custom check in checkov's own YAML format, as an org would bring it.
CUSTOM_CHECK = """\
metadata:
  id: "CKV2_ACME_1"
  name: "Every bucket says how its data is classified"
  category: "GENERAL_SECURITY"
definition:
  cond_type: "attribute"
  resource_types: ["aws_s3_bucket"]
  attribute: "tags.data-classification"
  operator: "exists"
"""


async def plan_by_hand(terraform: Path, mirror: Path, workspace: Path) -> dict[str, Any]:
    env = {**os.environ, "HOME": str(workspace), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}

    async def tf(*args: str) -> str:
        done = await run_process([str(terraform), *args], cwd=workspace, env=env, timeout_s=300)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    await tf("init", "-input=false", "-no-color", f"-plugin-dir={mirror}")
    await tf("plan", "-input=false", "-no-color", "-out=bad.tfplan")
    shown: dict[str, Any] = json.loads(await tf("show", "-json", "bad.tfplan"))
    return shown


async def test_known_bad_terraform_planned_against_moto_fails_with_the_expected_rules(
    make_settings: Callable[..., Settings], aws_env: dict[str, str], tmp_path: Path, trivy_bin: Path
) -> None:
    settings = make_settings()
    sentinel = build_sentinel(settings, dict(os.environ))
    assert settings.terraform_bin is not None
    assert settings.tf_plugin_dir is not None
    seen: dict[str, set[str]] = {}
    for case, expected in EXPECTED.items():
        workspace = tmp_path / case
        shutil.copytree(BAD / case, workspace)
        # Forge's runner refuses to run terraform on anything outside the catalog (its guard),
        # so the known-bad configurations are planned with the terraform CLI itself.
        shown = await plan_by_hand(settings.terraform_bin, settings.tf_plugin_dir, workspace)
        plan_json = workspace / "plan.json"
        plan_json.write_text(json.dumps(shown), encoding="utf-8")

        report = await sentinel.validate(
            Subject(
                plan_id=case,
                plan_json=shown,
                plan_json_path=plan_json,
                hcl_dir=workspace,
                budget_monthly_usd=None,
                region="eu-west-1",
            ),
            datetime.now(UTC),
        )
        assert report.verdict is Verdict.FAIL, (case, report.reasons)
        assert "trivy" in report.checks_run, report.checks_run
        found = {f.rule_id for f in report.findings}
        assert expected <= found, (case, sorted(found))
        blocking = {f.rule_id for f in report.findings if f.blocking}
        assert blocking & expected, (case, sorted(blocking))
        # each finding names its resource, and the plan and the HCL both saw checkov's
        for finding in report.findings:
            if finding.tool == "checkov" and finding.rule_id in expected:
                assert finding.resource is not None
                assert finding.resource.split(".")[0].startswith("aws_")
                assert finding.sources == ["hcl", "plan"], finding
        seen[case] = found
    assert set(seen) == set(EXPECTED)


def test_crew_validate_with_a_custom_checkov_yaml_policy(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREW_", "AWS_"))}
    env.update({"CREW_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    workspace = tmp_path / "object-storage"
    shutil.copytree(GOLDEN, workspace)

    # the default policy: the object-storage render passes (below HIGH only), exit 0
    passed = crew(env, "validate", workspace, "--budget", "20", "--json")
    assert_exit(passed, 0)
    report = ValidationReport.model_validate_json(passed.stdout)
    assert report.verdict is Verdict.PASS
    assert "checkov:hcl" in report.checks_run

    # the org's own check, in checkov's YAML format, made blocking by the policy file
    checks = tmp_path / "policy" / "checks"
    checks.mkdir(parents=True)
    (checks / "data_classification.yaml").write_text(CUSTOM_CHECK, encoding="utf-8")
    policy = tmp_path / "policy" / "policy.yaml"
    policy.write_text(
        "custom_checks_dir: checks\nseverity_overrides: {CKV2_ACME_1: HIGH}\n", encoding="utf-8"
    )
    failed = crew(env, "validate", workspace, "--budget", "20", "--policy", policy, "--json")
    assert_exit(failed, 1)
    report = ValidationReport.model_validate_json(failed.stdout)
    assert report.verdict is Verdict.FAIL
    assert report.policy_file == str(policy)
    custom = [f for f in report.findings if f.rule_id == "CKV2_ACME_1"]
    assert all(f.blocking for f in custom)
    assert {f.resource for f in custom} == {
        "aws_s3_bucket.objects",
        "aws_s3_bucket.stack_access_logs",
    }
    assert any(c.startswith("checkov:custom(") for c in report.checks_run)

    # the human summary names the rule; a budget the forecast breaks fails the brake too
    human = crew(env, "validate", workspace, "--budget", "1", "--policy", policy)
    assert_exit(human, 1)
    assert "CKV2_ACME_1" in human.stdout
    assert "budget brake" in human.stdout

    # a policy with a mistake is bad input: exit 2, the field named, no traceback
    broken = tmp_path / "policy" / "broken.yaml"
    broken.write_text("fail_on: SOMETIMES\n", encoding="utf-8")
    bad = crew(env, "validate", workspace, "--policy", broken)
    assert_exit(bad, 2)
    assert "fail_on" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
