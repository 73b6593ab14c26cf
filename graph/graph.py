"""The Conductor: one LangGraph StateGraph that reads like the state diagram.

    PENDING -> IN_PROGRESS -> VALIDATING -> READY_FOR_APPLY -> WAIT_FOR_APPROVE -> APPLYING -> DONE
    IN_PROGRESS -> BLOCKED (design blocked, build failed)     VALIDATING -> BLOCKED (FAIL)
    WAIT_FOR_APPROVE -> REJECTED                               APPLYING -> ROLLBACK -> DONE | FAILED
    DONE -> ROLLBACK (a human asks to roll a finished run back)

Each node declares the transitions it may make (node metadata); `graph/diagram.py` renders the
Mermaid state diagram from the compiled graph with them.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from graph.context import CrewContext
from graph.state import RunState
from nodes import approval, atlas, forge, sentinel
from schemas.states import ConductorState as S

END: Literal["__end__"] = "__end__"

#: (from, to) pairs each node may produce; the diagram and a test are built on these.
TRANSITIONS: dict[str, list[tuple[S, S]]] = {
    "design": [(S.PENDING, S.IN_PROGRESS), (S.IN_PROGRESS, S.BLOCKED)],
    "build": [(S.IN_PROGRESS, S.VALIDATING), (S.IN_PROGRESS, S.BLOCKED)],
    "validate": [(S.VALIDATING, S.READY_FOR_APPLY), (S.VALIDATING, S.BLOCKED)],
    "request_approval": [(S.READY_FOR_APPLY, S.WAIT_FOR_APPROVE)],
    "await_approval": [(S.WAIT_FOR_APPROVE, S.APPLYING), (S.WAIT_FOR_APPROVE, S.REJECTED)],
    # DONE -> ROLLBACK is a human's request (`crew rollback`, POST .../rollback), recorded by
    # crew.service.request_rollback as an update of this node; the worker then runs rollback.
    "apply": [(S.APPLYING, S.DONE), (S.APPLYING, S.ROLLBACK), (S.DONE, S.ROLLBACK)],
    "rollback": [(S.ROLLBACK, S.DONE), (S.ROLLBACK, S.FAILED)],
}


def after_design(state: RunState) -> Literal["build", "__end__"]:
    return "build" if state.get("plan") is not None and not state.get("design_blocked") else END


def after_build(state: RunState) -> Literal["validate", "__end__"]:
    build = state.get("build")
    return "validate" if build is not None and build.ok else END


def after_validate(state: RunState) -> Literal["request_approval", "__end__"]:
    return "request_approval" if state.get("conductor_state") == S.READY_FOR_APPLY else END


def after_decision(state: RunState) -> Literal["apply", "__end__"]:
    return "apply" if state.get("conductor_state") == S.APPLYING else END


def after_apply(state: RunState) -> Literal["rollback", "__end__"]:
    return "rollback" if state.get("conductor_state") == S.ROLLBACK else END


def build_graph(
    checkpointer: Checkpointer = None,
) -> CompiledStateGraph[RunState, CrewContext, RunState, RunState]:
    """The compiled Conductor. The service passes its Postgres saver; LangGraph Studio and
    tests may pass their own (or none)."""
    g = StateGraph(RunState, context_schema=CrewContext)

    def node_meta(name: str) -> dict[str, object]:
        return {"transitions": [[a.value, b.value] for a, b in TRANSITIONS[name]]}

    g.add_node("design", atlas.design, metadata=node_meta("design"))
    g.add_node("build", forge.build, metadata=node_meta("build"))
    g.add_node("validate", sentinel.validate, metadata=node_meta("validate"))
    g.add_node(
        "request_approval", approval.request_approval, metadata=node_meta("request_approval")
    )
    g.add_node("await_approval", approval.await_approval, metadata=node_meta("await_approval"))
    g.add_node("apply", forge.apply, metadata=node_meta("apply"))
    g.add_node("rollback", forge.rollback, metadata=node_meta("rollback"))

    g.add_edge(START, "design")
    g.add_conditional_edges("design", after_design)
    g.add_conditional_edges("build", after_build)
    g.add_conditional_edges("validate", after_validate)
    g.add_edge("request_approval", "await_approval")
    g.add_conditional_edges("await_approval", after_decision)
    g.add_conditional_edges("apply", after_apply)
    g.add_edge("rollback", END)

    return g.compile(checkpointer=checkpointer, name="conductor")
