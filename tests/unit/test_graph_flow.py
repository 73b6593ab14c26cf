"""The whole Conductor graph, in memory, with a stand-in for terraform.

`FakeTerraform` and `MemoryLedger` are test doubles for this module only: they return the typed
results of tools/terraform.py built from recorded terraform output, so every node runs its real
code and only the binary is missing.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Command

from crew.container import Graph, build_sentinel, checkpoint_allowlist, node_config
from crew.settings import Settings
from graph.context import CrewContext
from graph.graph import build_graph
from graph.state import initial_state, project_run
from nodes.planners.catalog import CatalogPlanner
from schemas.apply import Operation
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.errors import ToolTimeoutError
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.progress import TerraformOperation
from schemas.states import ConductorState
from schemas.validation import Verdict
from tests.unit.support import make_goal, recorded_typo_line, tf_fixture
from tools.process import ProcessResult
from tools.terraform import (
    ApplyOutcome,
    PlanOutcome,
    StepResult,
    _apply_outcome,
    _stream_diagnostics,
)
from tools.terraform_progress import ProgressTracker, ResourceProgress, parse_ui_line
from tools.workspace import PLAN_FILE

S = ConductorState
T0 = datetime(2026, 11, 24, 18, 24, 40, tzinfo=UTC)
RUN_ID = "20261124T182440-5f3c9a1e"
#: What the recorded plan creates: the bucket, the stack's KMS key and its access-log bucket
#: (tests/fixtures/terraform/README.md).
RECORDED_RESOURCES = 16  # the example bucket, its lifecycle rule, key and log bucket
RECORDED_BUCKET = json.loads(tf_fixture("output.json"))["objects_bucket"]["value"]


def recorded(name: str, returncode: int) -> ProcessResult:
    return ProcessResult(("terraform",), returncode, tf_fixture(name), "", 0.5)


def replay_progress(
    name: str, operation: TerraformOperation, resources: ResourceProgress | None
) -> None:
    """Report a recorded command's progress the way TerraformRunner does, line by line."""
    if resources is None:
        return
    lines = tf_fixture(name).splitlines()
    started = datetime.fromisoformat(json.loads(lines[0])["@timestamp"])
    tracker = ProgressTracker(resources.step, operation, started)
    for line in lines:
        event = parse_ui_line(line)
        if event is not None and tracker.feed(event):
            resources.report(tracker.snapshot())
    resources.report(tracker.finish())


