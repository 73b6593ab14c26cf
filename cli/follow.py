"""`crew show RUN --follow`: print a run's state changes and terraform progress as they happen.

Reads the run's row (the worker records progress there, crew/progress.py) once a second and
prints a line whenever the state or the progress changed, until the run stops somewhere it
stays by itself: ended (DONE, BLOCKED, REJECTED, FAILED) or waiting at the gate for a human.
Nothing is driven here: whichever worker holds the run keeps driving it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crew.progress import describe_progress
from schemas.states import ConductorState

if TYPE_CHECKING:
    from crew.container import Services
    from memory.runs import RunRecord

#: How often the run's row is read.
FOLLOW_INTERVAL_S = 1.0


def is_stable(record: RunRecord) -> bool:
    """Whether the run stays where it is without a human: ended, or at the gate undecided."""
    return record.state.is_terminal or (
        record.state is ConductorState.WAIT_FOR_APPROVE and record.decision is None
    )


async def follow_run(
    services: Services,
    run_id: str,
    say: Callable[[str], None],
    *,
    interval_s: float = FOLLOW_INTERVAL_S,
) -> RunRecord:
    """Print (through `say`) each new state and progress line of the run until it is stable;
    returns its row then."""
    last_state: ConductorState | None = None
    last_line: str | None = None
    while True:
        record = await services.runs.get(run_id)
        now = f"{datetime.now(UTC):%H:%M:%S}"
        if record.state is not last_state:
            held = f" (worker {record.lease_owner})" if record.lease_owner else ""
            say(f"{now} {record.state.value}{held}")
            last_state = record.state
        if record.progress is not None:
            line = f"{record.progress.step}: {describe_progress(record.progress)}"
            if line != last_line:
                say(f"{now}   {line}")
                last_line = line
        if record.last_error:
            say(f"{now}   worker error (retrying): {record.last_error}")
        if is_stable(record):
            return record
        await asyncio.sleep(interval_s)
