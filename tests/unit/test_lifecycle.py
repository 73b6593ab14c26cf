"""Why a run cannot be cancelled (the 409's words), which runs the console offers to cancel,
and the routing that ends a run updated out of its flow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.web.views import gate_buttons
from crew.lifecycle import CANCELLABLE
from graph.graph import END, after_build, after_design
from memory.runs import RunRecord, _not_cancellable
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.plan import PlanSpec
from schemas.run import RunDetail
from schemas.states import ConductorState as S
from tests.unit.support import ARTIFACT_EXAMPLES, make_goal

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def record(state: S, decision: Decision | None = None, applying: bool = False) -> RunRecord:
    goal = make_goal()
    return RunRecord(
        run_id="r-1",
        goal_id="g-1",
        revision=1,
        title=goal.title,
        requested_by=None,
        goal=goal,
        state=state,
        last_seq=3,
        summary={},
        decision=(
            ApprovalDecision(
                run_id="r-1", decision=decision, actor="alice", channel=Channel.REST, at=T0
            )
            if decision
            else None
        ),
        lease_owner=None,
        lease_until=None,
        apply_started_at=T0 if applying else None,
        created_at=T0,
        updated_at=T0,
    )


@pytest.mark.parametrize("state", [S.APPLYING, S.ROLLBACK])
def test_a_run_being_applied_says_it_cannot_be_stopped_half_way(state: S) -> None:
    message = _not_cancellable(record(state, Decision.APPROVE, applying=True))
    assert message.startswith(f"run r-1 is {state.value}: terraform is changing the cloud")
    assert "roll it back" in message


def test_an_approved_run_names_who_approved_and_what_to_do() -> None:
    message = _not_cancellable(record(S.WAIT_FOR_APPROVE, Decision.APPROVE))
    assert message.startswith("run r-1 was already approved by alice via rest at 2026-12-07")
    assert message.endswith("it is applied next: roll it back once it is DONE")
    for state, decision, word in (
        (S.IN_PROGRESS, Decision.CANCEL, "cancelled"),  # a cancel not written yet
        (S.REJECTED, Decision.CANCEL, "cancelled"),
        (S.REJECTED, Decision.REJECT, "rejected"),
    ):
        message = _not_cancellable(record(state, decision))
        assert message.startswith(f"run r-1 was already {word} by alice via rest")


@pytest.mark.parametrize("state", [S.DONE, S.BLOCKED, S.FAILED])
def test_an_ended_run_has_nothing_to_cancel(state: S) -> None:
    message = _not_cancellable(record(state, Decision.APPROVE if state is S.DONE else None))
    assert message.startswith(f"run r-1 already ended {state.value}; there is nothing to cancel")
    assert ("roll it back instead" in message) is (state is S.DONE)


def test_cancellable_states_are_those_before_the_apply() -> None:
    assert {
        S.PENDING,
        S.IN_PROGRESS,
        S.VALIDATING,
        S.READY_FOR_APPLY,
        S.WAIT_FOR_APPROVE,
    } == CANCELLABLE
    assert not CANCELLABLE & {S.APPLYING, S.ROLLBACK}
    assert not any(s.is_terminal for s in CANCELLABLE)


def detail(state: S, decision: Decision | None = None) -> RunDetail:
    run = record(state, decision)
    return RunDetail(**run.to_summary().model_dump(), goal=run.goal)


def test_the_console_offers_cancel_until_the_apply() -> None:
    assert gate_buttons(detail(S.PENDING)).cancel
    assert gate_buttons(detail(S.VALIDATING)).cancel
    at_gate = gate_buttons(detail(S.WAIT_FOR_APPROVE))
    assert (at_gate.approve, at_gate.reject, at_gate.cancel) == (True, True, True)
    assert not gate_buttons(detail(S.WAIT_FOR_APPROVE, Decision.APPROVE)).any
    assert not gate_buttons(detail(S.APPLYING, Decision.APPROVE)).cancel
    assert not gate_buttons(detail(S.REJECTED, Decision.CANCEL)).any


def test_a_run_ended_out_of_its_flow_goes_nowhere() -> None:
    plan = PlanSpec.model_validate_json((ARTIFACT_EXAMPLES / "PlanSpec.json").read_text())
    assert after_design({"plan": plan, "conductor_state": S.IN_PROGRESS}) == "build"
    assert after_design({"plan": plan, "conductor_state": S.REJECTED}) == END
    assert after_build({"conductor_state": S.BLOCKED}) == END
