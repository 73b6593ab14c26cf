"""/metrics after real runs: every documented metric is exposed with a value that shows what
happened. The runs use the LLM planner (a local OpenAI-compatible server with token usage),
Redis as the bus, terraform against moto; one run is approved, applied and rolled back on
request, one is rejected."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from crew.metrics import METRICS, ZERO_WHEN_HEALTHY
from crew.settings import Settings
from tests.conftest import example_goal
from tests.fake_openai import ToolCall, fake_openai
from tests.integration._bus import REDIS_URL, cleanup_redis, eventually, require
from tests.integration._fleet import Samples, metric, scrape, serve_in_process, submit, wait_states
from tests.integration.test_llm_planner import good_design
from tests.unit.support import make_goal

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Gauges of queues: non-zero only while work waits, so they are checked mid-way.
QUEUES = ("crew_runs_waiting_for_worker", "crew_bus_pending_messages")
#: Series per (stack, severity) of an advisory match: none before one matches (no feeds here;
#: tests/integration/test_shield.py scrapes them).
PER_MATCH = ("crew_shield_advisories",)


async def metrics(api: httpx.AsyncClient) -> Samples:
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return scrape(response.text)


def exposed(samples: Samples, name: str) -> list[float]:
    """Values of a documented metric (a histogram by its _count series)."""
    series = samples.get(name) or samples.get(f"{name}_count") or []
    return [v for _, v in series]


async def test_every_documented_metric_shows_what_happened(
    database_url: str,
    make_settings: Callable[..., Settings],
    aws_env: dict[str, str],
    terraform_bin: Path,
) -> None:
    require("redis")
    prefix = f"t{secrets.token_hex(4)}"
    design = good_design(make_goal("goal-object-storage.json"))
    with fake_openai(*[ToolCall(design, prompt_tokens=1500, completion_tokens=400)] * 4) as llm:
        settings = make_settings(
            database_url=database_url,
            bus_url=REDIS_URL,
            bus_prefix=prefix,
            heartbeat_s=1,
            worker_concurrency=1,  # the second run waits: the queue gauges show it
            planner="llm",
            llm_model="gpt-4o-mini",
            llm_base_url=llm.base_url,
            openai_api_key=SecretStr("sk-local-test"),
        )
        try:
            async with serve_in_process(settings) as api:
                tag = secrets.token_hex(4)
                kept = await submit(api, example_goal(goal_id=f"metrics-{tag}-1"))
                dropped = await submit(api, example_goal(goal_id=f"metrics-{tag}-2"))
                busy = await eventually(
                    lambda: metrics(api),
                    lambda s: all(metric(s, name) > 0 for name in QUEUES),
                    what="a run waiting for the worker, on the bus and in Postgres",
                )
                assert metric(busy, "crew_bus_pending_messages", group="workers") >= 1

                await wait_states(api, {kept: "WAIT_FOR_APPROVE", dropped: "WAIT_FOR_APPROVE"})
                for run_id, decision in ((kept, "approve"), (dropped, "reject")):
                    response = await api.post(f"/v1/runs/{run_id}/{decision}", json={})
                    assert response.status_code == 202, response.text
                await wait_states(api, {kept: "DONE", dropped: "REJECTED"})
                # a drift check of the applied stack (clean: nothing changed behind its back)
                stacks = (await api.get("/v1/stacks")).json()
                stack_id = next(s["stack_id"] for s in stacks if s["latest_run_id"] == kept)
                checked = await api.post(f"/v1/stacks/{stack_id}/drift", timeout=600)
                assert checked.status_code == 200, checked.text
                assert checked.json()["drifted"] is False
                response = await api.post(f"/v1/runs/{kept}/rollback", json={"reason": "test"})
                assert response.status_code == 202, response.text

                async def rolled_back() -> bool:
                    detail = (await api.get(f"/v1/runs/{kept}")).json()
                    result = detail["artifacts"]["rollback_result"]
                    return detail["state"] == "DONE" and result is not None

                await eventually(rolled_back, bool, what="the rollback", limit_s=300)
                after = await eventually(
                    lambda: metrics(api),
                    lambda s: metric(s, "crew_rollbacks_total") > 0,
                    what="the rollback in the metrics",
                )
        finally:
            await cleanup_redis(REDIS_URL, prefix)

    for name in METRICS:
        if name in PER_MATCH:
            continue
        values = exposed(after, name)
        assert values, f"{name} is documented but not exposed"
        if name in ZERO_WHEN_HEALTHY or name in QUEUES:
            continue  # alerts (zero here) and queues (checked while busy)
        assert max(values) > 0, f"{name} shows nothing after the runs: {values}"
    assert metric(after, "crew_llm_tokens_total", model="gpt-4o-mini", direction="in") == 3000
    assert metric(after, "crew_llm_tokens_total", model="gpt-4o-mini", direction="out") == 800
    assert metric(after, "crew_approval_decisions_total", decision="approve") == 1
    assert metric(after, "crew_approval_decisions_total", decision="reject") == 1
    assert metric(after, "crew_rollbacks_total", trigger="requested", outcome="ok") == 1
    assert metric(after, "crew_drift_checks_total", result="clean") == 1
    assert metric(after, "crew_runs", state="REJECTED") == 1
    assert metric(after, "crew_terraform_duration_seconds_count", command="apply") >= 1
    # a plan with changes exits 2 under -detailed-exitcode: a success, not an error
    assert metric(after, "crew_terraform_duration_seconds_count", command="plan", outcome="ok") >= 2
    assert (
        metric(after, "crew_terraform_duration_seconds_count", command="plan", outcome="error") == 0
    )
    assert metric(after, "crew_step_duration_seconds_count", node="design") == 2
