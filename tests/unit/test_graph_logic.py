"""graph/: routing, the declared transitions, the generated diagrams, and state projection."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graph import graph as conductor
from graph.diagram import DIAGRAM_DIR, render_diagrams, state_diagram
from graph.graph import (
    END,
    TRANSITIONS,
    after_apply,
    after_build,
    after_decision,
    after_design,
    after_validate,
    build_graph,
)
from graph.state import RunState, initial_state, merge_counts, project_run, summarize, transition
from schemas.audit import Transition
from schemas.build import BuildStatus, PlanChangeSummary
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.plan import BlockReason, DesignBlocked, PlanSpec
from schemas.states import ACTIVE_STATES, TERMINAL_STATES, ConductorState
from schemas.validation import ValidationReport, Verdict
from tests.unit.support import ARTIFACT_EXAMPLES
from tools.stack import StackKey

S = ConductorState
T0 = datetime(2026, 11, 24, 18, 24, 40, tzinfo=UTC)
REGENERATE = "run `crew diagram export` (or `make diagrams`) and commit docs/diagrams/src/"


def build_status(ok: bool) -> BuildStatus:
    return BuildStatus(
        plan_id="p",
        ok=ok,
        workspace="/w",
        plan=PlanChangeSummary(create=5, update=1, delete=0),
        plan_file="crew.tfplan" if ok else None,
        plan_file_digest="0" * 64 if ok else None,
    )


def example_validation(verdict: Verdict) -> ValidationReport:
    """The example run's report (examples/artifacts), with the verdict a test needs."""
    report = ValidationReport.model_validate_json(
        (ARTIFACT_EXAMPLES / "ValidationReport.json").read_text(encoding="utf-8")
    )
    return report.model_copy(update={"verdict": verdict})


BLOCKED = DesignBlocked(
    goal_id="g", reasons=[BlockReason(constraint="workload", why="w", suggestion="s")], attempts=1
)


# -- routing ----------------------------------------------------------------------------------


def test_after_design(example_plan: PlanSpec) -> None:
    assert after_design({"plan": example_plan}) == "build"
    assert after_design({"plan": example_plan, "design_blocked": None}) == "build"
    assert after_design({"design_blocked": BLOCKED}) == END
    assert after_design({"plan": example_plan, "design_blocked": BLOCKED}) == END
    assert after_design({}) == END


def test_after_build() -> None:
    assert after_build({"build": build_status(True)}) == "validate"
    assert after_build({"build": build_status(False)}) == END
    assert after_build({"build": None}) == END
    assert after_build({}) == END


@pytest.mark.parametrize(
    ("state", "router", "expected"),
    [
        (S.READY_FOR_APPLY, after_validate, "request_approval"),
        (S.BLOCKED, after_validate, END),
        (S.VALIDATING, after_validate, END),
        (S.APPLYING, after_decision, "apply"),
        (S.REJECTED, after_decision, END),
        (S.WAIT_FOR_APPROVE, after_decision, END),
        (S.ROLLBACK, after_apply, "rollback"),
        (S.DONE, after_apply, END),
    ],
)
def test_routing_on_conductor_state(state: ConductorState, router: Any, expected: str) -> None:
    assert router({"conductor_state": state}) == expected


def test_routers_stop_without_a_state() -> None:
    for router in (after_validate, after_decision, after_apply):
        assert router({}) == END


def test_every_declared_target_state_is_routed_consistently() -> None:
    """A node that ends in a terminal state routes to END; otherwise to the node that moves
    the run on from that state."""
    mover = {a: node for node, pairs in TRANSITIONS.items() for a, _ in pairs}
    routers = {"validate": after_validate, "await_approval": after_decision, "apply": after_apply}
    for node, router in routers.items():
        for _, target in TRANSITIONS[node]:
            expected = END if target in TERMINAL_STATES else mover[target]
            assert router({"conductor_state": target}) == expected, (node, target)


# -- declared transitions ---------------------------------------------------------------------


def test_transitions_cover_every_state() -> None:
    states = {s for pairs in TRANSITIONS.values() for pair in pairs for s in pair}
    assert states == set(ConductorState)


def test_pending_is_start_only_and_terminal_states_are_final() -> None:
    sources = {a for pairs in TRANSITIONS.values() for a, _ in pairs}
    targets = {b for pairs in TRANSITIONS.values() for _, b in pairs}
    assert S.PENDING not in targets
    # only a human moves a run out of a terminal state: rolling back a DONE run
    assert sources & TERMINAL_STATES == {S.DONE}
    assert [pair for pair in TRANSITIONS["apply"] if pair[0] is S.DONE] == [(S.DONE, S.ROLLBACK)]
    assert TERMINAL_STATES.issubset(targets)
    # every state a run can sit in without being finished has a way out
    assert set(ConductorState) - TERMINAL_STATES <= sources


