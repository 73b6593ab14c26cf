"""Issue 16: each run records where its time went; Sentinel scans the .tf files while terraform
plans and takes that result only for the same files; `crew show` prints the breakdown."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli.render import out, print_run
from nodes.timing import StepTimer
from schemas.goal import GoalStatement
from schemas.run import RunDetail
from schemas.states import ConductorState
from schemas.timing import StepTiming
from sentinel.engine import Sentinel, SentinelTools, Subject
from sentinel.policy import default_policy
from tests.unit.sentinel_support import AT, change, failure, plan_doc
from tests.unit.support import make_goal
from tools.process import MAX_KEPT_OUTPUT, ProcessResult
from tools.scan import ScanReport
from tools.terraform import _full_stdout

T0 = datetime(2026, 11, 24, 18, 24, 40, tzinfo=UTC)


def test_a_step_timer_records_its_parts_in_the_order_they_began() -> None:
    timer = StepTimer("build", lambda: T0)
    with timer.part("terraform init"):
        pass
    timer.add("checkov .tf files", started=0.0, seconds=1.5)  # began long before the step
    timing = timer.done()
    assert (timing.step, timing.started_at) == ("build", T0)
    assert [p.name for p in timing.parts] == ["checkov .tf files", "terraform init"]
    assert timing.parts[0].offset_s < 0 < timing.seconds + 1
    assert timing.parts[0].seconds == 1.5


@dataclass
class InProcessCheckov:
    """Stands in for the in-process CheckovScanner: one failure per input it scans."""

    mode: str = "in_process"
    calls: list[tuple[str, ...]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def scan(
        self, *, hcl_dir: Path | None, plan_json: Path | None, external_checks_dir: Any = None
    ) -> list[ScanReport]:
        inputs = tuple(name for name, p in (("hcl", hcl_dir), ("plan", plan_json)) if p)
        self.calls.append(inputs)
        if hcl_dir is not None:
            await self.release.wait()  # the .tf scan is still running when validate starts
        return [
            ScanReport(tool="checkov", failures=[failure(f"CKV_{name.upper()}", source=name)])
            for name in inputs
        ]


def _workspace(tmp_path: Path) -> Subject:
    (tmp_path / "main.tf").write_text('resource "aws_sqs_queue" "q" {}\n')
    doc = plan_doc(change("aws_sqs_queue.q"))
    return Subject(
        plan_id="p-r1",
        plan_json=doc,
        plan_json_path=tmp_path / "plan.json",
        hcl_dir=tmp_path,
        budget_monthly_usd=100,
    )


async def test_the_tf_files_scanned_while_terraform_plans_count_once(tmp_path: Path) -> None:
    checkov = InProcessCheckov()
    sentinel = Sentinel(SentinelTools(checkov=checkov), default_policy())  # type: ignore[arg-type]
    subject = _workspace(tmp_path)
    sentinel.start_hcl_scan(tmp_path)
    await asyncio.sleep(0)
    assert checkov.calls == [("hcl",)], "the .tf scan starts at once, before validation"
    parts: list[str] = []
    validation = asyncio.create_task(
        sentinel.validate(subject, AT, on_part=lambda name, *_: parts.append(name))
    )
    await asyncio.sleep(0.05)
    checkov.release.set()
    report = await validation
    assert checkov.calls == [("hcl",), ("plan",)], "the .tf files were not scanned twice"
    assert sorted(f.rule_id for f in report.findings) == ["CKV_HCL", "CKV_PLAN"]
    assert {"checkov:hcl", "checkov:plan"} <= set(report.checks_run)
    assert parts == ["checkov .tf files", "checkov plan JSON", "cost forecast"]


async def test_an_early_scan_of_other_files_is_not_used(tmp_path: Path) -> None:
    checkov = InProcessCheckov()
    checkov.release.set()
    sentinel = Sentinel(SentinelTools(checkov=checkov), default_policy())  # type: ignore[arg-type]
    subject = _workspace(tmp_path)
    sentinel.start_hcl_scan(tmp_path)
    await asyncio.sleep(0.01)
    (tmp_path / "main.tf").write_text('resource "aws_sqs_queue" "other" {}\n')
    await sentinel.validate(subject, AT)
    assert checkov.calls == [("hcl",), ("hcl",), ("plan",)], "changed files are scanned again"
    # and a validation with no early scan at all scans both inputs itself
    await sentinel.validate(subject, AT)
    assert checkov.calls[-2:] == [("hcl",), ("plan",)]


def _detail(goal: GoalStatement) -> RunDetail:
    timings = [
        StepTiming(step="design", started_at=T0 + timedelta(seconds=0.1), seconds=0.05),
        StepTiming(
            step="build",
            started_at=T0 + timedelta(seconds=0.2),
            seconds=7.9,
            parts=[
                {"name": "terraform init", "offset_s": 0.1, "seconds": 0.7},  # type: ignore[list-item]
                {"name": "terraform plan", "offset_s": 0.8, "seconds": 4.5},  # type: ignore[list-item]
            ],
        ),
        StepTiming(step="request_approval", started_at=T0 + timedelta(seconds=9), seconds=0.5),
    ]
    return RunDetail(
        run_id="r1",
        goal_id="g1",
        revision=1,
        title="t",
        requested_by=None,
        state=ConductorState.WAIT_FOR_APPROVE,
        created_at=T0,
        updated_at=T0,
        goal=goal,
        timings=timings,
    )


def test_crew_show_prints_the_time_breakdown() -> None:
    with out.capture() as captured:
        print_run(_detail(make_goal()))
    text = captured.get()
    assert "timings (seconds from the run's creation)" in text
    cells = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]
    rows = {row[0]: row[1:] for row in cells}
    assert rows["build"] == ["0.20", "7.90"]
    assert rows["terraform init"] == ["0.30", "0.70"]  # the build's start + 0.1 s
    assert rows["terraform plan"] == ["1.00", "4.50"]
    assert rows["to the gate"] == ["9.50"], "request_approval ends 9.5 s after creation"


def test_the_plan_json_is_read_whole_not_from_the_kept_tail(tmp_path: Path) -> None:
    # a 120-resource plan's JSON is larger than the output run_process keeps for display
    whole = json.dumps({"resource_changes": [{"address": f"r.{i}"} for i in range(20_000)]})
    assert len(whole) > MAX_KEPT_OUTPUT
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "show.stdout").write_text(whole)
    kept = ProcessResult(("terraform",), 0, whole[-MAX_KEPT_OUTPUT:], "", 1.0)
    assert json.loads(_full_stdout(tmp_path, "show", kept)) == json.loads(whole)
    assert _full_stdout(tmp_path, "output", kept) == kept.stdout  # no file: what was kept
