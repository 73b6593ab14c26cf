"""Checkpoint write cost: AuditingPostgresSaver.aput against the stock AsyncPostgresSaver.aput.

Both savers write the same payloads: the checkpoints a real run wrote (read back from the
database), replayed in order onto fresh threads. The auditing saver's thread is a real crew
run holding a lease, so it does all its extra work (lock the run row, check the lease, insert
the audit rows, update the run row) in the one transaction, exactly as it does for a worker.
The two are interleaved step by step, alternating which goes first, so drift on a shared
machine hits both alike.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from crew.container import Services
from memory.checkpointer import LEASE_OWNER_KEY

REPLAY_OWNER = "bench-replay"


@dataclass
class ApputTimes:
    stock_s: list[float]
    auditing_s: list[float]
    steps: int


async def _run_checkpoints(services: Services, run_id: str) -> list[CheckpointTuple]:
    found = [
        c
        async for c in services.saver.alist({"configurable": {"thread_id": run_id}})
        if c.config["configurable"].get("checkpoint_ns", "") == ""
    ]
    found.reverse()  # alist is newest first
    return found


def _new_versions(tuple_: CheckpointTuple, parent: CheckpointTuple | None) -> dict[str, Any]:
    """The channel versions this checkpoint changed (what LangGraph hands `aput`)."""
    before = parent.checkpoint["channel_versions"] if parent else {}
    return {k: v for k, v in tuple_.checkpoint["channel_versions"].items() if before.get(k) != v}


async def measure_aput(services: Services, source_run_id: str, reps: int) -> ApputTimes:
    """Replay `source_run_id`'s checkpoints `reps` times through each saver."""
    checkpoints = await _run_checkpoints(services, source_run_id)
    if not checkpoints:
        raise RuntimeError(f"run {source_run_id} has no checkpoints to replay")
    stock = AsyncPostgresSaver(services.pool, serde=services.saver.serde)
    auditing = services.saver
    source = await services.runs.get(source_run_id)
    stock_s: list[float] = []
    auditing_s: list[float] = []
    for rep in range(reps):
        tag = uuid.uuid4().hex[:8]
        stock_thread = f"bench-stock-{tag}"
        audit_thread = f"bench-audit-{tag}"
        goal = source.goal.model_copy(update={"goal_id": audit_thread})
        await services.runs.create(goal, run_id=audit_thread, at=services.context.clock())
        claimed = await services.runs.claim(audit_thread, REPLAY_OWNER, 3600)
        assert claimed is not None
        stock_parent: str | None = None
        audit_parent: str | None = None
        previous: CheckpointTuple | None = None
        for step, tuple_ in enumerate(checkpoints):
            versions = _new_versions(tuple_, previous)
            previous = tuple_
            order = ("stock", "auditing") if (rep + step) % 2 == 0 else ("auditing", "stock")
            for which in order:
                if which == "stock":
                    config = _config(stock_thread, stock_parent)
                    started = time.perf_counter()
                    await stock.aput(config, tuple_.checkpoint, tuple_.metadata, versions)
                    stock_s.append(time.perf_counter() - started)
                    stock_parent = tuple_.checkpoint["id"]
                else:
                    config = _config(audit_thread, audit_parent)
                    config["configurable"][LEASE_OWNER_KEY] = REPLAY_OWNER
                    started = time.perf_counter()
                    await auditing.aput(config, tuple_.checkpoint, tuple_.metadata, versions)
                    auditing_s.append(time.perf_counter() - started)
                    audit_parent = tuple_.checkpoint["id"]
    return ApputTimes(stock_s=stock_s, auditing_s=auditing_s, steps=len(checkpoints))


def _config(thread_id: str, parent_id: str | None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if parent_id is not None:
        configurable["checkpoint_id"] = parent_id
    return {"configurable": configurable}
