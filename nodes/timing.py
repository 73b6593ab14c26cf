"""The stopwatch a node records its StepTiming with (schemas/timing.py).

A node creates one at its top, times its parts (`part` around an await, `add` for a part timed
elsewhere) and returns `timer.done()` in its state update's `timings`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from schemas.timing import PartTiming, StepTiming


class StepTimer:
    def __init__(self, step: str, clock: Callable[[], datetime]) -> None:
        self.step = step
        self.started_at = clock()
        self._started = time.monotonic()
        self._parts: list[PartTiming] = []

    def add(self, name: str, started: float, seconds: float) -> None:
        """A part that began at `started` (time.monotonic()) and lasted `seconds`."""
        self._parts.append(
            PartTiming(
                name=name,
                offset_s=round(started - self._started, 3),
                seconds=round(max(0.0, seconds), 3),
            )
        )

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(name, started, time.monotonic() - started)

    def done(self) -> StepTiming:
        parts = sorted(self._parts, key=lambda p: p.offset_s)
        return StepTiming(
            step=self.step,
            started_at=self.started_at,
            seconds=round(time.monotonic() - self._started, 3),
            parts=parts,
        )


@contextlib.contextmanager
def timed(timer: StepTimer | None, name: str) -> Iterator[None]:
    """`timer.part(name)`, or nothing without a timer (helpers that run outside a node too)."""
    if timer is None:
        yield
        return
    with timer.part(name):
        yield
