"""The Conductor's engine room: take runs from the bus, lease them, drive them through the graph.

Runs are handed out as `run.ready` events on the bus (group `workers`, shared by every
`crew worker` and `crew serve`; see memory/dispatch.py). A worker takes as many as it has
free slots, claims each one's Postgres lease (the guard: a stale or duplicate `run.ready`
finds the run leased or finished and is dropped), acknowledges the event, streams the graph
from the run's last checkpoint to its next stop (the gate, or the end), and lets go. The lease
is renewed while it works and checked inside every checkpoint transaction, so two workers
never drive one run; a worker that dies is declared dead by the others' Conductor after 3
missed heartbeats and its runs go back on the queue. While the bus is down, workers claim
runs straight from Postgres. `crew run` and `crew approve` call `drive` for one run in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from langgraph.types import Command

from crew.conductor import Conductor, Role
from crew.container import Services
from crew.drift import drift_loop
from crew.expiry import expiry_loop
from crew.gate.notifier import build_notifier
from crew.gate.timers import gate_loop
from crew.lifecycle import CANCELLABLE, finish_cancel, give_up, is_cancel
from crew.progress import ProgressRecorder
from crew.revalidate import revalidate_loop
from crew.shield import shield_loop
from graph.state import start_of
from memory.checkpointer import LEASE_OWNER_KEY
from memory.runs import LeaseLostError, RunRecord
from memory.vector_memory import VectorPlanMemory
from schemas.errors import BusError
from schemas.events import EventType
from schemas.progress import StepProgress
from schemas.states import ConductorState
from tools.bus import WORK_FAMILY, WORK_GROUP, Delivery, Subscription
from tools.guard import warm_up as warm_up_guard

logger = logging.getLogger(__name__)

#: Receives ("update", node, partial_state), ("progress", node, message) and
#: ("resources", node, StepProgress) while driving.
EventSink = Callable[[str, str, Any], None]


class Worker:
    def __init__(self, services: Services, *, role: Role = "worker") -> None:
        self.services = services
        self.settings = services.settings
        self.worker_id = services.worker_id
        self.role: Role = role
        self._tasks: set[asyncio.Task[None]] = set()
        self._driving: set[str] = set()
        self._lost: set[str] = set()
        """Runs whose lease was taken while driving them (cancelled): stopped, not failed."""
        self._slot_freed = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- one run --------------------------------------------------------------------------

    async def drive(self, run: RunRecord, on_event: EventSink | None = None) -> ConductorState:
        """Advance a leased run to its next stop; returns the state it stopped in."""
        graph = self.services.graph
        config: Any = {"configurable": {"thread_id": run.run_id, LEASE_OWNER_KEY: self.worker_id}}
        if is_cancel(run.decision) and run.state is not ConductorState.WAIT_FOR_APPROVE:
            # Cancelled while its canceller died before writing the transition: finish it.
            await finish_cancel(self.services, run, self.worker_id)
            return (await self.services.runs.get(run.run_id)).state
        snapshot = await graph.aget_state(config)
        graph_input: Any
        if not snapshot.values:
            graph_input = start_of(run)
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
        metrics = self.services.metrics
        recorder = ProgressRecorder(self.services.runs, run.run_id, self.worker_id)
        step_started = time.monotonic()
        try:
            async for mode, chunk in graph.astream(
                graph_input,
                config,
                context=self.services.context,
                stream_mode=["updates", "custom"],
                durability="sync",
            ):
                if mode == "updates" and isinstance(chunk, dict):
                    # Nodes run one after the other: a node's time is the time since the
                    # previous update (or the start), its checkpoint included.
                    now = time.monotonic()
                    for node, update in chunk.items():
                        if not node.startswith("__"):  # not LangGraph's __interrupt__
                            update_map = update if isinstance(update, Mapping) else None
                            metrics.observe_step(
                                node, _recorded_seconds(update_map, now - step_started), update_map
                            )
                        if on_event is not None:
                            on_event("update", node, update)
                    step_started = now
                elif mode == "custom" and isinstance(chunk, dict):
                    node = str(chunk.get("node", ""))
                    resources = chunk.get("resources")
                    if isinstance(resources, StepProgress):
                        await recorder.record(resources)
                        if on_event is not None:
                            on_event("resources", node, resources)
                    elif on_event is not None:
                        on_event("progress", node, chunk.get("message", ""))
        finally:
            await asyncio.shield(recorder.flush())
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        await self.services.runs.clear_failures(run.run_id)
        return (await self.services.runs.get(run.run_id)).state

    async def _keep_lease(self, run_id: str, driver: asyncio.Task[Any] | None) -> None:
        """Renew the lease while the run is driven; stop driving it once the lease is gone
        (a cancel takes it: crew/lifecycle.py), so renewals come at least every poll
        interval, not only every third of the lease."""
        interval = min(self.settings.lease_ttl_s / 3, max(self.settings.poll_interval_s, 0.5))
        while True:
            await asyncio.sleep(interval)
            ok = await self.services.runs.renew(run_id, self.worker_id, self.settings.lease_ttl_s)
            if not ok:
                record = await self.services.runs.get(run_id)
                if is_cancel(record.decision):
                    logger.info(
                        "run %s was cancelled by %s; stopping",
                        run_id,
                        record.decision.actor if record.decision else "?",
                        extra={"run_id": run_id},
                    )
                else:
                    logger.error(
                        "lost the lease on run %s; stopping", run_id, extra={"run_id": run_id}
                    )
                if driver is not None:
                    self._lost.add(run_id)
                    driver.cancel()
                return

    async def drive_and_release(self, run: RunRecord, on_event: EventSink | None = None) -> None:
        """`drive`, then let go of the lease whatever happened; unexpected errors back off."""
        try:
            state = await self.drive(run, on_event)
            # FAILED means a rollback failed: the cloud needs a human (the notifier pages).
            logger.log(
                logging.ERROR if state is ConductorState.FAILED else logging.INFO,
                "run %s stopped in %s",
                run.run_id,
                state.value,
                extra={"run_id": run.run_id},
            )
        except asyncio.CancelledError:
            if run.run_id in self._lost:  # our renewer stopped it: the run is someone else's
                self._lost.discard(run.run_id)
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                return
            await asyncio.shield(self.services.runs.release(run.run_id, self.worker_id))
            raise
        except LeaseLostError as exc:
            # Cancelled, or taken over after a stall: the checkpoint was refused, nothing
            # half-written; whoever holds the run now carries on.
            logger.info("run %s: %s; stopped driving it", run.run_id, exc)
            return
        except Exception as exc:
            await self._failed(run, exc)
            return
        await self.services.runs.release(run.run_id, self.worker_id)
        if state.is_terminal:
            await self._remember(run.run_id)

    async def _failed(self, run: RunRecord, exc: Exception) -> None:
        """An unexpected error: back off and retry, or end a run not yet applying BLOCKED
        after CREW_RUN_MAX_ATTEMPTS tries. One log line per try; the traceback only with the
        first try that failed this way (a new error shows its own once)."""
        runs, run_id = self.services.runs, run.run_id
        error = f"{type(exc).__name__}: {exc}"
        attempt, limit = run.failures + 1, self.settings.run_max_attempts
        extra = {"run_id": run_id, "attempt": attempt}
        if attempt >= limit:
            current = await runs.get(run_id)
            if current.state in CANCELLABLE and not is_cancel(current.decision):
                try:
                    await give_up(self.services, current, self.worker_id, error)
                except Exception as failure:
                    logger.warning("run %s: could not end it BLOCKED (%s)", run_id, failure)
                else:
                    await runs.record_gave_up(run_id, self.worker_id)
                    logger.error(
                        "run %s ended BLOCKED after %d failed attempts: %s",
                        run_id,
                        attempt,
                        error,
                        extra=extra,
                    )
                    return
        backoff = await runs.record_failure(run_id, self.worker_id, error)
        first = run.failures == 0 or run.last_error != error[:4000]
        logger.warning(
            "run %s failed (attempt %d of %d): %s; retrying in %.0fs",
            run_id,
            attempt,
            limit,
            error,
            backoff,
            exc_info=exc if first else None,
            extra=extra,
        )

    async def _remember(self, run_id: str) -> None:
        """Index a run that just ended in the vector memory (when that memory is on). A
        failure is logged, never the run's: the periodic pass indexes what is missing."""
        memory = self.services.context.plan_memory
        if not isinstance(memory, VectorPlanMemory):
            return
        try:
            await memory.index_finished_runs(run_id=run_id)
        except Exception as exc:
            logger.warning(
                "run %s not indexed in memory yet: %s", run_id, exc, extra={"run_id": run_id}
            )

    # -- the loop -------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Take runs from the bus and drive them until `stop` is set; then finish or hand
        back what is in flight. The Conductor's duties (heartbeats, dead workers, the relay)
        run beside, until the runs in flight are done."""
        duties_stop = asyncio.Event()
        conductor = Conductor(self.services, role=self.role, in_flight=lambda: self.in_flight)
        duties = asyncio.create_task(conductor.run_forever(duties_stop))
        retention = asyncio.create_task(self._retention_loop(stop))
        # The gate's jobs (approval expiry, rollback SLA) and the Slack notifier run beside the
        # runs, never inside them: a slow Slack cannot hold up a run.
        helpers = [asyncio.create_task(gate_loop(self.services, stop))]
        if self.settings.drift_interval_s > 0:
            helpers.append(asyncio.create_task(drift_loop(self.services, stop)))
        if self.settings.shield_interval_s > 0 and self.settings.shield_feeds:
            helpers.append(asyncio.create_task(shield_loop(self.services, stop)))
        # checkov imported before the first run needs it
        helpers.append(asyncio.create_task(self.services.context.sentinel.tools.checkov.warm_up()))
        # python-hcl2 (the pre-plan guard's parser) builds its grammar when first imported.
        helpers.append(asyncio.create_task(asyncio.to_thread(warm_up_guard)))
        if self.settings.revalidate_interval_s > 0:
            helpers.append(asyncio.create_task(revalidate_loop(self.services, stop)))
        if self.settings.ttl_check_interval_s > 0:
            helpers.append(asyncio.create_task(expiry_loop(self.services, stop)))
        memory = self.services.context.plan_memory
        if isinstance(memory, VectorPlanMemory):
            helpers.append(asyncio.create_task(self._memory_loop(memory, stop)))
        notifier = build_notifier(self.services)
        if notifier is not None:
            helpers.append(asyncio.create_task(notifier.run(stop)))
        try:
            await self._take_runs(stop)
        finally:
            for task in (retention, *helpers):
                task.cancel()
            await asyncio.gather(retention, *helpers, return_exceptions=True)
            await self._drain()
            duties_stop.set()
            await asyncio.gather(duties, return_exceptions=True)

    async def _take_runs(self, stop: asyncio.Event) -> None:
        """Fetch `run.ready` events for the free slots and start the runs they name; while
        the bus is down, claim runs straight from Postgres."""
        subscription: Subscription | None = None
        bus_down = False
        poll = self.settings.poll_interval_s
        try:
            while not stop.is_set():
                free = self.settings.worker_concurrency - self.in_flight
                if free <= 0:
                    await self._wait(stop, poll)
                    continue
                try:
                    if subscription is None:
                        subscription = await self.services.bus.subscribe(
                            WORK_GROUP, [WORK_FAMILY], self.worker_id
                        )
                    deliveries = await subscription.fetch(free, poll)
                    if bus_down:
                        logger.info("the bus is back; taking runs from it again")
                        bus_down = False
                    for delivery in deliveries:
                        await self._take(subscription, delivery)
                except BusError as exc:
                    if not bus_down:
                        logger.warning("bus unavailable (%s); claiming runs from Postgres", exc)
                        bus_down = True
                    await self._claim_from_postgres()
                    await self._wait(stop, poll)
                except Exception:
                    logger.exception("taking runs failed; retrying")
                    await self._wait(stop, poll)
        finally:
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.close()

    async def _take(self, subscription: Subscription, delivery: Delivery) -> None:
        """Lease the run a `run.ready` names, then acknowledge the event: from here the lease
        (and this worker's heartbeats) guard the run, so a long drive does not hold the
        event. A run leased elsewhere, finished or already driven here is just dropped."""
        event = delivery.event
        run = None
        if event.type is EventType.RUN_READY and event.run_id and event.run_id not in self._driving:
            run = await self.services.runs.claim(
                event.run_id, self.worker_id, self.settings.lease_ttl_s
            )
        try:
            await subscription.ack(delivery)
        except BusError as exc:
            logger.warning("could not acknowledge run.ready of %s: %s", event.run_id, exc)
        if run is not None:
            self._start(run)

    async def _claim_from_postgres(self) -> None:
        while self.in_flight < self.settings.worker_concurrency:
            run = await self.services.runs.claim_next(self.worker_id, self.settings.lease_ttl_s)
            if run is None:
                return
            self._start(run)

    def _start(self, run: RunRecord) -> None:
        task = asyncio.create_task(self.drive_and_release(run))
        self._tasks.add(task)
        self._driving.add(run.run_id)
        task.add_done_callback(lambda t: self._finished(t, run.run_id))

    def _finished(self, task: asyncio.Task[None], run_id: str) -> None:
        self._tasks.discard(task)
        self._driving.discard(run_id)
        self._slot_freed.set()

    async def _wait(self, stop: asyncio.Event, timeout_s: float) -> None:
        """Until a run finishes (a slot is free), `stop`, or `timeout_s`."""
        self._slot_freed.clear()
        waiters = [
            asyncio.create_task(self._slot_freed.wait()),
            asyncio.create_task(stop.wait()),
        ]
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)

    async def _drain(self, grace_s: float = 30.0) -> None:
        if not self._tasks:
            return
        logger.info("waiting up to %.0fs for %d run(s) in flight", grace_s, len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

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

    async def _memory_loop(self, memory: VectorPlanMemory, stop: asyncio.Event) -> None:
        """Index finished runs the end-of-run hook missed (a crash, a new embedder's
        back-fill) and bring the runbooks up to date; at start, then every interval."""
        while not stop.is_set():
            try:
                runs = await memory.index_finished_runs()
                report = await memory.index_runbooks()
                if runs or report.chunks or report.removed:
                    logger.info(
                        "memory indexed: %d run(s); runbooks %d added, %d updated, %d removed",
                        runs,
                        report.added,
                        report.updated,
                        report.removed,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("memory indexing failed (%s); will retry", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.memory_index_interval_s)


def _recorded_seconds(update: Mapping[str, Any] | None, measured: float) -> float:
    """The node's own timing (the run view shows the same figure), else the time measured
    here between updates."""
    timings = (update or {}).get("timings") or []
    return float(timings[-1].seconds) if timings else measured


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
