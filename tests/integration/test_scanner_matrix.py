"""The scanner matrix: each catalog workload kind, end to end, with checkov and trivy both active
reaches the gate with PASS (and so it does with checkov alone); known-bad configurations FAIL
under each scanner, Forge's accepted risks notwithstanding.

End to end is the product path: a goal submitted, driven by a worker through Atlas (catalog
planner), Forge (render, terraform plan against moto) and Sentinel (built from settings: trivy
found on PATH as the dev extras install it, tests/conftest.py) to the approval gate. The run's
workspace and plan JSON are then judged again by a checkov-only Sentinel, as on a machine
without trivy. The known-bad configurations need no plan: both scanners read their HCL.

"Verdict under a scanner set" counts the blocking findings of those scanners plus Sentinel's
own rules (org policy, budget), which run whatever is installed. Each case records its row in
build/test-artifacts/scanner-matrix/ for the matrix table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crew.container import Services, build_sentinel
from crew.service import run_detail, submit_goal
from crew.settings import Settings
from crew.worker import Worker
from nodes.atlas import plan_goal
from schemas.goal import GoalStatement, WorkloadKind
from schemas.plan import PlanSpec
from schemas.states import ConductorState
from schemas.validation import ValidationReport, Verdict
from sentinel.engine import Sentinel, Subject
from sentinel.hclplan import plan_from_hcl
from tests.unit.support import FIXTURES
from tools.render.waivers import risks_by_rule
from tools.workspace import write_workspace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "scanner-matrix"
BAD = FIXTURES / "terraform" / "bad"
#: Rules of Sentinel itself: they run whichever scanners are installed.
SENTINEL_OWN = {"policy", "budget"}

#: One goal per workload kind, as a user writes it (no domain: the ALB listens on HTTP and
#: the CDN uses its default certificate, the riskier variants Atlas records).
GOALS: dict[str, dict[str, Any]] = {
    "static_site": {
        "description": "A static site with a CDN.",
        "budget": {"monthly_usd": 50},
        "workload": {"kind": "static_site"},
    },
    "api": {
        "description": "An API with Postgres.",
        "budget": {"monthly_usd": 400},
        "workload": {"kind": "api", "data_stores": [{"kind": "postgres", "size_gb": 20}]},
    },
    "web_service": {
        "description": "A web app with MySQL and Redis sessions.",
        "budget": {"monthly_usd": 400},
        "workload": {"kind": "web_service", "data_stores": [{"kind": "mysql"}, {"kind": "redis"}]},
    },
    "queue_worker": {
        "description": "A queue worker.",
        "budget": {"monthly_usd": 200},
        "workload": {"kind": "queue_worker"},
    },
    "batch": {
        "description": "A nightly batch job writing to S3.",
        "budget": {"monthly_usd": 200},
        "workload": {"kind": "batch", "data_stores": [{"kind": "object_storage"}]},
    },
    "data_pipeline": {
        "description": "An ingest pipeline.",
        "budget": {"monthly_usd": 300},
        "workload": {
            "kind": "data_pipeline",
            "data_stores": [{"kind": "object_storage"}, {"kind": "queue"}],
        },
    },
    "serverless_api": {
        "description": "A serverless API: Lambda functions and a DynamoDB table.",
        "budget": {"monthly_usd": 100},
        "workload": {"kind": "api"},
    },
}
#: Shapes the planner composes beyond the contract's workload kinds (from the description).
SHAPES = {"serverless_api"}

#: What trivy reports on each kind's render (every id an accepted risk, waived with its reason).
TRIVY_ON_RENDER = {
    "static_site": {"AWS-0010", "AWS-0011"},
    "api": {"AWS-0053", "AWS-0054", "AWS-0104", "AWS-0133", "AWS-0177"},
    "web_service": {"AWS-0053", "AWS-0054", "AWS-0104", "AWS-0133", "AWS-0177"},
    "queue_worker": {"AWS-0104"},
    "batch": {"AWS-0104"},
    "data_pipeline": {"AWS-0104"},
    "serverless_api": {"AWS-0066"},
}


def goal(kind: str) -> GoalStatement:
    return GoalStatement.model_validate(
        {
            "schema_version": "0.1",
            "title": f"Scanner matrix: {kind}",
            "cloud": "aws",
            "region": "eu-west-1",
            "environment": "dev",
            "requested_by": "matrix@example.com",
            "goal_id": f"matrix-{kind.replace('_', '-')}-{os.urandom(3).hex()}",
            **GOALS[kind],
        }
    )


def verdict_under(report: ValidationReport, scanners: set[str]) -> Verdict:
    tools = scanners | SENTINEL_OWN
    blocking = [f for f in report.findings if f.blocking and f.tool in tools]
    return Verdict.FAIL if blocking else Verdict.PASS


def record(case: str, row: dict[str, Any]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{case}.json").write_text(json.dumps(row, indent=1), encoding="utf-8")


def test_every_catalog_workload_kind_has_a_case() -> None:
    assert set(GOALS) == set(TRIVY_ON_RENDER) == {k.value for k in WorkloadKind} | SHAPES


# -- every workload kind, end to end ---------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(GOALS))
async def test_each_workload_kind_reaches_the_gate_with_pass_under_checkov_and_trivy(
    kind: str, services: Services, make_settings: Callable[..., Settings], trivy_bin: Path
) -> None:
    assert services.settings.trivy_bin is not None  # the product found trivy on PATH
    record_, _ = await submit_goal(services, goal(kind), actor="local")
    worker = Worker(services)
    claimed = await services.runs.claim(record_.run_id, worker.worker_id, 60)
    assert claimed is not None
    state = await worker.drive(claimed)
    detail = await run_detail(services, record_.run_id, with_audit=False)
    assert state is ConductorState.WAIT_FOR_APPROVE, (detail.error, detail.artifacts.validation)
    both = detail.artifacts.validation
    assert both is not None
    assert both.verdict is Verdict.PASS, both.reasons
    assert {"checkov:hcl", "checkov:plan", "trivy"} <= set(both.checks_run), both.checks_run

    # trivy saw the render: what it reports is an accepted risk, waived with its reason
    trivy = [f for f in both.findings if f.tool == "trivy"]
    assert {f.rule_id for f in trivy} == TRIVY_ON_RENDER[kind]
    risks = risks_by_rule()
    for finding in trivy:
        risk = risks[finding.rule_id]
        assert finding.waived, finding
        assert not finding.blocking, finding
        assert finding.waiver_reason == f"Forge render waiver ({risk.kind}): {risk.reason}"
        # ... and a risk checkov sees too is waived alike under checkov
        for ckv in risk.rule_ids("checkov"):
            for same in (f for f in both.findings if f.rule_id == ckv):
                assert same.waiver_reason == finding.waiver_reason

    # the same workspace and plan, judged where only checkov is installed
    plan = detail.artifacts.plan
    assert plan is not None
    workspace = services.settings.workspaces_dir / record_.run_id / f"r{plan.revision}"
    alone = await _judge(build_sentinel(make_settings(extra_scanners=False)), plan, workspace)
    assert alone.verdict is Verdict.PASS, alone.reasons
    assert "trivy" not in alone.checks_run

    row = {
        "case": kind,
        "verdicts": {
            "checkov": alone.verdict.value,
            "trivy": verdict_under(both, {"trivy"}).value,
            "checkov+trivy": both.verdict.value,
        },
        "trivy_waived": sorted({f.rule_id for f in trivy if f.waived}),
        "checkov_waived": len([f for f in both.findings if f.tool == "checkov" and f.waived]),
    }
    record(f"kind-{kind}", row)
    assert set(row["verdicts"].values()) == {"PASS"}


async def _judge(
    sentinel: Sentinel, plan: PlanSpec | None, workspace: Path, *, forge_render: bool = True
) -> ValidationReport:
    """Sentinel on a workspace as the validate node feeds it (the real plan JSON when there
    is one, else the stand-in read from the .tf files). No PlanSpec: hand-written Terraform."""
    plan_json = workspace / "plan.json"
    planned = plan_json.is_file()
    return await sentinel.validate(
        Subject(
            plan_id=plan.plan_id if plan else workspace.name,
            plan_json=json.loads(plan_json.read_text()) if planned else plan_from_hcl(workspace),
            plan_json_path=plan_json if planned else None,
            hcl_dir=workspace,
            budget_monthly_usd=None,
            region=plan.region if plan else "eu-west-1",
            plan=plan,
            stand_in_plan=not planned,
            forge_render=forge_render,
        ),
        datetime.now(UTC),
    )


# -- known-bad configurations fail under each scanner ----------------------------------------


def _public_database(main_tf: str) -> str:
    changed, count = re.subn(r"(publicly_accessible\s*=\s*)false", r"\1true", main_tf)
    assert count == 1
    return changed


def _ssh_from_anywhere(main_tf: str) -> str:
    return main_tf + (
        '\nresource "aws_vpc_security_group_ingress_rule" "worker_ssh" {\n'
        "  security_group_id = aws_security_group.worker.id\n"
        '  description       = "SSH from anywhere"\n'
        '  ip_protocol       = "tcp"\n'
        "  from_port         = 22\n"
        "  to_port           = 22\n"
        '  cidr_ipv4         = "0.0.0.0/0"\n'
        "}\n"
    )


#: case -> (hand-written fixture or a kind's render changed for the worse, what checkov must
#: block on, what trivy must block on (empty: trivy has nothing above LOW, and Sentinel's own
#: policy fails it whatever is installed)).
KNOWN_BAD: dict[str, tuple[str | tuple[str, Callable[[str], str]], set[str], set[str]]] = {
    "public_bucket": (
        "public_bucket",
        {"CKV_AWS_20", "CKV_AWS_57"},
        {"AWS-0086", "AWS-0087", "AWS-0091", "AWS-0092", "AWS-0093"},
    ),
    "ssh_open": ("ssh_open", {"CKV_AWS_24"}, {"AWS-0107"}),
    "unencrypted_rds": ("unencrypted_rds", {"CKV_AWS_16", "CKV_AWS_17"}, {"AWS-0080", "AWS-0180"}),
    "iam_admin_user": ("iam_admin_user", {"CKV_AWS_273", "CKV_AWS_274"}, set()),
    "api_render_public_database": (("api", _public_database), {"CKV_AWS_17"}, {"AWS-0180"}),
    "queue_worker_render_ssh_open": (
        ("queue_worker", _ssh_from_anywhere),
        {"CKV_AWS_24"},
        {"AWS-0107"},
    ),
}


@pytest.mark.parametrize("case", sorted(KNOWN_BAD))
async def test_known_bad_configurations_fail_under_each_scanner(
    case: str, make_settings: Callable[..., Settings], trivy_bin: Path, tmp_path: Path
) -> None:
    source, checkov_blocks, trivy_blocks = KNOWN_BAD[case]
    workspace = tmp_path / case
    plan: PlanSpec | None
    if isinstance(source, str):
        shutil.copytree(BAD / source, workspace)
        plan, forge_render = None, False
    else:
        kind, worsen = source
        design = plan_goal(goal(kind), goal_id=f"bad-{case}", plan_id=f"bad-{case}-r1")
        assert isinstance(design, PlanSpec), design
        write_workspace(design, workspace)
        main_tf = workspace / "main.tf"
        main_tf.write_text(worsen(main_tf.read_text(encoding="utf-8")), encoding="utf-8")
        plan, forge_render = design, True  # Forge's accepted risks apply, and do not help

    alone = await _judge(
        build_sentinel(make_settings(extra_scanners=False)),
        plan,
        workspace,
        forge_render=forge_render,
    )
    both = await _judge(build_sentinel(make_settings()), plan, workspace, forge_render=forge_render)
    assert "trivy" in both.checks_run
    assert "trivy" not in alone.checks_run

    def blocking(report: ValidationReport, tool: str) -> set[str]:
        return {f.rule_id for f in report.findings if f.blocking and f.tool == tool}

    assert alone.verdict is Verdict.FAIL, alone.reasons
    assert checkov_blocks <= blocking(alone, "checkov"), sorted(blocking(alone, "checkov"))
    assert both.verdict is Verdict.FAIL, both.reasons
    assert trivy_blocks <= blocking(both, "trivy"), sorted(blocking(both, "trivy"))
    assert verdict_under(both, {"trivy"}) is Verdict.FAIL
    if not trivy_blocks:  # only Sentinel's own policy fails it without checkov
        assert blocking(both, "policy"), both.reasons
    assert not [f for f in both.findings if f.rule_id in checkov_blocks | trivy_blocks and f.waived]

    record(
        f"bad-{case}",
        {
            "case": case,
            "verdicts": {
                "checkov": alone.verdict.value,
                "trivy": verdict_under(both, {"trivy"}).value,
                "checkov+trivy": both.verdict.value,
            },
            "checkov_blocking": sorted(blocking(alone, "checkov")),
            "trivy_blocking": sorted(blocking(both, "trivy")),
            "policy_blocking": sorted(blocking(both, "policy")),
        },
    )
