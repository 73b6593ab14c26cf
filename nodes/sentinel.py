"""Sentinel: the validator between a plan and a human -> ValidationReport PASS/FAIL.

The judgement itself is `sentinel.engine.Sentinel` (checkov on the .tf files and the plan JSON,
trivy/tfsec when installed, the org policy, the cost forecast from the plan, the 80 % budget
brake); this node feeds it the run's workspace, goal and PlanSpec, and routes on the verdict.
The report is stored with the run (it is the node's state update, checkpointed and audited)
and the transition is published as `validate.result`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from graph.context import CrewContext
from graph.state import RunState, transition
from nodes.timing import StepTimer
from schemas.errors import ToolError
from schemas.events import EventType
from schemas.states import ConductorState
from schemas.validation import Verdict
from sentinel.engine import Subject

logger = logging.getLogger(__name__)

ACTOR = "sentinel"
#: Forge's build writes `terraform show -json` of the plan file here, in the workspace.
PLAN_JSON = "plan.json"


def read_plan_json(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolError(f"cannot read the plan JSON {path}: {exc}") from exc
    return doc


async def validate(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """VALIDATING -> READY_FOR_APPLY on PASS, -> BLOCKED on FAIL."""
    ctx = runtime.context
    timer = StepTimer("validate", ctx.clock)
    plan, build, goal = state["plan"], state["build"], state["goal"]
    assert plan is not None
    assert build is not None
    sentinel = ctx.sentinel
    workspace = Path(build.workspace)
    plan_path = workspace / PLAN_JSON
    subject = Subject(
        plan_id=plan.plan_id,
        plan_json=read_plan_json(plan_path),
        plan_json_path=plan_path,
        hcl_dir=workspace,
        budget_monthly_usd=goal.budget.monthly_usd,
        region=plan.region,
        required_tags=dict(goal.constraints.required_tags) if goal.constraints else {},
        plan=plan,
        forge_render=True,
    )
    report = await sentinel.validate(subject, timer.started_at, on_part=timer.add)
    # The verdict's time, not the start's: the audit row then tells how long validation took.
    now = ctx.clock()
    logger.info(
        "validated",
        extra={"run_id": state["run_id"], "node": "validate", "verdict": report.verdict.value},
    )
    passed = report.verdict is Verdict.PASS
    to = ConductorState.READY_FOR_APPLY if passed else ConductorState.BLOCKED
    update: RunState = {
        "validation": report,
        "timings": [timer.done()],
        "conductor_state": to,
        "transitions": [
            transition(
                state,
                to,
                event=EventType.VALIDATE_RESULT,
                actor=ACTOR,
                at=now,
                artifact="validation",
                note=None if passed else "; ".join(report.reasons),
            )
        ],
    }
    if not passed:
        update["error"] = "validation failed: " + "; ".join(report.reasons)
    return update