@dataclass
class FakeTerraform:
    """Implements the TerraformRunner methods the nodes call, from recorded output."""

    plan_fixture: str = "plan-create.jsonl"
    plan_returncode: int = 2
    show: dict[str, Any] = field(default_factory=lambda: json.loads(tf_fixture("show-plan.json")))
    apply_fixture: str = "apply.jsonl"
    apply_returncode: int = 0
    apply_error: Exception | None = None
    destroy_returncode: int = 0
    calls: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    """The stack's state as `state pull` shows it: empty, or the recorded applied state
    once an apply ran (a failed one too: it created resources before failing)."""
    destroyed_targets: list[str] = field(default_factory=list)

    async def version(self) -> str:
        self.calls.append("version")
        return str(json.loads(tf_fixture("version.json"))["terraform_version"])

    async def init(
        self,
        workdir: Path,
        progress: Callable[[str], None] | None = None,
        *,
        backend_config: dict[str, str] | None = None,
    ) -> StepResult:
        self.calls.append("init")
        assert backend_config is not None
        assert backend_config["path"].endswith("terraform.tfstate")
        assert (workdir / "main.tf").is_file(), "init runs in the rendered workspace"
        return StepResult(True, _stream_diagnostics(recorded("init.jsonl", 0)), 0.5)

    async def validate(self, workdir: Path) -> StepResult:
        self.calls.append("validate")
        return StepResult(True, [], 0.1)

    async def plan(
        self,
        workdir: Path,
        planfile: str,
        progress: Callable[[str], None] | None = None,
        *,
        destroy: bool = False,
        resources: ResourceProgress | None = None,
    ) -> PlanOutcome:
        self.calls.append("plan")
        replay_progress(self.plan_fixture, "plan", resources)
        result = recorded(self.plan_fixture, self.plan_returncode)
        ok = result.returncode in (0, 2)
        if ok:
            (workdir / planfile).write_bytes(b"terraform plan file for " + workdir.name.encode())
        return PlanOutcome(ok, _stream_diagnostics(result), 0.5, has_changes=ok)

    async def show_plan(self, workdir: Path, planfile: str) -> dict[str, Any]:
        self.calls.append("show_plan")
        assert (workdir / planfile).is_file()
        return self.show

    async def apply(
        self,
        workdir: Path,
        planfile: str,
        progress: Callable[[str], None] | None = None,
        *,
        resources: ResourceProgress | None = None,
    ) -> ApplyOutcome:
        self.calls.append("apply")
        replay_progress(self.apply_fixture, "apply", resources)
        assert planfile == PLAN_FILE
        self.state = json.loads(tf_fixture("state-applied.json"))
        if self.apply_error is not None:
            raise self.apply_error
        return _apply_outcome(recorded(self.apply_fixture, self.apply_returncode))

    async def destroy(
        self,
        workdir: Path,
        progress: Callable[[str], None] | None = None,
        *,
        targets: Sequence[str] = (),
        resources: ResourceProgress | None = None,
    ) -> ApplyOutcome:
        self.calls.append("destroy")
        replay_progress("destroy.jsonl", "destroy", resources)
        self.destroyed_targets = list(targets)
        if self.destroy_returncode:
            return _apply_outcome(recorded("apply-stale.jsonl", self.destroy_returncode))
        self.state = {}
        return _apply_outcome(recorded("destroy.jsonl", 0))

    async def wait_for_orphans(
        self, workdir: Path, progress: Callable[[str], None] | None = None
    ) -> None:
        self.calls.append("wait_for_orphans")

    async def state_pull(self, workdir: Path) -> dict[str, Any]:
        self.calls.append("state_pull")
        return self.state

    async def outputs(self, workdir: Path) -> dict[str, Any]:
        self.calls.append("outputs")
        return {}


@dataclass
class MemoryLedger:
    """The apply ledger: True the first time a run's apply starts, False ever after."""

    started: dict[str, datetime] = field(default_factory=dict)

    async def mark_apply_started(self, run_id: str, at: datetime) -> bool:
        if run_id in self.started:
            return False
        self.started[run_id] = at
        return True


@dataclass
class Harness:
    graph: Graph
    context: CrewContext
    terraform: FakeTerraform
    ledger: MemoryLedger
    config: RunnableConfig

    async def start(self, goal: GoalStatement) -> dict[str, Any]:
        state = initial_state(RUN_ID, goal.goal_id or RUN_ID, goal, T0)
        result: dict[str, Any] = await self.graph.ainvoke(state, self.config, context=self.context)
        return result

    async def decide(self, decision: Decision, reason: str | None = None) -> dict[str, Any]:
        payload = ApprovalDecision(
            run_id=RUN_ID,
            decision=decision,
            actor="carol@example.com",
            channel=Channel.CLI,
            reason=reason,
            at=T0 + timedelta(minutes=7),
        ).model_dump(mode="json")
        result: dict[str, Any] = await self.graph.ainvoke(
            Command(resume=payload), self.config, context=self.context
        )
        return result

    async def values(self) -> dict[str, Any]:
        snapshot = await self.graph.aget_state(self.config)
        return dict(snapshot.values)


def config_files(workspace: Path) -> list[str]:
    return sorted(p.name for p in workspace.glob("*.tf"))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def ticking_clock() -> Callable[[], datetime]:
    ticks = itertools.count()
    return lambda: T0 + timedelta(seconds=next(ticks))


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    terraform = FakeTerraform()
    ledger = MemoryLedger()
    settings = Settings(data_dir=tmp_path)
    context = CrewContext(
        config=node_config(settings),
        terraform=terraform,  # type: ignore[arg-type]
        ledger=ledger,
        sentinel=build_sentinel(settings),
        planner=CatalogPlanner(),
        worker_id="unit-test",
        clock=ticking_clock(),
    )
    saver = InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=checkpoint_allowlist()))
    return Harness(
        graph=build_graph(saver),
        context=context,
        terraform=terraform,
        ledger=ledger,
        config={"configurable": {"thread_id": RUN_ID}},
    )


