"""What goes into the vector memory and what comes out of it (memory/vectors/store.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memory.vectors.schema import ItemType


@dataclass(frozen=True)
class MemoryItem:
    """One row to store (crew_memory_items in memory/vectors/schema.py says what each field
    means per type)."""

    key: str
    item_type: ItemType
    ref: str
    content: str
    content_hash: str
    embedding: Sequence[float]
    cloud: str | None = None
    region: str | None = None
    workload_kind: str | None = None
    run_id: str | None = None
    source_seq: int | None = None
    outcome: str | None = None
    result: str | None = None
    reason: str | None = None
    payload: dict[str, Any] | None = None
    happened_at: datetime | None = None
    path: str | None = None
    anchor: str | None = None
    heading: str | None = None


@dataclass(frozen=True)
class MemoryFilter:
    """Metadata a hit must match. None: any. A row without a value (a runbook with no front
    matter, a goal without a workload kind) matches any value asked for."""

    item_types: tuple[ItemType, ...] | None = None
    cloud: str | None = None
    region: str | None = None
    workload_kind: str | None = None
    exclude_run: str | None = None


@dataclass(frozen=True)
class MemoryHit:
    item_type: ItemType
    ref: str
    distance: float
    """Cosine distance to the query: 0 identical, 1 unrelated, 2 opposite."""
    content: str
    cloud: str | None
    region: str | None
    workload_kind: str | None
    run_id: str | None
    outcome: str | None
    result: str | None
    reason: str | None
    payload: dict[str, Any] | None
    happened_at: datetime | None
    path: str | None
    anchor: str | None
    heading: str | None


@dataclass(frozen=True)
class FinishedRun:
    """A run in a final state whose latest version is not yet in a space."""

    run_id: str
    state: str
    last_seq: int
    goal: dict[str, Any]
    plan: dict[str, Any] | None
    error: str | None
    last_event: str | None
    last_actor: str | None
    updated_at: datetime


@dataclass(frozen=True)
class SpaceStats:
    embedder: str
    dims: int
    index_name: str
    counts: dict[str, int]
