"""The auditing saver behaves exactly like upstream's AsyncPostgresSaver as a checkpointer.

memory/checkpointer.py adds the audit projection to `aput`; everything else a checkpointer
does (put, get, list with filters and limits, pending writes, delete_thread) must be
indistinguishable from the stock saver. Each case below runs the same calls against both savers,
on one real Postgres database each, and compares what they return: the cases follow what
upstream's own saver tests exercise (langgraph libs/checkpoint-postgres tests). That the
projection commits with the checkpoint or not at all is test_checkpointer.py's (fault
injection on a real run).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    create_checkpoint,
    empty_checkpoint,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from memory.checkpointer import AuditingPostgresSaver
from memory.db import open_pool
from memory.migrate import migrate
from memory.runs import Projection

pytestmark = pytest.mark.integration

Scenario = Callable[[AsyncPostgresSaver], Awaitable[Any]]


def _no_projection(_thread_id: str, _values: Mapping[str, Any]) -> Projection | None:
    """Threads in this suite are not crew runs: the saver must act as the stock one."""
    return None


@asynccontextmanager
async def _database(admin_url: str, name: str) -> AsyncIterator[str]:
    """A fresh database per saver, dropped afterwards."""
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"'.encode())
        await conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@asynccontextmanager
async def _stock_saver(url: str) -> AsyncIterator[AsyncPostgresSaver]:
    async with AsyncPostgresSaver.from_conn_string(url) as saver:
        await saver.setup()
        yield saver


@asynccontextmanager
async def _auditing_saver(url: str) -> AsyncIterator[AsyncPostgresSaver]:
    pool = await open_pool(url, max_size=4)
    try:
        await migrate(pool)  # the crew's migrations include the saver's own tables
        yield AuditingPostgresSaver(pool, _no_projection)
    finally:
        await pool.close()


async def _both(admin_url: str, scenario: Scenario, tag: str) -> tuple[Any, Any]:
    """Run one scenario on the stock saver and on the auditing saver; return both results."""
    async with (
        _database(admin_url, f"crew_conf_stock_{tag}") as stock_url,
        _database(admin_url, f"crew_conf_audit_{tag}") as audit_url,
        _stock_saver(stock_url) as stock,
        _auditing_saver(audit_url) as auditing,
    ):
        return await scenario(stock), await scenario(auditing)


def _config(thread: str, ns: str = "", checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _checkpoint(previous: Checkpoint | None, values: dict[str, Any], step: int) -> Checkpoint:
    base = previous if previous is not None else empty_checkpoint()
    checkpoint = create_checkpoint(base, None, step)
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = {key: f"{step:032}.0" for key in values}
    return checkpoint


def _comparable(item: CheckpointTuple | None) -> dict[str, Any] | None:
    """What a caller sees of a tuple (ids included; they are the caller's own)."""
    if item is None:
        return None
    return {
        "config": item.config,
        "parent": item.parent_config,
        "values": item.checkpoint["channel_values"],
        "versions": item.checkpoint["channel_versions"],
        "metadata": item.metadata,
        "writes": sorted(item.pending_writes or []),
    }


async def _put_chain(saver: AsyncPostgresSaver, thread: str, ns: str = "") -> list[Checkpoint]:
    """Three checkpoints on one thread: primitives inline, lists and dicts as blobs."""
    values: list[dict[str, Any]] = [
        {"state": "PENDING", "count": 1},
        {"state": "IN_PROGRESS", "items": ["a", "b"], "count": 2},
        {"state": "DONE", "items": ["a", "b", "c"], "nested": {"k": [1, 2]}, "count": 3},
    ]
    metadata: list[CheckpointMetadata] = [
        {"source": "input", "step": -1},
        {"source": "loop", "step": 0},
        {"source": "loop", "step": 1},
    ]
    config = _config(thread, ns)
    checkpoints: list[Checkpoint] = []
    previous: Checkpoint | None = None
    for step, (value, meta) in enumerate(zip(values, metadata, strict=True)):
        checkpoint = _checkpoint(previous, value, step)
        versions = dict(checkpoint["channel_versions"])
        config = await saver.aput(config, checkpoint, meta, versions)
        checkpoints.append(checkpoint)
        previous = checkpoint
    return checkpoints


async def test_put_and_get_latest_and_by_id(admin_url: str) -> None:
    async def scenario(saver: AsyncPostgresSaver) -> list[Any]:
        chain = await _put_chain(saver, "t1")
        latest = await saver.aget_tuple(_config("t1"))
        first = await saver.aget_tuple(_config("t1", checkpoint_id=chain[0]["id"]))
        missing = await saver.aget_tuple(_config("nobody"))
        ids = [c["id"] for c in chain]
        return [ids, _comparable(latest), _comparable(first), missing]

    stock, auditing = await _both(admin_url, scenario, "get")
    # Checkpoint ids are time-based: compare what each saver returned for its own ids.
    assert stock[1]["values"] == auditing[1]["values"]
    assert stock[1]["metadata"] == auditing[1]["metadata"]
    assert stock[1]["versions"] == auditing[1]["versions"]
    assert auditing[1]["config"]["configurable"]["checkpoint_id"] == auditing[0][-1]
    assert auditing[1]["parent"]["configurable"]["checkpoint_id"] == auditing[0][-2]
    assert stock[2]["values"] == auditing[2]["values"] == {"state": "PENDING", "count": 1}
    assert auditing[2]["parent"] is None
    assert stock[2]["parent"] is None
    assert stock[3] is None
    assert auditing[3] is None


async def test_list_with_filters_before_and_limit(admin_url: str) -> None:
    async def scenario(saver: AsyncPostgresSaver) -> dict[str, Any]:
        chain = await _put_chain(saver, "t1")
        await _put_chain(saver, "t2")
        await _put_chain(saver, "t1", ns="child")

        async def listed(config: RunnableConfig | None, **kwargs: Any) -> list[Any]:
            return [
                (t.config["configurable"]["thread_id"], t.metadata["step"])
                async for t in saver.alist(config, **kwargs)
            ]

        return {
            "thread": await listed(_config("t1")),
            "all": sorted(await listed(None)),
            "loop_only": sorted(await listed(None, filter={"source": "loop"})),
            "limit": await listed(_config("t1"), limit=2),
            "before": await listed(
                _config("t1"), before=_config("t1", checkpoint_id=chain[2]["id"])
            ),
            "step": sorted(await listed(None, filter={"step": 1})),
        }

    stock, auditing = await _both(admin_url, scenario, "list")
    assert stock == auditing
    assert auditing["thread"] == [("t1", 1), ("t1", 0), ("t1", -1)]
    assert len(auditing["all"]) == 9
    assert auditing["limit"] == [("t1", 1), ("t1", 0)]
    assert auditing["before"] == [("t1", 0), ("t1", -1)]


async def test_pending_writes_are_returned_with_their_checkpoint(admin_url: str) -> None:
    async def scenario(saver: AsyncPostgresSaver) -> Any:
        chain = await _put_chain(saver, "t1")
        config = _config("t1", checkpoint_id=chain[-1]["id"])
        await saver.aput_writes(config, [("state", "APPLYING"), ("items", ["x"])], "task-1")
        await saver.aput_writes(config, [("__error__", "boom")], "task-2")
        # The same task writing again is an upsert, not a second row.
        await saver.aput_writes(config, [("state", "APPLYING")], "task-1")
        got = await saver.aget_tuple(config)
        assert got is not None
        return sorted(got.pending_writes or [])

    stock, auditing = await _both(admin_url, scenario, "writes")
    assert stock == auditing
    assert ("task-1", "state", "APPLYING") in auditing
    assert ("task-2", "__error__", "boom") in auditing


async def test_delete_thread_removes_checkpoints_blobs_and_writes(admin_url: str) -> None:
    async def scenario(saver: AsyncPostgresSaver) -> Any:
        chain = await _put_chain(saver, "t1")
        await _put_chain(saver, "t2")
        await saver.aput_writes(_config("t1", checkpoint_id=chain[-1]["id"]), [("a", 1)], "x")
        await saver.adelete_thread("t1")
        gone = await saver.aget_tuple(_config("t1"))
        left = [t.config["configurable"]["thread_id"] async for t in saver.alist(None)]
        return gone, sorted(left)

    stock, auditing = await _both(admin_url, scenario, "delete")
    assert stock == auditing == (None, ["t2", "t2", "t2"])