def events(values: dict[str, Any]) -> list[tuple[int, EventType, S | None, S]]:
    return [(t.seq, t.event, t.from_state, t.to_state) for t in values["transitions"]]


HAPPY_START = [
    (1, EventType.PLAN_PENDING, S.PENDING, S.IN_PROGRESS),
    (2, EventType.VALIDATE_PENDING, S.IN_PROGRESS, S.VALIDATING),
    (3, EventType.VALIDATE_RESULT, S.VALIDATING, S.READY_FOR_APPLY),
    (4, EventType.APPROVAL_REQUESTED, S.READY_FOR_APPLY, S.WAIT_FOR_APPROVE),
]


async def test_run_stops_at_the_approval_gate(harness: Harness, tmp_path: Path) -> None:
    result = await harness.start(make_goal())
    (interrupt,) = result["__interrupt__"]
    snapshot = await harness.graph.aget_state(harness.config)
    assert snapshot.next == ("await_approval",)
    values = dict(snapshot.values)
    assert values["conductor_state"] is S.WAIT_FOR_APPROVE
    assert events(values) == HAPPY_START
    assert harness.terraform.calls == [
        "wait_for_orphans",
        "version",
        "init",
        "plan",
        "show_plan",
    ]
    assert harness.ledger.started == {}
    timings = values["timings"]
    assert [t.step for t in timings] == ["design", "build", "validate", "request_approval"]
    build_parts = [p.name for p in timings[1].parts]
    assert build_parts == [
        "render",
        "terraform version",
        "terraform init",
        "terraform plan",
        "terraform show",
    ]
    assert "cost forecast" in [p.name for p in timings[2].parts]
    assert config_files(Path(values["build"].workspace)) == [
        "main.tf",
        "outputs.tf",
        "variables.tf",
        "versions.tf",
    ]

    request = interrupt.value
    build = values["build"]
    assert request["run_id"] == RUN_ID
    assert request["plan_id"] == f"{RUN_ID}-r1"
    assert request["plan_file_digest"] == build.plan_file_digest
    assert (request["create"], request["update"], request["delete"]) == (RECORDED_RESOURCES, 0, 0)
    assert (request["forecast_monthly_usd"], request["budget_monthly_usd"]) == (
        values["validation"].cost.monthly_usd,
        20.0,
    )
    assert request["forecast_monthly_usd"] == 7.09  # the bucket, its access-log bucket, KMS
    assert values["validation"].verdict is Verdict.PASS
    assert build.terraform_version == "1.11.4"
    assert [w.summary for w in build.warnings] == ["Incomplete lock file information for providers"]
    assert Path(build.workspace) == tmp_path / "workspaces" / RUN_ID / "r1"
    assert (Path(build.workspace) / "plan.json").is_file()


