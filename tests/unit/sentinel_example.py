"""The example run's ValidationReport, recomputed: Sentinel (real checkov, in-process) on the
recorded plan JSON of the example PlanSpec and its golden HCL."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from crew.container import build_sentinel
from crew.settings import Settings
from schemas.plan import PlanSpec
from schemas.validation import ValidationReport
from sentinel.engine import Subject
from tests.unit.support import FIXTURES, TF_FIXTURES

GOLDEN = FIXTURES / "golden" / "object-storage"
PLAN_JSON = TF_FIXTURES / "show-plan.json"


def example_report(plan: PlanSpec, budget: float, at: datetime) -> ValidationReport:
    settings = Settings(extra_scanners=False, policy_file=None, checkov_mode="in_process")
    subject = Subject(
        plan_id=plan.plan_id,
        plan_json=json.loads(PLAN_JSON.read_text(encoding="utf-8")),
        plan_json_path=PLAN_JSON,
        hcl_dir=GOLDEN,
        budget_monthly_usd=budget,
        region=plan.region,
        required_tags=dict(plan.tags),
        plan=plan,
        forge_render=True,
    )
    return asyncio.run(build_sentinel(settings, {}).validate(subject, at))
