"""The Conductor's engine room: lease runs from Postgres and drive them through the graph.

A worker claims a run that needs one (new, in flight after a crash, or decided at the gate),
streams the graph from the run's last checkpoint to its next stop (the gate, or the end), and
lets go. The lease is renewed while it works and checked inside every checkpoint transaction,
so two workers never drive one run. `crew serve` runs `Worker.run_forever`; `crew run` and
`crew approve` call `drive` for one run in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from langgraph.types import Command
from psycopg import AsyncConnection

from crew.container import Services
from graph.state import initial_state
from memory.checkpointer import LEASE_OWNER_KEY
from memory.runs import WAKE_CHANNEL, RunRecord
from schemas.states import ConductorState

logger = logging.getLogger(__name__)

#: Receives ("update", node, partial_state) and ("progress", node, message) while driving.
EventSink = Callable[[str, str, Any], None]


class Worker:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.worker_id = services.worker_id
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- one run --------------------------------------------------------------------------

    async def drive(self, run: RunRecord, on_event: EventSink | None = None) -> ConductorState:
        """Advance a leased run to its next stop; returns the state it stopped in."""
        graph = self.services.graph
        config: Any = {"configurable": {"thread_id": run.run_id, LEASE_OWNER_KEY: self.worker_id}}
        snapshot = await graph.aget_state(config)
        graph_input: Any
        if not snapshot.values:
            graph_input = initial_state(run.run_id, run.goal_id, run.goal, run.created_at)
        elif snapshot.interrupts:
            if run.decision is None:
                return run.state  # waiting for a human; nothing to do
            graph_input = Command(resume=run.decision.model_dump(mode="json"))
        elif snapshot.tasks:
            # Continue from the last checkpoint (after a crash). Not `snapshot.next`: it leaves
            # out tasks whose writes were saved before their step's checkpoint was, and a run
            # stopped in that window would otherwise never move again.
            graph_input = None
        else:
            return run.state

        renewer = asyncio.create_task(self._keep_lease(run.run_id, asyncio.current_task()))
        try:
            async for mode, chunk in graph.astream(
                graph_input,
                config,
                context=self.services.context,
                stream_mode=["updates", "custom"],
                durability="sync",
            ):
                if on_event is None:
                    continue
                if mode == "updates" and isinstance(chunk, dict):
                    for node, update in chunk.items():
                        on_event("update", node, update)
                elif mode == "custom" and isinstance(chunk, dict):
                    on_event("progress", str(chunk.get("node", "")), chunk.get("message", ""))
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        await self.services.runs.clear_failures(run.run_id)
        return (await self.services.runs.get(run.run_id)).state

    async def _keep_lease(self, run_id: str, driver: asyncio.Task[Any] | None) -> None:
        interval = self.settings.lease_ttl_s / 3
        while True:
            await asyncio.sleep(interval)
            ok = await self.services.runs.renew(run_id, self.worker_id, self.settings.lease_ttl_s)
            if not ok:
                logger.error("lost the lease on run %s; stopping", run_id, extra={"run_id": run_id})
                if driver is not None:
                    driver.cancel()
                return

    async def drive_and_release(self, run: RunRecord, on_event: EventSink | None = None) -> None:
        """`drive`, then let go of the lease whatever happened; unexpected errors back off."""
        try:
            state = await self.drive(run, on_event)
            logger.info(
                "run %s stopped in %s", run.run_id, state.value, extra={"run_id": run.run_id}
            )
        except asyncio.CancelledError:
            await asyncio.shield(self.services.runs.release(run.run_id, self.worker_id))
            raise
        except Exception as exc:
            backoff = await self.services.runs.record_failure(
                run.run_id, self.worker_id, f"{type(exc).__name__}: {exc}"
            )
            logger.exception(
                "run %s failed unexpectedly; retrying in %.0fs",
                run.run_id,
                backoff,
                extra={"run_id": run.run_id},
            )
            return
        await self.services.runs.release(run.run_id, self.worker_id)

    # -- the loop -------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Claim and drive runs until `stop` is set; then finish or hand back what is in flight."""
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(wake, stop))
        retention = asyncio.create_task(self._retention_loop(stop))
        try:
            while not stop.is_set():
                while self.in_flight < self.settings.worker_concurrency:
                    run = await self.services.runs.claim_next(
                        self.worker_id, self.settings.lease_ttl_s
                    )
                    if run is None:
                        break
                    task = asyncio.create_task(self.drive_and_release(run))
                    self._tasks.add(task)
                    task.add_done_callback(lambda t: self._finished(t, wake))
                wake.clear()
                waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
                await asyncio.wait(
                    waiters,
                    timeout=self.settings.poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for waiter in waiters:
                    waiter.cancel()
        finally:
            for task in (listener, retention):
                task.cancel()
            await asyncio.gather(listener, retention, return_exceptions=True)
            await self._drain()

    def _finished(self, task: asyncio.Task[None], wake: asyncio.Event) -> None:
        self._tasks.discard(task)
        wake.set()

    async def _drain(self, grace_s: float = 30.0) -> None:
        if not self._tasks:
            return
        logger.info("waiting up to %.0fs for %d run(s) in flight", grace_s, len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _listen(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        """LISTEN for new work; on connection loss, retry (the poll keeps things moving)."""
        while not stop.is_set():
            try:
                conn = await AsyncConnection.connect(self.services.conninfo, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {WAKE_CHANNEL}")
                    async for _ in conn.notifies():
                        wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("LISTEN connection lost; retrying", exc_info=True)
                await asyncio.sleep(self.settings.poll_interval_s)

    async def _retention_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                pruned = await prune_checkpoints(self.services)
                if pruned:
                    logger.info("pruned intermediate checkpoints of %d finished run(s)", pruned)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("checkpoint retention failed; will retry", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.retention_interval_s)


async def prune_checkpoints(services: Services) -> int:
    """Keep only the final checkpoint of runs finished longer ago than the retention period.

    Audit rows are never pruned."""
    now = services.context.clock()
    cutoff = now - timedelta(days=services.settings.checkpoint_retention_days)
    total = 0
    while run_ids := await services.runs.finished_before(cutoff):
        await services.saver.aprune(run_ids, strategy="keep_latest")
        await services.runs.mark_pruned(run_ids, now)
        total += len(run_ids)
    return total
