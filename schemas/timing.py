"""How long each step of a run took, and the parts inside it: the run's own time breakdown.

Recorded by the nodes as they run (nodes/timing.py), kept in the run state with the
transitions, and shown by `crew show`, the REST run view and the step-duration metric, so the
question "where did the time to the gate go" is answered by the run, not by reading logs.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import Contract


class PartTiming(Contract):
    """One timed part of a step (a terraform command, a scanner, rendering)."""

    name: str = Field(min_length=1, max_length=100)
    offset_s: float = Field(
        description="Seconds from the step's start to this part's; negative: the part began "
        "before the step, side by side with the one before (Sentinel's scan of the .tf files "
        "runs while the build's terraform plans)."
    )
    seconds: float = Field(ge=0)


class StepTiming(Contract):
    """One run of one graph node. Parts may overlap: some run side by side."""

    step: str = Field(min_length=1, max_length=100, description="The graph node.")
    started_at: datetime
    seconds: float = Field(ge=0, description="Wall time of the node, its checkpoint excluded.")
    parts: list[PartTiming] = Field(default_factory=list)
