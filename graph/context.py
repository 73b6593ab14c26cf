"""What nodes receive besides the state: settings, tool runners and stores.

Built once per process in `crew/container.py` and passed as LangGraph's run-scoped context, so
nodes never open connections or read the environment themselves, and tests can hand them
other runners.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from catalog.gaps import UnsupportedAsks
from catalog.reading import ReadingAids
from crew.settings import Settings
from memory.plans import NoPlanMemory, PlanMemory
from nodes.planners import Planner
from nodes.planners.catalog import CatalogPlanner
from sentinel.engine import Sentinel
from tools.backend import StateBackend
from tools.bus import EventPublisher
from tools.terraform import TerraformRunner


class StackLockProvider(Protocol):
    """One run at a time per Terraform stack (memory.locks.StackLocks implements it)."""

    def hold(
        self, stack_id: str, *, run_id: str | None, worker_id: str, operation: str, wait_s: float
    ) -> AbstractAsyncContextManager[object]: ...


class ApplyLedger(Protocol):
    """Durable record that an apply began (memory.runs.RunStore implements it)."""

    async def mark_apply_started(self, run_id: str, at: datetime) -> bool: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CrewContext:
    settings: Settings
    terraform: TerraformRunner
    ledger: ApplyLedger
    worker_id: str = "local"
    clock: Callable[[], datetime] = utc_now
    # -- Atlas: who designs, and what it remembers (crew/container.py picks from settings) --
    planner: Planner = field(default_factory=CatalogPlanner)
    """The design node's planner; the offline catalog planner unless the container wires
    the LLM planner (CREW_PLANNER / CREW_LLM_MODEL)."""
    reading: ReadingAids = field(default_factory=ReadingAids)
    """What the reader of goals is lent: the sentence-embedding matcher (built once per
    process by the container); the default reads by rules alone."""
    unsupported_asks: UnsupportedAsks = "block"
    """The org policy's unsupported_asks: 'block' (default) or 'warn'."""
    plan_memory: PlanMemory = field(default_factory=NoPlanMemory)
    """Past PlanSpecs with their outcome (and runbooks, with the vector memory), retrieved
    for planners that use them; crew/plan_memory.py picks it from CREW_MEMORY."""
    sentinel: Sentinel | None = None
    """The validator (crew/container.py builds it with the org policy); None: the default
    wiring from `settings`, built when the validate node first needs it."""
    # -- Forge: where state lives and who may change a stack ------------------------------
    state_backend: StateBackend | None = None
    """Terraform state location (local files or S3); None: local files under the data dir."""
    stack_locks: StackLockProvider | None = None
    """Postgres advisory locks per stack (memory.locks.StackLocks); None: locks held in this
    process only (unit tests, no database)."""
    # -- the event bus (crew/container.py wires the Postgres outbox) ------------------------
    events: EventPublisher | None = None
    """Emits an OpsEvent that is not a state transition (transitions become events with their
    checkpoint, on their own); None: no bus (unit tests)."""