async def test_approve_applies_and_ends_done(harness: Harness) -> None:
    await harness.start(make_goal())
    result = await harness.decide(Decision.APPROVE, "looks right")
    assert "__interrupt__" not in result
    values = await harness.values()
    assert values["conductor_state"] is S.DONE
    assert events(values) == [
        *HAPPY_START,
        (5, EventType.APPLY_REQUEST, S.WAIT_FOR_APPROVE, S.APPLYING),
        (6, EventType.APPLY_DONE, S.APPLYING, S.DONE),
    ]
    assert [t.seq for t in values["transitions"]] == [1, 2, 3, 4, 5, 6]
    approval = values["transitions"][4]
    assert (approval.actor, approval.note) == ("carol@example.com", "looks right")
    applied = values["apply_result"]
    assert applied.ok
    assert applied.operation is Operation.APPLY
    assert applied.resources.added == RECORDED_RESOURCES
    assert applied.outputs["objects_bucket"] == RECORDED_BUCKET
    assert applied.failure_at is None
    snapshot = Path(applied.state_snapshot)
    assert snapshot.name == "pre-apply.tfstate"
    assert read(snapshot).strip() == "{}"
    assert harness.terraform.calls[-3:] == ["state_pull", "apply", "outputs"] or (
        harness.terraform.calls[-2:] == ["state_pull", "apply"]
    )
    assert values.get("rollback_result") is None
    assert values.get("error") is None
    assert Counter(harness.terraform.calls)["apply"] == 1
    assert "destroy" not in harness.terraform.calls
    assert list(harness.ledger.started) == [RUN_ID]
    # the apply's time is in the run's breakdown, each terraform command a part
    apply_timing = values["timings"][-1]
    assert apply_timing.step == "apply"
    assert [p.name for p in apply_timing.parts][:3] == [
        "stack lock",
        "terraform state pull",
        "terraform apply",
    ]

    projection = project_run(RUN_ID, values)
    assert projection is not None
    assert (projection.state, projection.last_seq) == (S.DONE, 6)
    assert [r.artifact_type for r in projection.records_after(0)] == [
        "PlanSpec",
        "BuildStatus",
        "ValidationReport",
        "ApprovalRequest",
        "ApprovalDecision",
        "ApplyResult",
    ]


@pytest.mark.parametrize("decision", [Decision.REJECT, Decision.ROLLBACK])
async def test_anything_but_approve_ends_rejected(harness: Harness, decision: Decision) -> None:
    await harness.start(make_goal())
    await harness.decide(decision, "not this quarter")
    values = await harness.values()
    assert values["conductor_state"] is S.REJECTED
    assert events(values)[-1] == (5, EventType.RUN_REJECTED, S.WAIT_FOR_APPROVE, S.REJECTED)
    assert values["error"] == f"{decision.value} by carol@example.com: not this quarter"
    assert "apply" not in harness.terraform.calls
    assert harness.ledger.started == {}


async def test_apply_failure_rolls_back_to_done(harness: Harness) -> None:
    harness.terraform.apply_fixture, harness.terraform.apply_returncode = "apply-stale.jsonl", 1
    await harness.start(make_goal())
    await harness.decide(Decision.APPROVE)
    values = await harness.values()
    assert values["conductor_state"] is S.DONE
    assert events(values)[4:] == [
        (5, EventType.APPLY_REQUEST, S.WAIT_FOR_APPROVE, S.APPLYING),
        (6, EventType.ROLLBACK_STARTED, S.APPLYING, S.ROLLBACK),
        (7, EventType.ROLLBACK_DONE, S.ROLLBACK, S.DONE),
    ]
    assert not values["apply_result"].ok
    assert "Saved plan is stale" in values["apply_result"].error
    rollback = values["rollback_result"]
    assert rollback.ok
    assert rollback.operation is Operation.ROLLBACK
    assert rollback.resources.destroyed == RECORDED_RESOURCES
    assert rollback.restored == "empty stack"
    assert Counter(harness.terraform.calls)["destroy"] == 1
    assert harness.terraform.destroyed_targets == []  # nothing existed before: destroy all
    assert values["error"].startswith("apply failed: Saved plan is stale")
    # the SLA clock starts at the failure (the ticking clock moves 1 s per reading)
    failed = values["apply_result"].failure_at
    assert failed is not None
    assert rollback.failure_at == failed
    assert failed < rollback.rollback_started_at < rollback.rollback_finished_at
    assert rollback.sla_met is True
    assert rollback.page_human is False
    workspace = Path(values["build"].workspace)
    assert (workspace / "snapshots" / "pre-apply.tfstate").is_file()
    assert (workspace / "snapshots" / "post-failure.tfstate").is_file()
    apply_timing, rollback_timing = values["timings"][-2:]
    assert "terraform apply" in [p.name for p in apply_timing.parts]
    assert rollback_timing.step == "rollback"
    assert [p.name for p in rollback_timing.parts] == [
        "stack lock",
        "wait for orphaned terraform",
        "terraform state pull",
        "terraform destroy",
        "terraform state pull (check)",
    ]


