"""The LangGraph Postgres saver, with the audit log written in the checkpoint's transaction.

Every Conductor transition is recorded in the graph state (`transitions`). When LangGraph saves
a checkpoint, this saver writes the checkpoint, the audit rows for transitions not yet recorded
and the run row's new state in ONE transaction. A crash therefore leaves either both or neither:
on restart the run resumes from the last checkpoint and its audit log ends exactly there, with
no duplicate and no gap (the (run_id, seq) key makes a replay a no-op anyway).

Only upstream's public surface is used: each `aput` takes one pooled connection, opens a
transaction on it, lets a stock `AsyncPostgresSaver` bound to that connection write the
checkpoint with its own SQL (`aput`, a public method), and writes the projection on the same
connection before the commit. An upstream release that changes how checkpoints are stored
therefore changes them here too, instead of being silently re-implemented
(tests/integration/test_checkpointer_conformance.py holds both savers to the same behaviour).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg.rows import dict_row

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
        configurable = config["configurable"]
        thread_id: str = configurable["thread_id"]
        checkpoint_ns: str = configurable["checkpoint_ns"]
        lease_owner: str | None = configurable.get(LEASE_OWNER_KEY)
        projection = (
            self._project(thread_id, checkpoint["channel_values"]) if checkpoint_ns == "" else None
        )

        async with self._pool.connection() as conn, conn.transaction():
            # The stock saver on this one connection: its SQL runs inside our transaction.
            stock = AsyncPostgresSaver(conn, serde=self.serde)
            next_config = await stock.aput(config, checkpoint, metadata, new_versions)
            async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                if projection is not None:
                    await write_projection(cur, thread_id, projection, lease_owner)
                elif checkpoint_ns == "" and lease_owner is not None:
                    # Nothing to project yet (a run's very first, empty checkpoint): still
                    # fenced, or a stalled worker could make it the thread's latest checkpoint.
                    await fence_lease(cur, thread_id, lease_owner)
        return next_config
