"""The bus goes down while runs progress: the runs still complete (workers claim from
Postgres, events wait in the outbox), and once it is back every event is relayed, none lost
and none twice. The bus is a private server this test stops and starts again on the same port
with its data: a redis-server (AOF) or a nats-server with JetStream (file store), so a
client that reconnects finds its streams, groups and durable consumers in place.

Each case takes about 45-60 s on the 2-CPU machine: two runs to the gate, one applied.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crew.settings import Settings
from tests.conftest import example_goal
from tests.integration._bus import (
    NatsServer,
    PrivateServer,
    RedisServer,
    bus_event_ids,
    eventually,
)
from tests.integration._fleet import (
    metric,
    query,
    scrape,
    serve_in_process,
    submit,
    wait_states,
)
from tools.bus import BusNames

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(params=["redis", "nats"])
def bus_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrivateServer]:
    server: PrivateServer = (
        RedisServer(tmp_path) if request.param == "redis" else NatsServer(tmp_path)
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def kind_of(server: PrivateServer) -> str:
    return "redis" if isinstance(server, RedisServer) else "nats"


async def metrics(api: httpx.AsyncClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    return scrape(response.text)


async def test_runs_complete_while_the_bus_is_down_and_no_event_is_lost(
    bus_server: PrivateServer,
    database_url: str,
    make_settings: Callable[..., Settings],
    aws_env: dict[str, str],
    terraform_bin: Path,
) -> None:
    kind = kind_of(bus_server)
    names = BusNames(f"t{secrets.token_hex(4)}")
    settings = make_settings(
        database_url=database_url,
        bus_url=bus_server.url,
        bus_prefix=names.prefix,
        bus_timeout_s=1,
        # 3 missed beats declare a worker dead: at 1 s a loaded CI machine (2 cores, load 9)
        # starved the only worker's beats and its own conductor declared it dead mid-run.
        heartbeat_s=3,
        worker_concurrency=2,
    )
    tag = secrets.token_hex(4)
    async with serve_in_process(settings) as api:
        # The bus works: the first run is handed out through it.
        first = await submit(api, example_goal(goal_id=f"outage-{tag}-1"))
        await eventually(
            lambda: bus_event_ids(kind, bus_server.url, names),
            lambda ids: f"{first}.0" in ids,
            what=f"the first run's events on {kind}",
        )
        bus_server.stop()

        # Down: a new run is submitted, both reach the gate, the first is approved and
        # applied; the worker claims from Postgres and the events pile up in the outbox.
        second = await submit(api, example_goal(goal_id=f"outage-{tag}-2"))
        await wait_states(api, {first: "WAIT_FOR_APPROVE", second: "WAIT_FOR_APPROVE"})
        response = await api.post(f"/v1/runs/{first}/approve", json={"reason": "bus down"})
        assert response.status_code == 202, response.text
        await wait_states(api, {first: "DONE", second: "WAIT_FOR_APPROVE"})
        down = await metrics(api)
        assert metric(down, "crew_bus_publish_errors_total", bus=kind) > 0
        assert metric(down, "crew_outbox_unrelayed_events") > 0
        waiting = query(database_url, "SELECT count(*) FROM crew_events WHERE relayed_at IS NULL")
        assert waiting[0][0] > 0

        # Back: the relay forwards the outbox, in order, once.
        bus_server.start()
        await eventually(
            lambda: _unrelayed(database_url),
            lambda n: n == 0,
            what="the outbox to be relayed",
            limit_s=120,
        )
        outbox = [row[0] for row in query(database_url, "SELECT event_id FROM crew_events")]
        on_bus = await bus_event_ids(kind, bus_server.url, names)
        duplicates = [i for i, n in Counter(on_bus).items() if n > 1]
        assert duplicates == []
        lost = set(outbox) - set(on_bus)
        assert lost == set(), f"{len(lost)} of {len(outbox)} events never reached {kind}"
        # ... and nothing the outbox does not hold (heartbeats keep coming: read it again)
        outbox_now = {row[0] for row in query(database_url, "SELECT event_id FROM crew_events")}
        assert set(on_bus) <= outbox_now
        assert len(on_bus) >= len(outbox) > 0
        for run_id in (first, second):
            run_events = [i for i in outbox if i.startswith(f"{run_id}.")]
            assert len(run_events) >= 5, run_events  # created ... approval.requested
        final = await metrics(api)
        assert metric(final, "crew_outbox_unrelayed_events") == 0
        assert metric(final, "crew_bus_published_total", bus=kind) > 0
        detail: dict[str, Any] = (await api.get(f"/v1/runs/{first}")).json()
        assert detail["artifacts"]["apply_result"]["ok"] is True


async def _unrelayed(database_url: str) -> int:
    return int(
        query(database_url, "SELECT count(*) FROM crew_events WHERE relayed_at IS NULL")[0][0]
    )
