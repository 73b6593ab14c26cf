"""The Conductor: one LangGraph StateGraph that reads like the state diagram.

    PENDING -> IN_PROGRESS -> VALIDATING -> READY_FOR_APPLY -> WAIT_FOR_APPROVE -> APPLYING -> DONE
    IN_PROGRESS -> BLOCKED (design blocked, build failed)     VALIDATING -> BLOCKED (FAIL)
    WAIT_FOR_APPROVE -> REJECTED                               APPLYING -> ROLLBACK -> DONE | FAILED
    DONE -> ROLLBACK (a human asks to roll a finished run back)

Out of the flow (crew/lifecycle.py, not drawn): a run not yet applying may be cancelled (->
REJECTED, decision `cancel`), and one whose step keeps failing unexpectedly ends BLOCKED after
CREW_RUN_MAX_ATTEMPTS tries.

Each node declares the transitions it may make (node metadata); `graph/diagram.py` renders the
Mermaid state diagram from the compiled graph with them.
"""

from __future__ import annotations

from collections.abc import Awaitable
from functools import wraps
from typing import Literal, Protocol

from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from graph.context import CrewContext
from graph.state import RunState, coerce_state
from nodes import approval, atlas, forge, sentinel
from schemas.states import ConductorState as S

END: Literal["__end__"] = "__end__"


class Node(Protocol):
    """A Conductor node: nodes/*.py, each `async def (state, runtime) -> update`."""

    def __call__(self, state: RunState, runtime: Runtime[CrewContext]) -> Awaitable[RunState]: ...


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


def _ended(state: RunState) -> bool:
    """A run ended out of the flow (cancelled, given up: crew/lifecycle.py) goes nowhere."""
    current = state.get("conductor_state")
    return current is not None and S(current).is_terminal


def after_design(state: RunState) -> Literal["build", "__end__"]:
    if _ended(state):
        return END
    return "build" if state.get("plan") is not None and not state.get("design_blocked") else END


def after_build(state: RunState) -> Literal["validate", "__end__"]:
    build = state.get("build")
    return "validate" if build is not None and build.ok and not _ended(state) else END


def after_validate(state: RunState) -> Literal["request_approval", "__end__"]:
    return "request_approval" if state.get("conductor_state") == S.READY_FOR_APPLY else END


def after_decision(state: RunState) -> Literal["apply", "__end__"]:
    return "apply" if state.get("conductor_state") == S.APPLYING else END


def after_apply(state: RunState) -> Literal["rollback", "__end__"]:
    return "rollback" if state.get("conductor_state") == S.ROLLBACK else END


def bind_context(node: Node, context: CrewContext) -> Node:
    """`node` run with `context` whatever the caller passed, on its state as typed values.

    For a caller that cannot hand over a CrewContext: the LangGraph API server (`langgraph
    dev`, graph/studio.py) passes JSON as the runtime context and as the run's input.
    """

    @wraps(node)
    async def bound(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
        return await node(coerce_state(state), runtime.override(context=context))

    return bound


def build_graph(
    checkpointer: Checkpointer = None, *, context: CrewContext | None = None
) -> CompiledStateGraph[RunState, CrewContext, RunState, RunState]:
    """The compiled Conductor. The service passes its Postgres saver; LangGraph Studio and
    tests may pass their own (or none).

    With `context`, every node runs with that context (bind_context) and the graph declares
    no context schema: what LangGraph Studio serves (graph/studio.py). Without it, callers
    pass a CrewContext with each invocation (`context=`), as the worker does.
    """
    g = StateGraph(RunState, context_schema=None if context is not None else CrewContext)

    def add(name: str, node: Node) -> None:
        g.add_node(
            name,
            bind_context(node, context) if context is not None else node,
            metadata={"transitions": [[a.value, b.value] for a, b in TRANSITIONS[name]]},
        )

    add("design", atlas.design)
    add("build", forge.build)
    add("validate", sentinel.validate)
    add("request_approval", approval.request_approval)
    add("await_approval", approval.await_approval)
    add("apply", forge.apply)
    add("rollback", forge.rollback)

    g.add_edge(START, "design")
    g.add_conditional_edges("design", after_design)
    g.add_conditional_edges("build", after_build)
    g.add_conditional_edges("validate", after_validate)
    g.add_edge("request_approval", "await_approval")
    g.add_conditional_edges("await_approval", after_decision)
    g.add_conditional_edges("apply", after_apply)
    g.add_edge("rollback", END)

    return g.compile(checkpointer=checkpointer, name="conductor")
