"""Forge's apply and rollback paths through the compiled graph, with recorded terraform output:
the rollback SLA, the human rollback of a DONE run, revision re-apply, and the stack lock."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command

from fixtures.plans import c, plan_of
from graph.state import transition
from memory.locks import LockHolder, StackLockedError
from nodes.forge import restore_previous_state
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.errors import ToolTimeoutError
from schemas.events import EventType
from schemas.states import ConductorState
from tests.unit.support import make_goal, tf_fixture
from tests.unit.test_graph_flow import (
    RECORDED_RESOURCES,
    RUN_ID,
    T0,
    FakeTerraform,
    Harness,
    _apply_outcome,
    events,
    harness,
    recorded,
)

__all__ = ["harness"]  # the fixture, shared with test_graph_flow

S = ConductorState


class SettableClock:
    """1 s per reading, plus whatever a test adds (a worker that was down for a while)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def use_clock(h: Harness) -> SettableClock:
    clock = SettableClock()
    h.context = dataclasses.replace(h.context, clock=clock)
    return clock


async def test_a_rollback_that_starts_late_misses_the_sla(harness: Harness) -> None:
    clock = use_clock(harness)
    harness.terraform.apply_error = ToolTimeoutError("terraform apply ran longer than 1800s")
    await harness.start(make_goal())
    # the worker stops right after the failed apply; another resumes 6 minutes later
    decision = ApprovalDecision(
        run_id=RUN_ID,
        decision=Decision.APPROVE,
        actor="carol",
        channel=Channel.CLI,
        at=clock.now,
    ).model_dump(mode="json")
    await harness.graph.ainvoke(
        Command(resume=decision),
        harness.config,
        context=harness.context,
        interrupt_before=["rollback"],
    )
    assert (await harness.values())["conductor_state"] is S.ROLLBACK
    clock.now += timedelta(minutes=6)
    await harness.graph.ainvoke(None, harness.config, context=harness.context)
    values = await harness.values()
    rollback = values["rollback_result"]
    assert rollback.ok
    assert values["conductor_state"] is S.DONE
    began = (rollback.rollback_started_at - rollback.failure_at).total_seconds()
    assert began > 300
    assert rollback.sla_met is False
    assert "MISSED" in values["transitions"][-1].note


async def request_rollback(h: Harness, actor: str = "dave") -> None:
    """What crew.service.request_rollback writes (the integration tests run the real one)."""
    values = await h.values()
    request = ApprovalDecision(
        run_id=RUN_ID,
        decision=Decision.ROLLBACK,
        actor=actor,
        channel=Channel.CLI,
        reason="wrong region",
        at=T0 + timedelta(hours=1),
    )
    update = {
        "rollback_request": request,
        "conductor_state": S.ROLLBACK,
        "transitions": [
            transition(
                values,  # type: ignore[arg-type]
                S.ROLLBACK,
                event=EventType.ROLLBACK_STARTED,
                actor=actor,
                at=request.at,
                artifact="rollback_request",
                note="wrong region",
            )
        ],
    }
    await h.graph.aupdate_state(h.config, update, as_node="apply")


async def test_a_human_rolls_back_a_done_run(harness: Harness) -> None:
    await harness.start(make_goal())
    await harness.decide(Decision.APPROVE)
    assert (await harness.values())["conductor_state"] is S.DONE
    await request_rollback(harness)
    snapshot = await harness.graph.aget_state(harness.config)
    assert snapshot.next == ("rollback",), "the graph routes DONE -> ROLLBACK to rollback"
    await harness.graph.ainvoke(None, harness.config, context=harness.context)
    values = await harness.values()
    assert values["conductor_state"] is S.DONE
    assert events(values)[-2:] == [
        (7, EventType.ROLLBACK_STARTED, S.DONE, S.ROLLBACK),
        (8, EventType.ROLLBACK_DONE, S.ROLLBACK, S.DONE),
    ]
    assert values["transitions"][-2].actor == "dave"
    rollback = values["rollback_result"]
    assert rollback.ok
    assert rollback.restored == "empty stack"
    assert rollback.resources.destroyed == RECORDED_RESOURCES
    assert (rollback.failure_at, rollback.sla_met) == (None, None)
    assert harness.terraform.state == {}
    assert values["apply_result"].ok, "the apply's own record is kept"


async def test_rolling_back_revision_two_reapplies_revision_one(
    harness: Harness, tmp_path: Path
) -> None:
    fake: FakeTerraform = harness.terraform
    plan = plan_of([c("sqs_queue", "jobs")], revision=2)
    runs = harness.context.config.workspaces_dir / RUN_ID
    for revision in (1, 2):
        (runs / f"r{revision}").mkdir(parents=True)
        (runs / f"r{revision}" / "main.tf").write_text("# rendered\n")
    (runs / "r2" / "snapshots").mkdir()
    (runs / "r2" / "snapshots" / "pre-apply.tfstate").write_text("{}")
    fake.state = json.loads(tf_fixture("state-applied.json"))
    seen: list[tuple[str, str]] = []

    async def plan_in(workdir: Path, planfile: str, *_: Any, **__: Any) -> Any:
        seen.append(("plan", workdir.name))
        (workdir / planfile).write_bytes(b"plan")
        return await FakeTerraform.plan(fake, workdir, planfile)

    async def apply_in(workdir: Path, planfile: str, *_: Any, **__: Any) -> Any:
        seen.append(("apply", f"{workdir.name}/{planfile}"))
        fake.state = {}
        return _apply_outcome(recorded("apply.jsonl", 0))

    fake.plan = plan_in  # type: ignore[method-assign]
    fake.apply = apply_in  # type: ignore[method-assign]
    restore = await restore_previous_state(harness.context, plan, runs / "r2")
    assert restore.ok, restore.error
    assert restore.restored == "revision 1"
    assert seen == [("plan", "r1"), ("apply", "r1/rollback.tfplan")]
    assert "destroy" not in fake.calls


class BusyStack:
    """A lock provider whose stack is always held by someone else."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def hold(self, stack_id: str, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        self.asked.append(kwargs["operation"])

        @contextlib.asynccontextmanager
        async def refuse() -> AsyncIterator[None]:
            holder = LockHolder(stack_id, "other-run", "worker-2", "apply", T0)
            raise StackLockedError(stack_id, holder, kwargs["wait_s"])
            yield

        return refuse()


async def test_a_locked_stack_applies_nothing_and_says_who_holds_it(harness: Harness) -> None:
    await harness.start(make_goal())
    busy = BusyStack()
    harness.context = dataclasses.replace(harness.context, stack_locks=busy)
    with pytest.raises(StackLockedError, match="locked by run other-run \\(apply by worker-2"):
        await harness.decide(Decision.APPROVE)
    assert busy.asked == ["apply"]
    assert "apply" not in harness.terraform.calls
    assert harness.ledger.started == {}, "a refused apply is not recorded as started"
    assert (await harness.values())["conductor_state"] is S.APPLYING
