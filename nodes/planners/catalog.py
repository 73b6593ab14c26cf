"""The catalog planner behind the Planner interface: deterministic, offline, one attempt."""

from __future__ import annotations

from collections.abc import Sequence

from catalog.planner import design_for
from catalog.reading import Reading, ReadingAids, read_goal
from graph.planner import Attempt, Proposal
from memory.plans import Recalled
from schemas.goal import GoalStatement


class CatalogPlanner:
    """Rules from the goal's structured fields and plain signals (catalog/planner.py).

    Retrying it would give the same answer, so it gets one attempt; past plans do not change
    its rules, so none are retrieved for it.
    """

    name = "catalog"
    model: str | None = None
    max_attempts = 1
    uses_memory = False

    def __init__(self, aids: ReadingAids | None = None) -> None:
        self._aids = aids

    async def propose(
        self, goal: GoalStatement, past: Sequence[Recalled], rejected: Sequence[Attempt]
    ) -> Proposal:
        return propose_from_catalog(goal, read_goal(goal, self._aids))


def propose_from_catalog(goal: GoalStatement, reading: Reading | None = None) -> Proposal:
    design = design_for(goal, reading)
    if design is None:
        return Proposal(None, error="the goal gives nothing to design")
    return Proposal(design, raw=design.model_dump_json())
