"""What nodes receive besides the state: settings, tool runners and stores.

Built once per process in `crew/container.py` and passed as LangGraph's run-scoped context, so
nodes never open connections or read the environment themselves, and tests can hand them
other runners.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from crew.settings import Settings
from tools.terraform import TerraformRunner


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
