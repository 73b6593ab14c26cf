"""A run's live terraform progress: recorded on its row at a bounded rate, and said in one line.

The nodes stream a `StepProgress` for every resource terraform moves (nodes/progress.py); the
worker hands each to a `ProgressRecorder`, which writes to Postgres at most once a second, and
at once whenever a resource finished or failed (those are what a reader waits for), plus the
last one when the step ends. `GET /v1/runs/{id}`, `crew show --follow` and the Slack message
read it from there; `describe_progress` is the line they show.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from schemas.progress import StepProgress

logger = logging.getLogger(__name__)

#: Fewest seconds between two writes of a run's progress (finished resources excepted).
MIN_WRITE_INTERVAL_S = 1.0

_VERBS = {"plan": "planning", "apply": "applying", "destroy": "destroying"}


class ProgressStore(Protocol):
    """memory.runs.RunStore implements it."""

    async def record_progress(
        self, run_id: str, progress: StepProgress, worker_id: str
    ) -> bool: ...


class ProgressRecorder:
    """Writes one run's progress, throttled; a write that fails is logged, never the run's."""

    def __init__(
        self,
        store: ProgressStore,
        run_id: str,
        worker_id: str,
        *,
        min_interval_s: float = MIN_WRITE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._worker_id = worker_id
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._last_write: float | None = None
        self._written: StepProgress | None = None
        self._pending: StepProgress | None = None
        self.writes = 0

    async def record(self, progress: StepProgress) -> None:
        """Take the newest progress; write it now if due (see the module docstring)."""
        self._pending = progress
        now = self._clock()
        if (
            self._last_write is None
            or progress.finished
            or _moved(self._written, progress)
            or now - self._last_write >= self._min_interval_s
        ):
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending (at the end of a drive: nothing newer is left unsaid)."""
        progress, self._pending = self._pending, None
        if progress is None:
            return
        self._last_write = self._clock()
        self._written = progress
        try:
            await self._store.record_progress(self._run_id, progress, self._worker_id)
            self.writes += 1
        except Exception as exc:  # progress is a view; the run goes on without it
            logger.warning(
                "progress of run %s not recorded: %s",
                self._run_id,
                exc,
                extra={"run_id": self._run_id},
            )


def _moved(before: StepProgress | None, after: StepProgress) -> bool:
    """A resource finished or failed, or another step began, since `before` was written."""
    if before is None:
        return True
    return (
        (before.step, before.operation, before.started_at)
        != (after.step, after.operation, after.started_at)
        or after.done != before.done
        or after.failed != before.failed
        or after.total != before.total
    )


def describe_progress(progress: StepProgress) -> str:
    """One line: "applying: 7 of 16 resources, 42s; now aws_kms_key.stack (create, 20s);
    about 30s left"."""
    verb = _VERBS[progress.operation]
    if progress.finished:
        verb = {"plan": "planned", "apply": "applied", "destroy": "destroyed"}[progress.operation]
    if progress.total is not None:
        count = f"{progress.done} of {progress.total} resources"
    else:
        count = f"{progress.done} resources so far"
    parts = [f"{verb}: {count}, {_duration(progress.elapsed_s)}"]
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    if progress.current and not progress.finished:
        first = progress.current[0]
        more = f" and {progress.in_flight - 1} more" if progress.in_flight > 1 else ""
        parts.append(f"now {first.address} ({first.action}, {_duration(first.elapsed_s)}){more}")
    if progress.eta_s is not None and not progress.finished:
        parts.append(f"about {_duration(progress.eta_s)} left")
    return "; ".join(parts)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest:02d}s"