async def test_apply_timeout_rolls_back(harness: Harness) -> None:
    harness.terraform.apply_error = ToolTimeoutError("terraform apply ran longer than 1800s")
    await harness.start(make_goal())
    await harness.decide(Decision.APPROVE)
    values = await harness.values()
    assert values["conductor_state"] is S.DONE
    assert values["apply_result"].error == "ToolTimeoutError: terraform apply ran longer than 1800s"
    assert Counter(harness.terraform.calls)["destroy"] == 1
    assert values["rollback_result"].sla_met is True


async def test_a_cancel_at_the_gate_ends_rejected_as_cancelled(harness: Harness) -> None:
    await harness.start(make_goal())
    await harness.decide(Decision.CANCEL, "duplicate goal")
    values = await harness.values()
    assert values["conductor_state"] is S.REJECTED
    assert events(values)[-1] == (5, EventType.RUN_CANCELLED, S.WAIT_FOR_APPROVE, S.REJECTED)
    assert values["error"] == "cancelled by carol@example.com via cli: duplicate goal"
    assert values["transitions"][-1].note == values["error"]
    assert "apply" not in harness.terraform.calls


async def test_failed_rollback_ends_failed(harness: Harness) -> None:
    harness.terraform.apply_fixture, harness.terraform.apply_returncode = "apply-stale.jsonl", 1
    harness.terraform.destroy_returncode = 1
    await harness.start(make_goal())
    await harness.decide(Decision.APPROVE)
    values = await harness.values()
    assert values["conductor_state"] is S.FAILED
    assert events(values)[-1] == (7, EventType.ROLLBACK_FAILED, S.ROLLBACK, S.FAILED)
    assert not values["rollback_result"].ok
    assert values["rollback_result"].page_human is True
    # what a human must clean up: everything the apply created is still in the state
    remaining = values["rollback_result"].remaining
    assert remaining is not None
    assert len(remaining) == RECORDED_RESOURCES
    assert any(address.startswith("aws_s3_bucket.") for address in remaining)
    assert values["error"].startswith("rollback failed, page a human")
    assert values["transitions"][-1].note.startswith("page a human: ")
    assert Counter(harness.terraform.calls)["destroy"] == 1


async def test_a_second_apply_attempt_never_applies(harness: Harness) -> None:
    await harness.start(make_goal())
    # an earlier worker took the snapshot, recorded the start of this run's apply, got
    # terraform to create the resources, then died
    workspace = Path((await harness.values())["build"].workspace)
    (workspace / "snapshots").mkdir()
    (workspace / "snapshots" / "pre-apply.tfstate").write_text("{}")
    harness.ledger.started[RUN_ID] = T0
    harness.terraform.state = json.loads(tf_fixture("state-applied.json"))
    await harness.decide(Decision.APPROVE)
    values = await harness.values()
    assert "apply" not in harness.terraform.calls
    # ... and the rollback read the state only once that worker's terraform was gone
    assert harness.terraform.calls[-4:-1] == ["wait_for_orphans", "state_pull", "destroy"]
    assert Counter(harness.terraform.calls)["destroy"] == 1
    assert values["conductor_state"] is S.DONE
    assert "never run twice" in values["apply_result"].error
    assert values["rollback_result"].ok
    assert [e[1] for e in events(values)[-2:]] == [
        EventType.ROLLBACK_STARTED,
        EventType.ROLLBACK_DONE,
    ]


async def test_a_tampered_plan_file_is_refused(harness: Harness) -> None:
    await harness.start(make_goal())
    workspace = Path((await harness.values())["build"].workspace)
    (workspace / PLAN_FILE).write_bytes(b"a different plan, swapped in after validation")
    await harness.decide(Decision.APPROVE)
    values = await harness.values()
    assert "apply" not in harness.terraform.calls
    assert values["apply_result"].error == (
        "the plan file changed after validation; refusing to apply it"
    )
    assert values["conductor_state"] is S.DONE
    assert values["rollback_result"].ok
    assert values["rollback_result"].restored == "nothing to undo: the apply never started"
    assert "destroy" not in harness.terraform.calls
    assert harness.ledger.started == {}


