"""The planner interface Atlas's design node talks to, and what crosses it.

It lives with the graph's context (graph/context.py carries a `Planner`), below the nodes that
implement it (nodes/planners/) and the design node that calls it (nodes/atlas.py).

A planner proposes; the node disposes. `Planner.propose` returns a `Proposal` (a
DesignProposal, or why there is none) and never validates it: the design node validates
every proposal the same way (catalog/validate.py), whoever made it, and gives planners that
can learn (`max_attempts > 1`) the problems of their previous attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from catalog.design import DesignProposal
from catalog.problems import Problem
from memory.plans import Recalled
from schemas.goal import GoalStatement


@dataclass(frozen=True)
class Proposal:
    design: DesignProposal | None
    error: str | None = None
    """Why there is no design (the reply did not parse, or there is nothing to design)."""
    raw: str = ""
    """The planner's answer as sent, truncated: echoed back to an LLM with its problems."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    method: str | None = None
    """How an LLM was asked for JSON (tools/llm.py OutputMethod), when one was."""


@dataclass(frozen=True)
class Attempt:
    """A rejected attempt, as feedback for the next one."""

    number: int
    problems: Sequence[Problem]
    answer: str


class Planner(Protocol):
    @property
    def name(self) -> str:
        """'catalog' or 'llm' (PlanSpec.provenance.planner)."""
        ...

    @property
    def model(self) -> str | None:
        """The LLM model name, when an LLM plans."""
        ...

    @property
    def max_attempts(self) -> int:
        """1 for a deterministic planner; 3 (two retries) for one that learns from feedback."""
        ...

    @property
    def uses_memory(self) -> bool:
        """Whether past plans and runbooks are worth retrieving for it."""
        ...

    async def propose(
        self, goal: GoalStatement, past: Sequence[Recalled], rejected: Sequence[Attempt]
    ) -> Proposal:
        """A design for `goal`; `past` holds the recalled plans and runbook snippets, most
        relevant first (empty unless `uses_memory`)."""
        ...


__all__ = ["Attempt", "Planner", "Proposal"]
