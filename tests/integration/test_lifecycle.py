"""Ending runs that cannot go on: bounded retries on an unreachable LLM, cancel from every
channel (a worker driving the run stops), and who the audit names as a run's creator.

The LLM is either a port nothing listens on or tests/fake_openai.py holding a request open
(a hung model); everything else is the product path on a real Postgres.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from api.app import create_app
from crew.container import open_services
from crew.lifecycle import cancel_run
from crew.service import submit_goal
from crew.settings import Settings
from crew.worker import Worker
from schemas.approval import Channel, Decision
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.states import ConductorState
from tests.conftest import example_goal, free_port
from tests.fake_openai import Stall, fake_openai
from tests.integration._support import serve_app, wait_until
from tests.unit.support import venv_tool

pytestmark = pytest.mark.integration


def llm_settings(make_settings: Callable[..., Settings], base_url: str, **more: Any) -> Settings:
    return make_settings(
        planner="llm",
        llm_model="fake-gpt",
        llm_base_url=base_url,
        llm_max_retries=0,
        llm_timeout_s=30,
        **more,
    )


def nowhere() -> str:
    """An LLM endpoint nothing listens on (connection refused at once)."""
    return f"http://127.0.0.1:{free_port()}/v1"


def goal(**changes: Any) -> GoalStatement:
    data = example_goal(goal_id=f"lc-{secrets.token_hex(4)}", **changes)
    return GoalStatement.model_validate(data)


async def test_an_unreachable_llm_ends_the_run_blocked_after_the_attempts_with_one_traceback(
    database_url: str,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = llm_settings(make_settings, nowhere(), database_url=database_url, run_max_attempts=3)
    caplog.set_level(logging.INFO, logger="crew.worker")
    async with open_services(settings, role="test") as services:
        record, _ = await submit_goal(services, goal(), actor="tester")
        worker = Worker(services)

        async def one_try() -> ConductorState:
            claimed = await wait_until(
                lambda: services.runs.claim(record.run_id, worker.worker_id, 5),
                lambda run: run is not None,
                what="the run to be claimable again (back-off over)",
                interval_s=0.1,
            )
            assert claimed is not None
            await worker.drive_and_release(claimed)
            return (await services.runs.get(record.run_id)).state

        assert await one_try() is ConductorState.PENDING
        assert await one_try() is ConductorState.PENDING
        assert await one_try() is ConductorState.BLOCKED

        run = await services.runs.get(record.run_id)
        assert run.failures == 3
        assert run.last_error is None  # not backing off any more: the reason is the run's error
        assert await services.runs.claim(record.run_id, worker.worker_id, 5) is None
        audit = await services.runs.audit(record.run_id)
        last = audit[-1]
        assert (last.event, last.from_state, last.to_state, last.actor) == (
            EventType.RUN_GAVE_UP,
            ConductorState.PENDING,
            ConductorState.BLOCKED,
            "conductor",
        )
        assert last.note is not None
        assert "gave up after 3 failed attempts" in last.note
        assert "cannot reach the LLM" in last.note
        from crew.service import run_detail

        detail = await run_detail(services, record.run_id)
        assert detail.error is not None
        assert "CREW_RUN_MAX_ATTEMPTS" in detail.error

    lines = [r for r in caplog.records if r.name == "crew.worker" and record.run_id in r.message]
    tries = [r for r in lines if "failed (attempt" in r.message]
    assert [r.message.split("(attempt ")[1][:6] for r in tries] == ["1 of 3", "2 of 3"]
    assert [r.exc_info is not None for r in tries] == [True, False]  # the traceback once
    (ended,) = [r for r in lines if "ended BLOCKED" in r.message]
    assert ended.levelno == logging.ERROR
    assert ended.exc_info is None


async def test_cancel_stops_the_worker_waiting_on_a_hung_llm(
    database_url: str, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with fake_openai(Stall(60)) as llm:
        settings = llm_settings(make_settings, llm.base_url, database_url=database_url)
        async with open_services(settings, role="test") as services:
            record, _ = await submit_goal(services, goal(), actor="tester")
            worker = Worker(services)
            claimed = await services.runs.claim(record.run_id, worker.worker_id, 5)
            assert claimed is not None
            driving = asyncio.create_task(worker.drive_and_release(claimed))
            await wait_until(
                lambda: asyncio.sleep(0, result=len(llm.requests)),
                lambda n: n >= 1,
                what="the worker to ask the (hung) LLM",
            )

            cancelled = await cancel_run(
                services, record.run_id, actor="ops", channel=Channel.CLI, reason="LLM is down"
            )
            assert cancelled.state is ConductorState.REJECTED
            # the worker lets go on its own (its lease is gone), without a failure recorded
            await asyncio.wait_for(driving, timeout=30)
            assert not driving.cancelled()
            run = await services.runs.get(record.run_id)
            assert (run.state, run.failures, run.lease_owner) == (
                ConductorState.REJECTED,
                0,
                None,
            )
            assert run.decision is not None
            assert (run.decision.decision, run.decision.actor) == (Decision.CANCEL, "ops")
            audit = await services.runs.audit(record.run_id)
            assert [(a.event, a.from_state, a.to_state) for a in audit] == [
                (EventType.RUN_CREATED, None, ConductorState.PENDING),
                (EventType.RUN_CANCELLED, ConductorState.PENDING, ConductorState.REJECTED),
            ]
            assert audit[-1].actor == "ops"
            assert audit[-1].note == "cancelled by ops via cli: LLM is down"
            assert audit[-1].artifact_type == "ApprovalDecision"
            # nothing to drive any more, and a second cancel names the first
            assert await services.runs.claim(record.run_id, worker.worker_id, 5) is None
            from schemas.errors import RunConflictError

            with pytest.raises(RunConflictError, match="already cancelled by ops via cli"):
                await cancel_run(
                    services, record.run_id, actor="ops", channel=Channel.CLI, reason=None
                )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]


async def test_cancel_over_rest_audits_the_principal_and_readyz_reports_the_llm(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    tokens = {
        "alice": ("approver", f"crew_{secrets.token_hex(16)}"),
        "sam": ("submitter", f"crew_{secrets.token_hex(16)}"),
    }
    settings = llm_settings(
        make_settings,
        nowhere(),
        database_url=database_url,
        api_tokens=[f"{name}:{role}:{token}" for name, (role, token) in tokens.items()],
    )

    def auth(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[name][1]}"}

    async with serve_app(create_app(settings)) as http:
        ready = await http.get("/readyz")
        body = ready.json()
        assert body["checks"]["llm"].startswith("unreachable: "), body
        assert body["degraded"] == ["llm"]

        data = example_goal(goal_id=f"lc-{secrets.token_hex(4)}", requested_by="mallory@x.io")
        created = await http.post("/v1/goals", json=data, headers=auth("sam"))
        assert created.status_code == 202, created.text
        run_id = created.json()["run_id"]

        async def detail() -> dict[str, Any]:
            response = await http.get(f"/v1/runs/{run_id}", headers=auth("sam"))
            assert response.status_code == 200, response.text
            got: dict[str, Any] = response.json()
            return got

        stuck = await wait_until(detail, lambda d: d["last_error"], what="the LLM error")
        assert stuck["state"] == "PENDING"
        assert "cannot reach the LLM" in stuck["last_error"]
        # item 13: the audit's actor is the caller, requested_by is a claim
        first = stuck["audit"][0]
        assert (first["event"], first["actor"]) == ("run.created", "sam")
        assert "mallory@x.io" in first["note"]
        assert "claimed" in first["note"]
        assert stuck["requested_by"] == "mallory@x.io"

        rejected = await http.post(f"/v1/runs/{run_id}/reject", headers=auth("alice"))
        assert rejected.status_code == 409, rejected.text
        refused = await http.post(f"/v1/runs/{run_id}/cancel", headers=auth("sam"))
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "forbidden"

        response = await http.post(
            f"/v1/runs/{run_id}/cancel", json={"reason": "no LLM today"}, headers=auth("alice")
        )
        assert response.status_code == 202, response.text
        summary = response.json()
        assert summary["state"] == "REJECTED"
        assert summary["decision"]["decision"] == "cancel"
        assert summary["decision"]["actor"] == "alice"
        assert summary["decision"]["channel"] == "rest"

        ended = await detail()
        assert ended["error"] == "cancelled by alice via rest: no LLM today"
        last = ended["audit"][-1]
        assert (last["event"], last["actor"], last["to_state"]) == (
            "run.cancelled",
            "alice",
            "REJECTED",
        )
        again = await http.post(f"/v1/runs/{run_id}/cancel", headers=auth("alice"))
        assert again.status_code == 409
        assert again.json()["error"] == "conflict"
        assert "already cancelled by alice" in again.json()["message"]
        approve = await http.post(f"/v1/runs/{run_id}/approve", headers=auth("alice"))
        assert approve.status_code == 409
        missing = await http.post("/v1/runs/no-such-run/cancel", headers=auth("alice"))
        assert missing.status_code == 404
        assert missing.json()["error"] == "run_not_found"


async def test_readyz_reports_a_reachable_llm(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    with fake_openai() as llm:
        settings = llm_settings(make_settings, llm.base_url, database_url=database_url)
        async with serve_app(create_app(settings, run_worker=False)) as http:
            body = (await http.get("/readyz")).json()
    assert body["checks"]["llm"] == "ok"
    assert body["degraded"] == []
    catalog = make_settings(database_url=database_url, planner="catalog")
    async with serve_app(create_app(catalog, run_worker=False)) as http:
        body = (await http.get("/readyz")).json()
    assert "llm" not in body["checks"]


async def test_crew_cancel_from_the_cli(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = llm_settings(make_settings, nowhere(), database_url=database_url)
    async with open_services(settings, role="test") as services:
        record, _ = await submit_goal(services, goal(), actor="tester")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env.update(CREW_DATABASE_URL=database_url, CREW_DATA_DIR=str(settings.data_dir), COLUMNS="200")

    def crew(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [venv_tool("crew", "make install"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    cancelled = await asyncio.to_thread(
        crew, "cancel", record.run_id, "--actor", "bob", "--reason", "wrong goal", "--json"
    )
    assert cancelled.returncode == 0, cancelled.stderr
    shown = json.loads(cancelled.stdout)
    assert shown["state"] == "REJECTED"
    assert shown["error"] == "cancelled by bob via cli: wrong goal"
    again = await asyncio.to_thread(crew, "cancel", record.run_id, "--actor", "bob")
    assert again.returncode == 4, again.stderr
    assert "already cancelled by bob via cli" in again.stderr
    unknown = await asyncio.to_thread(crew, "cancel", "nope-1", "--actor", "bob")
    assert unknown.returncode == 2, unknown.stderr
    async with open_services(settings, role="test") as services:
        audit = await services.runs.audit(record.run_id)
    assert (audit[-1].event, audit[-1].actor, audit[-1].note) == (
        EventType.RUN_CANCELLED,
        "bob",
        "cancelled by bob via cli: wrong goal",
    )


async def test_the_rest_client_cannot_pick_the_audited_creator(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """Without tokens (loopback) every caller is `local`: the audit says so."""
    settings = make_settings(database_url=database_url, planner="catalog")
    async with serve_app(create_app(settings, run_worker=False)) as http:
        data = example_goal(goal_id=f"lc-{secrets.token_hex(4)}", requested_by="alice@example.com")
        created = await http.post("/v1/goals", json=data)
        assert created.status_code == 202, created.text
        detail = (await http.get(f"/v1/runs/{created.json()['run_id']}")).json()
    first = detail["audit"][0]
    assert first["actor"] == "local"
    assert first["note"] == "requested_by (claimed by the goal, not verified): alice@example.com"


async def test_cancel_over_http_while_waiting_cannot_be_forged(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """The body cannot name the canceller either (DecisionBody forbids `actor`)."""
    settings = make_settings(database_url=database_url, planner="catalog")
    async with serve_app(create_app(settings, run_worker=False)) as http:
        data = example_goal(goal_id=f"lc-{secrets.token_hex(4)}")
        run_id = (await http.post("/v1/goals", json=data)).json()["run_id"]
        forged = await http.post(f"/v1/runs/{run_id}/cancel", json={"actor": "alice"})
        assert forged.status_code == 422, forged.text
        response = await http.post(f"/v1/runs/{run_id}/cancel")
        assert response.status_code == 202, response.text
        assert response.json()["decision"]["actor"] == "local"
        assert isinstance(response, httpx.Response)
