"""Terraform's machine-readable UI -> resource progress, on output recorded from terraform 1.11
against moto (tests/fixtures/terraform/), and how that progress is written and shown."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from cli.follow import follow_run
from cli.main import app
from crew.gate.slack_message import status_line
from crew.progress import ProgressRecorder, describe_progress
from memory.runs import RunRecord
from schemas.goal import GoalStatement
from schemas.progress import StepProgress, TerraformOperation
from schemas.run import RunDetail
from schemas.states import ConductorState
from tests.conftest import example_goal
from tests.unit.support import tf_fixture
from tools.terraform_progress import ProgressTracker, ResourceProgress, parse_ui_line

#: Managed resources of the recorded stack (its 2 data sources are read on the way, uncounted).
RESOURCES = 16


def replay(name: str, operation: TerraformOperation) -> list[StepProgress]:
    """Every progress the runner would report for a recorded command, the last one finished."""
    lines = tf_fixture(name).splitlines()
    started = datetime.fromisoformat(json.loads(lines[0])["@timestamp"])
    tracker = ProgressTracker("apply", operation, started)
    seen = []
    for line in lines:
        event = parse_ui_line(line)
        if event is not None and tracker.feed(event):
            seen.append(tracker.snapshot())
    seen.append(tracker.finish())
    return seen


def test_each_resource_line_becomes_a_typed_event() -> None:
    events = [parse_ui_line(line) for line in tf_fixture("apply.jsonl").splitlines()]
    kinds = Counter(e.kind for e in events if e is not None)
    assert kinds == {"planned": 18, "started": 18, "complete": 18, "progress": 6, "summary": 1}
    kms = next(e for e in events if e is not None and e.kind == "progress")
    assert (kms.address, kms.action, kms.elapsed_s) == ("aws_kms_key.stack", "create", 10.0)
    assert kms.message == "aws_kms_key.stack: Still creating... [10s elapsed]"
    assert kms.at == datetime(2026, 12, 7, 2, 14, 53, 532664, tzinfo=UTC)
    assert kms.managed
    reads = [e for e in events if e is not None and e.address and e.address.startswith("data.")]
    assert reads
    assert not any(e.managed for e in reads)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "not json at all",
        "[1, 2]",
        tf_fixture("apply.jsonl").splitlines()[0],  # the version line
        tf_fixture("apply.jsonl").splitlines()[-1],  # outputs
        tf_fixture("plan-error.jsonl").splitlines()[-1],  # a diagnostic
        '{"type": "apply_start", "hook": "not an object"}',
    ],
)
def test_other_lines_are_no_resource_event(line: str) -> None:
    event = parse_ui_line(line)
    assert event is None or event.address is None


def test_an_apply_counts_up_to_every_resource_of_the_plan() -> None:
    seen = replay("apply.jsonl", "apply")
    final = seen[-1]
    assert (final.total, final.done, final.failed, final.in_flight) == (RESOURCES, RESOURCES, 0, 0)
    assert final.finished
    assert (final.eta_s, final.current) == (None, [])
    assert final.elapsed_s == pytest.approx(98.4, abs=0.1)  # 02:14:07 -> 02:15:45
    dones = [p.done for p in seen]
    assert dones == sorted(dones), "done never goes back"
    middle = [p for p in seen if 0 < p.done < RESOURCES]
    assert middle, "progress is seen before the end"
    assert all(p.total == RESOURCES and p.eta_s is not None for p in middle)
    # the KMS key took more than 10 s: while it did, it is the longest in flight
    waiting = next(
        p for p in seen if p.last_message and "kms_key.stack: Still creating" in p.last_message
    )
    assert waiting.current[0].address == "aws_kms_key.stack"
    assert waiting.current[0].elapsed_s >= 10
    assert waiting.in_flight == len(waiting.current)


def test_a_destroy_counts_what_it_removes() -> None:
    final = replay("destroy.jsonl", "destroy")[-1]
    assert (final.operation, final.total, final.done, final.failed) == (
        "destroy",
        RESOURCES,
        RESOURCES,
        0,
    )


def test_a_plan_counts_planned_resources_and_knows_the_total_at_its_summary() -> None:
    seen = replay("plan-create.jsonl", "plan")
    assert seen[0].total is None
    assert [p.done for p in seen if p.total is None][-1] == RESOURCES
    final = seen[-1]
    assert (final.total, final.done, final.eta_s) == (RESOURCES, RESOURCES, None)


def test_a_resource_aws_refuses_is_counted_failed() -> None:
    final = replay("apply-errored.jsonl", "apply")[-1]
    assert final.failed == 1
    assert final.total == RESOURCES
    assert final.done < RESOURCES
    assert "aws_kms_alias.stack" not in {c.address for c in final.current}


def _progress(**changes: object) -> StepProgress:
    at = datetime(2026, 12, 7, 2, 14, 7, tzinfo=UTC)
    base = {
        "step": "apply",
        "operation": "apply",
        "started_at": at,
        "updated_at": at + timedelta(seconds=42),
        "elapsed_s": 42.0,
        "total": 16,
        "done": 7,
        "in_flight": 2,
        "current": [
            {"address": "aws_kms_key.stack", "action": "create", "elapsed_s": 20.0},
            {"address": "aws_s3_bucket.objects", "action": "create", "elapsed_s": 3.0},
        ],
        "eta_s": 54.0,
    }
    return StepProgress.model_validate({**base, **changes})


def test_progress_reads_as_one_line() -> None:
    assert describe_progress(_progress()) == (
        "applying: 7 of 16 resources, 42s; now aws_kms_key.stack (create, 20s) and 1 more; "
        "about 54s left"
    )
    done = _progress(done=16, in_flight=0, current=[], eta_s=None, finished=True, elapsed_s=98)
    assert describe_progress(done) == "applied: 16 of 16 resources, 1m38s"
    planning = _progress(operation="plan", total=None, done=3, current=[], in_flight=0)
    assert describe_progress(planning).startswith("planning: 3 resources so far, 42s")
    assert "1 failed" in describe_progress(_progress(failed=1))


class FakeStore:
    def __init__(self) -> None:
        self.written: list[StepProgress] = []
        self.fail = False

    async def record_progress(self, run_id: str, progress: StepProgress, worker_id: str) -> bool:
        if self.fail:
            raise OSError("database gone")
        self.written.append(progress)
        return True


async def test_progress_is_written_at_most_once_a_second_but_every_finished_resource() -> None:
    store, now = FakeStore(), [0.0]
    recorder = ProgressRecorder(store, "run-1", "w1", clock=lambda: now[0])
    await recorder.record(_progress(done=0, eta_s=None))  # the first: written
    now[0] = 0.3
    await recorder.record(_progress(done=0, eta_s=None, elapsed_s=43))  # too soon: held
    now[0] = 0.5
    await recorder.record(_progress(done=1))  # a resource finished: written at once
    now[0] = 0.6
    await recorder.record(_progress(done=1, elapsed_s=44))  # held
    now[0] = 1.7
    await recorder.record(_progress(done=1, elapsed_s=45))  # a second later: written
    now[0] = 1.8
    await recorder.record(_progress(done=1, elapsed_s=46))  # held ...
    await recorder.flush()  # ... until the drive ends
    assert [(p.done, p.elapsed_s) for p in store.written] == [(0, 42), (1, 42), (1, 45), (1, 46)]
    await recorder.flush()
    assert len(store.written) == 4, "nothing pending, nothing written"
    await recorder.record(_progress(done=16, finished=True, elapsed_s=46.5))
    assert store.written[-1].finished, "the end of a step is written at once"
    store.fail = True
    await recorder.record(_progress(operation="destroy", done=0))  # logged, not raised


def _detail(state: ConductorState, progress: StepProgress) -> RunDetail:
    at = progress.started_at
    return RunDetail(
        run_id="run-1",
        goal_id="g-1",
        revision=1,
        title="Logs",
        requested_by=None,
        state=state,
        created_at=at,
        updated_at=at,
        goal=GoalStatement.model_validate(example_goal(goal_id="g-1")),
        progress=progress,
    )


def test_the_slack_status_line_carries_apply_and_rollback_progress() -> None:
    line = (
        "applying: 7 of 16 resources, 42s; now aws_kms_key.stack (create, 20s) and 1 more; "
        "about 54s left"
    )
    assert status_line(_detail(ConductorState.APPLYING, _progress())) == (
        f":gear: Approved; applying ({line})"
    )
    undoing = _progress(step="rollback", operation="destroy")
    assert status_line(_detail(ConductorState.ROLLBACK, undoing)).startswith(
        ":rewind: Rolling back (destroying: 7 of 16 resources"
    )
    planned = _progress(step="build", operation="plan", finished=True)
    assert status_line(_detail(ConductorState.APPLYING, planned)) == ":gear: Approved; applying"


def _record(state: ConductorState, progress: StepProgress | None = None) -> RunRecord:
    at = datetime(2026, 12, 7, 2, 14, 7, tzinfo=UTC)
    return RunRecord(
        run_id="run-1",
        goal_id="g-1",
        revision=1,
        title="Logs",
        requested_by=None,
        goal=GoalStatement.model_validate(example_goal(goal_id="g-1")),
        state=state,
        last_seq=5,
        summary={},
        decision=None,
        lease_owner="w1" if not state.is_terminal else None,
        lease_until=None,
        apply_started_at=None,
        created_at=at,
        updated_at=at,
        progress=progress,
    )


async def test_follow_prints_each_change_until_the_run_ends() -> None:
    rows = [
        _record(ConductorState.APPLYING),
        _record(ConductorState.APPLYING, _progress(done=1)),
        _record(ConductorState.APPLYING, _progress(done=1)),  # nothing new: nothing printed
        _record(ConductorState.APPLYING, _progress(done=7)),
        _record(ConductorState.DONE, _progress(done=16, finished=True, current=[], eta_s=None)),
    ]

    class Runs:
        async def get(self, run_id: str) -> RunRecord:
            return rows.pop(0)

    said: list[str] = []
    services = SimpleNamespace(runs=Runs())
    final = await follow_run(services, "run-1", said.append, interval_s=0)  # type: ignore[arg-type]
    assert final.state is ConductorState.DONE
    lines = [line.split(" ", 1)[1] for line in said]  # without the time
    assert lines == [
        "APPLYING (worker w1)",
        "  apply: applying: 1 of 16 resources, 42s; now aws_kms_key.stack (create, 20s) and "
        "1 more; about 54s left",
        "  apply: applying: 7 of 16 resources, 42s; now aws_kms_key.stack (create, 20s) and "
        "1 more; about 54s left",
        "DONE",
        "  apply: applied: 16 of 16 resources, 42s",
    ]


def test_crew_show_help_explains_follow() -> None:
    result = CliRunner().invoke(app, ["show", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--follow" in result.output
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    assert "until the run ends or waits at the gate" in words


def test_progress_never_stops_the_command() -> None:
    from tools.terraform import _report_progress

    reported: list[StepProgress] = []
    tracker = ProgressTracker("apply", "apply", datetime(2026, 12, 7, tzinfo=UTC))
    watcher = ResourceProgress(step="apply", report=reported.append)
    line = tf_fixture("apply.jsonl").splitlines()[1]
    _report_progress(tracker, watcher, line.replace("Plan to create", "Plan\\u0000 \\ud800"))
    assert reported[-1].last_message == "aws_s3_bucket.stack_access_logs: Plan ?"

    def broken(progress: StepProgress) -> None:
        raise RuntimeError("the sink is gone")

    _report_progress(tracker, ResourceProgress(step="apply", report=broken), line)  # logged
    _report_progress(tracker, watcher, None)
    assert reported[-1].finished
