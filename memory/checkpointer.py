"""The LangGraph Postgres saver, with the audit log written in the checkpoint's transaction.

Every Conductor transition is recorded in the graph state (`transitions`). When LangGraph saves
a checkpoint, this saver writes the checkpoint, the audit rows for transitions not yet recorded
and the run row's new state in ONE transaction. A crash therefore leaves either both or neither:
on restart the run resumes from the last checkpoint and its audit log ends exactly there, with
no duplicate and no gap (the (run_id, seq) key makes a replay a no-op anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from memory.db import Pool
from memory.runs import Projection, fence_lease, write_projection

#: Turns a checkpoint's channel values into the run row + audit projection.
Projector = Callable[[str, Mapping[str, Any]], Projection | None]

#: `config["configurable"]` key naming the worker that holds the run's lease.
LEASE_OWNER_KEY = "crew_lease_owner"


class AuditingPostgresSaver(AsyncPostgresSaver):
    """AsyncPostgresSaver whose `aput` also writes the run projection, atomically."""

    def __init__(
        self, pool: Pool, project: Projector, serde: SerializerProtocol | None = None
    ) -> None:
        super().__init__(pool, serde=serde)
        self._pool = pool
        self._project = project

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = dict(config["configurable"])
        thread_id: str = configurable.pop("thread_id")
        checkpoint_ns: str = configurable.pop("checkpoint_ns")
        parent_id: str | None = configurable.pop("checkpoint_id", None)
        lease_owner: str | None = configurable.get(LEASE_OWNER_KEY)

        # Same split as AsyncPostgresSaver.aput: primitives inline, the rest as blobs.
        copy = checkpoint.copy()
        copy["channel_values"] = dict(copy["channel_values"])
        blob_values: dict[str, Any] = {}
        for key, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blob_values[key] = copy["channel_values"].pop(key)
                copy["channel_values"][key] = True
            elif value is None or isinstance(value, str | int | float | bool):
                continue
            else:
                blob_values[key] = copy["channel_values"].pop(key)
        blob_versions = {k: v for k, v in new_versions.items() if k in blob_values}
        blobs = (
            await asyncio.to_thread(
                self._dump_blobs, thread_id, checkpoint_ns, blob_values, blob_versions
            )
            if blob_versions
            else []
        )
        projection = (
            self._project(thread_id, checkpoint["channel_values"]) if checkpoint_ns == "" else None
        )

        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(binary=True, row_factory=dict_row) as cur,
        ):
            if blobs:
                await cur.executemany(self.UPSERT_CHECKPOINT_BLOBS_SQL, blobs)
            await cur.execute(
                self.UPSERT_CHECKPOINTS_SQL,
                (
                    thread_id,
                    checkpoint_ns,
                    checkpoint["id"],
                    parent_id,
                    Jsonb(copy),
                    Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
                ),
            )
            if projection is not None:
                await write_projection(cur, thread_id, projection, lease_owner)
            elif checkpoint_ns == "" and lease_owner is not None:
                # Nothing to project yet (a run's very first, empty checkpoint): still fenced,
                # or a stalled worker could make it the thread's latest checkpoint.
                await fence_lease(cur, thread_id, lease_owner)

        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
