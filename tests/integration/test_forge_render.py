"""Every template through the real terraform: `fmt -check` clean (golden files too), `validate`
for every catalog component and every workload kind, and `plan` against moto of the workloads
that together read every data source (availability zones, the AMI parameter, the ELB log
account, identity, a second provider region). Every render passes Sentinel under the default
policy (checkov on its HCL, on the real plan JSON too where it is planned, and trivy): Forge's
secure defaults, proven by the validator that guards the gate."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crew.container import build_sentinel, build_terraform_runner
from crew.settings import Settings
from fixtures.plans import ALL_KINDS, COMPONENT_PLANS, component_plan, workload_plan
from schemas.plan import PlanSpec
from schemas.validation import Verdict
from sentinel.engine import Sentinel, Subject
from sentinel.hclplan import plan_from_hcl
from tests.unit.support import FIXTURES
from tools.process import run_process
from tools.terraform import TerraformRunner
from tools.workspace import PLAN_FILE, write_workspace

pytestmark = pytest.mark.integration

#: terraform validate/plan load the provider schema (CPU-heavy): two at a time.
PARALLEL = 2


def plans() -> dict[str, PlanSpec]:
    found = {f"component-{t}": component_plan(t) for t in COMPONENT_PLANS}
    found.update({f"workload-{kind}": workload_plan(kind) for kind in ALL_KINDS})
    return found


@pytest.fixture
def runner(
    make_settings: Callable[..., Settings], terraform_bin: Path, aws_env: dict[str, str]
) -> TerraformRunner:
    return build_terraform_runner(make_settings(), dict(os.environ))


@pytest.fixture
def sentinel(make_settings: Callable[..., Settings], trivy_bin: Path) -> Sentinel:
    """Sentinel as the product builds it: checkov, and trivy found on PATH (tests/conftest.py)."""
    return build_sentinel(make_settings(), dict(os.environ))


async def _judge(
    sentinel: Sentinel, plan: PlanSpec, workspace: Path, shown: dict[str, Any] | None
) -> list[str]:
    """Blocking findings of Sentinel's default policy on one render (none expected)."""
    plan_json = workspace / "plan.json"
    if shown is not None:
        plan_json.write_text(json.dumps(shown), encoding="utf-8")
    report = await sentinel.validate(
        Subject(
            plan_id=plan.plan_id,
            plan_json=shown if shown is not None else plan_from_hcl(workspace),
            plan_json_path=plan_json if shown is not None else None,
            hcl_dir=workspace,
            budget_monthly_usd=None,
            region=plan.region,
            required_tags=dict(plan.tags) if shown is not None else {},
            plan=plan,
            stand_in_plan=shown is None,
            forge_render=True,
        ),
        datetime.now(UTC),
    )
    if report.verdict is Verdict.PASS:
        return []
    return [f"{f.rule_id} {f.resource}" for f in report.findings if f.blocking] or report.reasons


async def _bounded(jobs: list[asyncio.Future[None] | object], limit: int) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def one(job: object) -> None:
        async with semaphore:
            await job  # type: ignore[misc]

    await asyncio.gather(*(one(j) for j in jobs))


async def _prepare(runner: TerraformRunner, root: Path, names: dict[str, PlanSpec]) -> Path:
    """Render every plan; `init` one workspace and share its provider links with the rest
    (they all need exactly hashicorp/aws from the mirror)."""
    for name, plan in names.items():
        write_workspace(plan, root / name)
    template = root / next(iter(names))
    init = await runner.init(template)
    assert init.ok, init.diagnostics
    for name in list(names)[1:]:
        shutil.copytree(template / ".terraform", root / name / ".terraform", symlinks=True)
        shutil.copy(template / ".terraform.lock.hcl", root / name / ".terraform.lock.hcl")
    return template


async def test_every_render_is_fmt_clean_validates_and_passes_sentinel(
    runner: TerraformRunner, sentinel: Sentinel, terraform_bin: Path, tmp_path: Path
) -> None:
    names = plans()
    await _prepare(runner, tmp_path, names)
    fmt = await run_process(
        [
            str(terraform_bin),
            "fmt",
            "-check",
            "-recursive",
            "-no-color",
            str(tmp_path),
            str(FIXTURES / "golden"),
        ],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        timeout_s=120,
    )
    assert fmt.returncode == 0, f"not terraform-fmt clean:\n{fmt.stdout}\n{fmt.stderr}"

    failures: dict[str, object] = {}

    async def validate(name: str) -> None:
        checked = await runner.validate(tmp_path / name)
        if not checked.ok or checked.warnings:
            failures[name] = checked.diagnostics

    await _bounded([validate(n) for n in names], PARALLEL)
    assert failures == {}
    assert len(names) == len(COMPONENT_PLANS) + len(ALL_KINDS)

    blocked = {}
    for name, plan in names.items():
        if found := await _judge(sentinel, plan, tmp_path / name, None):
            blocked[name] = found
    assert blocked == {}


async def test_every_workload_plans_against_moto_and_passes_sentinel(
    runner: TerraformRunner, sentinel: Sentinel, tmp_path: Path
) -> None:
    names = {f"workload-{k}": workload_plan(k) for k in ("web_service", "api", "static_site")}
    await _prepare(runner, tmp_path, names)
    failures: dict[str, object] = {}
    creates: dict[str, int] = {}

    async def plan(name: str) -> None:
        outcome = await runner.plan(tmp_path / name, PLAN_FILE)
        if not outcome.ok or not outcome.has_changes:
            failures[name] = outcome.diagnostics
            return
        shown = await runner.show_plan(tmp_path / name, PLAN_FILE)
        creates[name] = sum(
            1 for rc in shown["resource_changes"] if rc["change"]["actions"] == ["create"]
        )
        if found := await _judge(sentinel, names[name], tmp_path / name, shown):
            failures[name] = found

    await _bounded([plan(n) for n in names], PARALLEL)
    assert failures == {}
    assert all(count >= 6 for count in creates.values()), creates