def test_state_sets_partition_the_lifecycle() -> None:
    """Active (a worker drives it), waiting for a human, or terminal: exactly one."""
    waiting = {S.WAIT_FOR_APPROVE}
    assert ACTIVE_STATES | TERMINAL_STATES | waiting == set(ConductorState)
    assert not ACTIVE_STATES & TERMINAL_STATES
    assert all(s.is_terminal for s in TERMINAL_STATES)
    assert not any(s.is_terminal for s in ACTIVE_STATES | waiting)


def test_the_designed_happy_path_is_declared() -> None:
    path = [
        S.PENDING,
        S.IN_PROGRESS,
        S.VALIDATING,
        S.READY_FOR_APPLY,
        S.WAIT_FOR_APPROVE,
        S.APPLYING,
        S.DONE,
    ]
    declared = {pair for pairs in TRANSITIONS.values() for pair in pairs}
    assert set(itertools.pairwise(path)) <= declared
    assert {(S.APPLYING, S.ROLLBACK), (S.ROLLBACK, S.DONE), (S.ROLLBACK, S.FAILED)} <= declared
    assert {(S.WAIT_FOR_APPROVE, S.REJECTED), (S.VALIDATING, S.BLOCKED)} <= declared


def test_compiled_graph_nodes_carry_their_transitions() -> None:
    drawable = build_graph().get_graph()
    nodes = {k: v for k, v in drawable.nodes.items() if not k.startswith("__")}
    assert set(nodes) == set(TRANSITIONS)
    for name, node in nodes.items():
        declared = [[a.value, b.value] for a, b in TRANSITIONS[name]]
        assert (node.metadata or {})["transitions"] == declared


def test_graph_edges_follow_the_flow() -> None:
    edges = {(e.source, e.target) for e in build_graph().get_graph().edges}
    assert {
        ("__start__", "design"),
        ("design", "build"),
        ("build", "validate"),
        ("validate", "request_approval"),
        ("request_approval", "await_approval"),
        ("await_approval", "apply"),
        ("apply", "rollback"),
        ("rollback", "__end__"),
    } <= edges
    assert conductor.END == "__end__"


# -- diagrams ---------------------------------------------------------------------------------


def test_committed_diagrams_match_the_graph() -> None:
    rendered = render_diagrams()
    # conductor*.mmd are generated; flow.mmd and topology.mmd beside them are drawn by hand
    committed = {p.name: p.read_text(encoding="utf-8") for p in DIAGRAM_DIR.glob("conductor*.mmd")}
    assert sorted(committed) == sorted(rendered), f"diagram files differ: {REGENERATE}"
    for name, text in rendered.items():
        assert committed[name] == text, f"docs/diagrams/src/{name} is stale: {REGENERATE}"


def test_state_diagram_draws_every_declared_transition() -> None:
    text = state_diagram(build_graph())
    assert text.splitlines()[3] == "stateDiagram-v2"
    assert "    [*] --> PENDING" in text
    for node, pairs in TRANSITIONS.items():
        for a, b in pairs:
            assert f"    {a.value} --> {b.value}: {node}\n" in text
    for state in TERMINAL_STATES:
        assert f"    {state.value} --> [*]\n" in text


# -- state helpers ----------------------------------------------------------------------------


def test_initial_state(object_storage_goal: GoalStatement) -> None:
    state = initial_state("run-1", "goal-1", object_storage_goal, T0)
    assert state["conductor_state"] is S.PENDING
    assert (state["run_id"], state["goal_id"], state["revision"]) == ("run-1", "goal-1", 1)
    assert state["transitions"] == []
    assert state["attempts"] == {}
    assert state["started_at"] == T0


def test_merge_counts() -> None:
    assert merge_counts({"design": 1, "build": 2}, {"build": 3}) == {"design": 1, "build": 3}
    assert merge_counts(None, {"x": 1}) == {"x": 1}
    assert merge_counts({"x": 1}, None) == {"x": 1}


def make_transition(seq: int, a: ConductorState | None, b: ConductorState, **kw: Any) -> Transition:
    return Transition(
        seq=seq,
        at=T0 + timedelta(seconds=seq),
        actor=kw.pop("actor", "atlas"),
        event=kw.pop("event", EventType.PLAN_PENDING),
        from_state=a,
        to_state=b,
        **kw,
    )


def test_transition_numbers_and_describes_the_step() -> None:
    state: RunState = {"conductor_state": S.PENDING, "transitions": []}
    first = transition(state, S.IN_PROGRESS, event=EventType.PLAN_PENDING, actor="atlas", at=T0)
    assert (first.seq, first.from_state, first.to_state) == (1, S.PENDING, S.IN_PROGRESS)
    assert (first.actor, first.event, first.at) == ("atlas", EventType.PLAN_PENDING, T0)
    assert (first.artifact, first.note) == (None, None)

    state = {"conductor_state": S.IN_PROGRESS, "transitions": [first]}
    second = transition(
        state,
        S.VALIDATING,
        event=EventType.VALIDATE_PENDING,
        actor="forge",
        at=T0,
        artifact="build",
        note="n",
    )
    assert (second.seq, second.from_state, second.artifact, second.note) == (
        2,
        S.IN_PROGRESS,
        "build",
        "n",
    )
    third = transition(
        state, S.BLOCKED, event=EventType.BUILD_FAILED, actor="forge", at=T0, offset=1
    )
    assert third.seq == 3