async def test_a_blocked_design_ends_blocked(harness: Harness) -> None:
    # the web API goal moved outside its allowed regions, on a quarter of its budget
    blocked_goal = make_goal("goal-web-api.json", region="us-east-1", budget={"monthly_usd": 100})
    result = await harness.start(blocked_goal)
    assert "__interrupt__" not in result
    values = await harness.values()
    assert values["conductor_state"] is S.BLOCKED
    assert events(values) == [
        (1, EventType.DESIGN_STARTED, S.PENDING, S.IN_PROGRESS),
        (2, EventType.DESIGN_BLOCKED, S.IN_PROGRESS, S.BLOCKED),
    ]
    assert [r.constraint for r in values["design_blocked"].reasons] == [
        "constraints.allowed_regions",
        "budget.monthly_usd",
    ]
    assert values["error"].startswith("design blocked: ")
    assert values.get("plan") is None
    assert harness.terraform.calls == []
    projection = project_run(RUN_ID, values)
    assert projection is not None
    assert [r.artifact_type for r in projection.records_after(0)] == [None, "DesignBlocked"]


async def test_a_plan_error_blocks_the_build(harness: Harness) -> None:
    harness.terraform.plan_fixture, harness.terraform.plan_returncode = "plan-error.jsonl", 1
    await harness.start(make_goal())
    values = await harness.values()
    assert values["conductor_state"] is S.BLOCKED
    assert events(values)[-1] == (2, EventType.BUILD_FAILED, S.IN_PROGRESS, S.BLOCKED)
    build = values["build"]
    assert not build.ok
    assert (build.plan_file, build.plan_file_digest) == (None, None)
    assert [(e.summary, e.filename, e.line) for e in build.errors] == [
        ("Unsupported argument", "main.tf", recorded_typo_line())
    ]
    assert "Unsupported argument" in values["error"]
    assert "show_plan" not in harness.terraform.calls
    assert values.get("validation") is None


async def test_a_resource_outside_the_catalog_blocks_validation(harness: Harness) -> None:
    harness.terraform.show["resource_changes"].append(
        {
            "address": "aws_iam_user.admin",
            "type": "aws_iam_user",
            "change": {"actions": ["create"], "before": None, "after": {"name": "admin"}},
        }
    )
    result = await harness.start(make_goal())
    assert "__interrupt__" not in result
    values = await harness.values()
    assert values["conductor_state"] is S.BLOCKED
    assert events(values)[-1] == (3, EventType.VALIDATE_RESULT, S.VALIDATING, S.BLOCKED)
    assert values["validation"].verdict is Verdict.FAIL
    assert values["validation"].findings[0].resource == "aws_iam_user.admin"
    assert values.get("approval_request") is None
    assert values["error"].startswith("validation failed: ")


async def test_the_diagram_is_drawn_beside_the_build(harness: Harness, tmp_path: Path) -> None:
    # a stand-in mmdc (no browser here): writes an SVG naming its input, as the real one draws it
    fake = tmp_path / "mmdc"
    fake.write_text(
        "#!/bin/sh\n"
        'while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift;; esac; shift; done\n'
        'printf "<svg>drawn</svg>" > "$out"\n'
    )
    fake.chmod(0o755)
    config = replace(harness.context.config, mermaid_cli=fake)
    harness.context = replace(harness.context, config=config)
    await harness.start(make_goal())
    values = await harness.values()
    assert values["conductor_state"] is S.WAIT_FOR_APPROVE
    assert values["plan"].diagram_svg == "<svg>drawn</svg>"
    design, build = values["timings"][:2]
    assert design.parts == []
    assert "diagram SVG" in [p.name for p in build.parts]
