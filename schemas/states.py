"""The Conductor's run lifecycle (docs/architecture.md, The run)."""

from __future__ import annotations

from enum import StrEnum


class ConductorState(StrEnum):
    """Where a run is. The names are locked; transitions live in `graph/graph.py`."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    VALIDATING = "VALIDATING"
    READY_FOR_APPLY = "READY_FOR_APPLY"
    WAIT_FOR_APPROVE = "WAIT_FOR_APPROVE"
    APPLYING = "APPLYING"
    DONE = "DONE"
    BLOCKED = "BLOCKED"
    ROLLBACK = "ROLLBACK"
    REJECTED = "REJECTED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        """A terminal run needs no worker: nothing will move it without a new revision."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {ConductorState.DONE, ConductorState.BLOCKED, ConductorState.REJECTED, ConductorState.FAILED}
)
"""States a run never leaves on its own."""

ACTIVE_STATES = frozenset(
    {
        ConductorState.PENDING,
        ConductorState.IN_PROGRESS,
        ConductorState.VALIDATING,
        ConductorState.READY_FOR_APPLY,
        ConductorState.APPLYING,
        ConductorState.ROLLBACK,
    }
)
"""States in which a worker must be driving the run (after a crash, one picks it up again)."""
