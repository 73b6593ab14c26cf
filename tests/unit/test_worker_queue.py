"""How a worker treats `run.ready` events (test doubles for the store and the bus; the real
path runs in tests/integration/test_scale_out.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from crew.container import Services
from crew.settings import Settings
from crew.worker import Worker
from schemas.events import EventType, OpsEvent
from tools.bus import Delivery

AT = datetime(2026, 1, 2, tzinfo=UTC)


@dataclass
class FakeRuns:
    leased_elsewhere: set[str] = field(default_factory=set)
    claims: list[str] = field(default_factory=list)

    async def claim(self, run_id: str, worker_id: str, ttl_s: float) -> Any:
        self.claims.append(run_id)
        if run_id in self.leased_elsewhere:
            return None
        return SimpleNamespace(run_id=run_id)


@dataclass
class FakeSubscription:
    group: str = "workers"
    consumer: str = "w1"
    acked: list[str] = field(default_factory=list)

    async def ack(self, delivery: Delivery) -> None:
        self.acked.append(delivery.event.event_id)


def ready(run_id: str, kind: EventType = EventType.RUN_READY) -> Delivery:
    return Delivery(OpsEvent(type=kind, run_id=run_id, at=AT), "workers", 1, None)


async def test_a_run_is_driven_once_however_often_it_is_announced(tmp_path: Path) -> None:
    runs = FakeRuns(leased_elsewhere={"busy"})
    settings = Settings(data_dir=tmp_path, worker_concurrency=4)
    services = cast(Services, SimpleNamespace(settings=settings, worker_id="w1", runs=runs))
    worker = Worker(services)
    release = asyncio.Event()
    driven: list[str] = []

    async def drive_and_release(run: Any, on_event: Any = None) -> None:
        driven.append(run.run_id)
        await release.wait()

    worker.drive_and_release = drive_and_release  # type: ignore[method-assign]
    sub = FakeSubscription()

    first = ready("r1")
    await worker._take(sub, first)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert driven == ["r1"]
    assert worker.in_flight == 1

    # announced again while this worker drives it (a re-dispatch, a relay re-send): dropped
    again = ready("r1")
    await worker._take(sub, again)  # type: ignore[arg-type]
    # another worker holds it: the claim fails and the event is dropped
    elsewhere = ready("busy")
    await worker._take(sub, elsewhere)  # type: ignore[arg-type]
    # not a run.ready: acknowledged, nothing claimed
    stray = ready("r2", EventType.PLAN_PENDING)
    await worker._take(sub, stray)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert driven == ["r1"]
    assert runs.claims == ["r1", "busy"]
    assert sub.acked == [e.event.event_id for e in (first, again, elsewhere, stray)]

    release.set()
    await worker._drain(grace_s=5)
    assert worker.in_flight == 0
    await worker._take(sub, ready("r1"))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert driven == ["r1", "r1"]  # finished here: a new announcement is driven again
    await worker._drain(grace_s=5)


def test_worker_and_api_only_commands_explain_themselves() -> None:
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    assert "worker" in top.stdout
    worker = runner.invoke(app, ["worker", "--help"])
    assert worker.exit_code == 0, worker.stdout
    for teaches in ("CREW_BUS_URL", "--concurrency", "--metrics-port", "heartbeats"):
        assert teaches in worker.stdout, teaches
    serve = runner.invoke(app, ["serve", "--help"])
    assert "--no-worker" in serve.stdout
    bad = runner.invoke(app, ["worker", "--concurrency", "0"])
    assert bad.exit_code == 2