def test_transition_on_an_empty_state_starts_at_one() -> None:
    t = transition({}, S.IN_PROGRESS, event=EventType.DESIGN_STARTED, actor="atlas", at=T0)
    assert (t.seq, t.from_state) == (1, None)


def test_project_run_without_a_run_is_nothing() -> None:
    assert project_run("t", {}) is None
    assert project_run("t", {"transitions": []}) is None


def test_project_run_of_a_fresh_run(object_storage_goal: GoalStatement) -> None:
    projection = project_run("run-1", initial_state("run-1", "g", object_storage_goal, T0))
    assert projection is not None
    assert (projection.state, projection.last_seq) == (S.PENDING, 0)
    assert projection.records_after(0) == []


def test_project_run_builds_audit_records_after_a_seq(
    example_plan: PlanSpec,
    object_storage_goal: GoalStatement,
    show_plan_json: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = example_validation(Verdict.PASS)
    values: dict[str, Any] = {
        "run_id": "run-1",
        "goal": object_storage_goal,
        "plan": example_plan,
        "build": build_status(True),
        "validation": report,
        "conductor_state": S.READY_FOR_APPLY,
        "transitions": [
            make_transition(1, S.PENDING, S.IN_PROGRESS, artifact="plan"),
            make_transition(2, S.IN_PROGRESS, S.VALIDATING, artifact="build", actor="forge"),
            make_transition(3, S.VALIDATING, S.READY_FOR_APPLY, artifact="validation", note="ok"),
            make_transition(4, S.READY_FOR_APPLY, S.WAIT_FOR_APPROVE, artifact="missing"),
        ],
    }
    projection = project_run("run-1", values)
    assert projection is not None
    assert (projection.state, projection.last_seq) == (S.READY_FOR_APPLY, 4)
    assert projection.summary["verdict"] == "PASS"

    # artifacts are dumped lazily: only for the rows asked for
    dumped: list[str] = []
    original = PlanSpec.model_dump

    def spy(self: PlanSpec, **kwargs: Any) -> dict[str, Any]:
        dumped.append(self.plan_id)
        return original(self, **kwargs)

    monkeypatch.setattr(PlanSpec, "model_dump", spy)
    later = projection.records_after(1)
    assert dumped == []
    assert [r.seq for r in later] == [2, 3, 4]
    build_row, validation_row, missing_row = later
    assert build_row.artifact_type == "BuildStatus"
    assert build_row.artifact == build_status(True).model_dump(mode="json")
    assert build_row.actor == "forge"
    assert (validation_row.artifact_type, validation_row.note) == ("ValidationReport", "ok")
    assert validation_row.artifact is not None
    assert validation_row.artifact["verdict"] == "PASS"
    assert (missing_row.artifact_type, missing_row.artifact) == (None, None)

    (first,) = projection.records_after(0)[:1]
    assert dumped == [example_plan.plan_id]
    assert first.artifact_type == "PlanSpec"
    assert first.artifact == original(example_plan, mode="json")
    assert (first.run_id, first.from_state, first.to_state) == ("run-1", S.PENDING, S.IN_PROGRESS)
    assert projection.records_after(4) == []


def test_summarize_picks_the_numbers_a_run_list_shows(
    example_plan: PlanSpec, object_storage_goal: GoalStatement, show_plan_json: dict[str, Any]
) -> None:
    assert summarize({}) == {}
    report = example_validation(Verdict.FAIL)  # e.g. the forecast above the brake
    assert report.verdict is Verdict.FAIL
    summary = summarize(
        {
            "goal": object_storage_goal,
            "plan": example_plan,
            "build": build_status(True),
            "validation": report,
            "error": "validation failed: budget",
        }
    )
    assert summary == {
        "budget_monthly_usd": 20.0,
        "region": "eu-west-1",
        "environment": "dev",
        "plan_id": example_plan.plan_id,
        "components": 1,
        "stack_id": StackKey.of(example_plan).id,
        "plan_changes": {"create": 5, "update": 1, "delete": 0},
        "verdict": "FAIL",
        # one figure, the validated plan's (Sentinel's); Atlas's kept as the design estimate
        "forecast_monthly_usd": report.cost.monthly_usd,
        "forecast_source": "validated",
        "validated_monthly_usd": report.cost.monthly_usd,
        "design_estimate_monthly_usd": example_plan.budget.forecast_monthly_usd,
        "error": "validation failed: budget",
    }
    # before validation (or when it priced another revision) the design estimate, named so
    before = summarize({"plan": example_plan})
    assert (before["forecast_monthly_usd"], before["forecast_source"]) == (
        example_plan.budget.forecast_monthly_usd,
        "design",
    )
    other = report.model_copy(update={"plan_id": "another-revision"})
    assert summarize({"plan": example_plan, "validation": other})["forecast_source"] == "design"


def test_summarize_ignores_what_is_not_an_artifact() -> None:
    assert summarize({"goal": {"title": "dict"}, "plan": None, "error": None}) == {}
