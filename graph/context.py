"""What nodes receive besides the state: the few settings they read, tool runners and stores.

Built once per process in `crew/container.py` and passed as LangGraph's run-scoped context, so
nodes never open connections or read the environment themselves, and tests can hand them
other runners. Everything here is an interface or a value: the container (crew/) depends on
this module, never the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from catalog.gaps import UnsupportedAsks
from catalog.reading import ReadingAids
from graph.planner import Planner
from memory.plans import NoPlanMemory, PlanMemory
from sentinel.engine import Sentinel
from tools.backend import StateBackend
from tools.bus import EventPublisher
from tools.terraform import TerraformRunner


class StackLockProvider(Protocol):
    """One run at a time per Terraform stack (memory.locks.StackLocks implements it)."""

    def hold(
        self, stack_id: str, *, run_id: str | None, worker_id: str, operation: str, wait_s: float
    ) -> AbstractAsyncContextManager[object]: ...


class LocalStackLocks:
    """One run at a time per stack within this process: for a context without a database
    (LangGraph Studio, unit tests). Owned by the context that holds it, never shared
    through module state."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(
        self, stack_id: str, *, run_id: str | None, worker_id: str, operation: str, wait_s: float
    ) -> AsyncIterator[object]:
        lock = self._locks.setdefault(stack_id, asyncio.Lock())
        async with lock:
            yield lock


class ApplyLedger(Protocol):
    """Durable record that an apply began (memory.runs.RunStore implements it)."""

    async def mark_apply_started(self, run_id: str, at: datetime) -> bool: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NodeConfig:
    """The settings nodes read, copied from `crew.settings.Settings` by the container
    (`crew.container.node_config`): a node sees these four values, not the whole
    configuration of the service."""

    workspaces_dir: Path
    """Where each run's Terraform workspace (one directory per revision) is written."""
    tf_state_dir: Path
    """Local Terraform state, one directory per stack (when no remote backend is wired)."""
    stack_lock_wait_s: float = 600.0
    """How long a plan/apply/rollback waits for another run's lock on the same stack."""
    mermaid_cli: Path | None = None
    """The Mermaid CLI that renders plan diagrams to SVG; None: Mermaid source only."""


@dataclass(frozen=True)
class CrewContext:
    config: NodeConfig
    terraform: TerraformRunner
    ledger: ApplyLedger
    sentinel: Sentinel
    """The validator, built by the container with the org policy and the scanners found."""
    planner: Planner
    """The design node's planner: the offline catalog planner unless the container wires
    the LLM planner (CREW_PLANNER / CREW_LLM_MODEL)."""
    worker_id: str = "local"
    clock: Callable[[], datetime] = utc_now
    # -- Atlas: what it reads goals with, and what it remembers ----------------------------
    reading: ReadingAids = field(default_factory=ReadingAids)
    """What the reader of goals is lent: the sentence-embedding matcher (built once per
    process by the container); the default reads by rules alone."""
    unsupported_asks: UnsupportedAsks = "block"
    """The org policy's unsupported_asks: 'block' (default) or 'warn'."""
    plan_memory: PlanMemory = field(default_factory=NoPlanMemory)
    """Past PlanSpecs with their outcome (and runbooks, with the vector memory), retrieved
    for planners that use them; crew/plan_memory.py picks it from CREW_MEMORY."""
    # -- Forge: where state lives and who may change a stack ------------------------------
    state_backend: StateBackend | None = None
    """Terraform state location (local files or S3); None: local files under the data dir."""
    stack_locks: StackLockProvider = field(default_factory=LocalStackLocks)
    """Postgres advisory locks per stack (memory.locks.StackLocks); the default holds them
    in this process only (LangGraph Studio, unit tests: no database)."""
    # -- the event bus (crew/container.py wires the Postgres outbox) ------------------------
    events: EventPublisher | None = None
    """Emits an OpsEvent that is not a state transition (transitions become events with their
    checkpoint, on their own); None: no bus (unit tests)."""
