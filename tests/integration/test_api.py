"""The REST API served by a real uvicorn on a free port, over real HTTP, on a real Postgres,
with terraform applying to moto."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from api.app import create_app
from crew.settings import Settings
from tests.conftest import example_goal
from tests.integration._support import buckets_tagged, serve_app, wait_until

pytestmark = pytest.mark.integration

TERMINAL = {"DONE", "BLOCKED", "REJECTED", "FAILED"}
HAPPY_EVENTS = [
    "run.created",
    "plan.pending",
    "validate.pending",
    "validate.result",
    "approval.requested",
    "apply.request",
    "apply.done",
]


def serve(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The app (API + worker) served in this event loop."""
    return serve_app(create_app(settings))


@pytest.fixture
async def api(
    database_url: str, make_settings: Callable[..., Settings], aws_env: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """API + worker on a fresh database; terraform talks to moto."""
    async with serve(make_settings(database_url=database_url)) as client:
        yield client


def unique_goal(name: str = "goal-object-storage.json", **changes: Any) -> dict[str, Any]:
    return example_goal(name, goal_id=f"it-{secrets.token_hex(4)}", **changes)


async def submit(api: httpx.AsyncClient, goal: dict[str, Any]) -> str:
    response = await api.post("/v1/goals", json=goal)
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


async def wait_for_state(api: httpx.AsyncClient, run_id: str, state: str) -> dict[str, Any]:
    """Poll GET /v1/runs/{id} until it reaches `state` (or ends elsewhere: then fail)."""

    async def get() -> dict[str, Any]:
        response = await api.get(f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        return detail

    def stopped(detail: dict[str, Any]) -> bool:
        if detail["last_error"]:
            pytest.fail(f"run {run_id} hit a worker error: {detail['last_error']}")
        return detail["state"] == state or detail["state"] in TERMINAL

    detail = await wait_until(get, stopped, what=f"run {run_id} to reach {state}", interval_s=0.5)
    assert detail["state"] == state, (detail["state"], detail.get("error"))
    return detail


# -- submitting goals ----------------------------------------------------------------------


async def test_goal_is_accepted_once_per_goal_id(api: httpx.AsyncClient) -> None:
    goal = example_goal("goal-web-api.json")

    first = await api.post("/v1/goals", json=goal)
    assert first.status_code == 202, first.text
    created = first.json()
    assert created["created"] is True
    assert created["goal_id"] == goal["goal_id"]
    assert created["state"] == "PENDING"
    assert first.headers["location"] == f"/v1/runs/{created['run_id']}"

    again = await api.post("/v1/goals", json=goal)
    assert again.status_code == 200, again.text
    assert again.json()["run_id"] == created["run_id"]
    assert again.json()["created"] is False
    assert again.headers["location"] == f"/v1/runs/{created['run_id']}"

    changed = await api.post("/v1/goals", json={**goal, "title": "Something else"})
    assert changed.status_code == 409, changed.text
    assert changed.json()["error"] == "conflict"
    assert goal["goal_id"] in changed.json()["message"]
    assert created["run_id"] in changed.json()["message"]

    listed = (await api.get("/v1/runs")).json()
    assert [r["run_id"] for r in listed] == [created["run_id"]]


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


BAD_GOALS: list[tuple[str, Any, str, str, str]] = [
    # (case, body, field, in problem, in fix)
    ("malformed JSON", b'{"schema_version": "0.1", "title": ', "", "JSON", "valid JSON"),
    ("unknown field", {**example_goal(), "titel": "x"}, "titel", "", "did you mean 'title'"),
    ("wrong schema_version", example_goal(schema_version="0.2"), "schema_version", "", "'0.1'"),
    ("unknown region", example_goal(region="eu-west-9"), "region", "unknown AWS region", "mean"),
    ("budget zero", example_goal(budget={"monthly_usd": 0}), "budget.monthly_usd", "", "> 0"),
    ("budget negative", example_goal(budget={"monthly_usd": -5}), "budget.monthly_usd", "", "> 0"),
    ("missing title", _without(example_goal(), "title"), "title", "", "add this required field"),
    ("missing budget", _without(example_goal(), "budget"), "budget", "", "required"),
    ("not an object", [1, 2, 3], "", "", ""),
]


async def test_bad_goals_get_422_naming_field_and_fix(api: httpx.AsyncClient) -> None:
    failures = []
    for case, body, field, in_problem, in_fix in BAD_GOALS:
        if isinstance(body, bytes):
            response = await api.post(
                "/v1/goals", content=body, headers={"content-type": "application/json"}
            )
        else:
            response = await api.post("/v1/goals", json=body)
        if response.status_code != 422:
            failures.append(f"{case}: HTTP {response.status_code} {response.text[:300]}")
            continue
        data = response.json()
        errors = data.get("errors") or []
        match = [
            e
            for e in errors
            if e.get("field") == field and in_problem in e.get("problem", "") and in_fix in e["fix"]
        ]
        well_formed = all(set(e) == {"field", "problem", "fix"} for e in errors)
        complete = all(e["problem"] and e["fix"] for e in errors)
        if data.get("error") != "invalid_request" or not match or not well_formed or not complete:
            failures.append(f"{case}: {errors}")
    assert not failures, "\n".join(failures)

    # Nothing was created by any of them.
    assert (await api.get("/v1/runs")).json() == []


async def test_decision_body_is_strict(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/runs/whatever/approve", json={"reason": "ok", "sudo": True})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "sudo"
    # Who decides is the authenticated principal (here `local`: no tokens on loopback).
    claimed = await api.post("/v1/runs/whatever/approve", json={"actor": "alice"})
    assert claimed.status_code == 422, claimed.text
    assert claimed.json()["errors"][0]["field"] == "actor"


# -- runs ----------------------------------------------------------------------------------


async def test_unknown_run_is_404(api: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/v1/runs/no-such-run"),
        ("POST", "/v1/runs/no-such-run/approve"),
        ("POST", "/v1/runs/no-such-run/reject"),
    ):
        response = await api.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"] == "run_not_found"
        assert "no-such-run" in response.json()["message"]


async def test_approving_a_blocked_run_is_409_naming_its_state(api: httpx.AsyncClient) -> None:
    run_id = await submit(api, unique_goal("goal-blocked.json"))
    detail = await wait_for_state(api, run_id, "BLOCKED")
    assert detail["artifacts"]["design_blocked"]["reasons"]
    assert detail["waiting_for_approval"] is False

    response = await api.post(f"/v1/runs/{run_id}/approve")
    assert response.status_code == 409, response.text
    assert "BLOCKED" in response.json()["message"]
    assert "not waiting for approval" in response.json()["message"]
    # Nothing about the run changed.
    after = (await api.get(f"/v1/runs/{run_id}")).json()
    assert after["state"] == "BLOCKED"
    assert after["decision"] is None
    assert [r["seq"] for r in after["audit"]] == [r["seq"] for r in detail["audit"]]


async def test_happy_path_applies_to_moto(api: httpx.AsyncClient, moto_endpoint: str) -> None:
    goal = unique_goal()
    blocked_id = await submit(api, unique_goal("goal-blocked.json"))
    response = await api.post("/v1/goals", json=goal)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert response.headers["location"] == f"/v1/runs/{run_id}"

    waiting = await wait_for_state(api, run_id, "WAIT_FOR_APPROVE")
    assert waiting["waiting_for_approval"] is True
    assert waiting["decision"] is None
    artifacts = waiting["artifacts"]
    assert artifacts["plan"]["goal_id"] == goal["goal_id"]
    assert [c["type"] for c in artifacts["plan"]["components"]] == ["s3_bucket"]
    assert artifacts["build"]["ok"] is True
    created = artifacts["build"]["plan"]["create"]
    assert created > 0
    assert artifacts["validation"]["verdict"] == "PASS"
    digest = artifacts["build"]["plan_file_digest"]
    assert digest
    assert artifacts["approval_request"]["plan_file_digest"] == digest
    assert artifacts["apply_result"] is None
    assert waiting["diagram"] == artifacts["plan"]["diagram"]
    assert waiting["diagram"].startswith("flowchart")
    assert buckets_tagged(moto_endpoint, "crew-goal", goal["goal_id"]) == set()

    approved = await api.post(f"/v1/runs/{run_id}/approve", json={"reason": "ok"})
    assert approved.status_code == 202, approved.text
    assert approved.json()["decision"]["actor"] == "local"
    assert approved.json()["decision"]["channel"] == "rest"

    done = await wait_for_state(api, run_id, "DONE")
    result = done["artifacts"]["apply_result"]
    assert result["ok"] is True, result
    assert result["resources"]["added"] == created
    bucket = result["outputs"]["objects_bucket"]
    assert result["outputs"]["objects_arn"] == f"arn:aws:s3:::{bucket}"
    logs = result["outputs"].get("access_log_bucket", bucket)
    assert buckets_tagged(moto_endpoint, "crew-goal", goal["goal_id"]) == {bucket, logs}
    assert done["waiting_for_approval"] is False

    audit = done["audit"]
    assert [r["seq"] for r in audit] == list(range(7))
    assert [r["event"] for r in audit] == HAPPY_EVENTS
    assert [r["to_state"] for r in audit][-3:] == ["WAIT_FOR_APPROVE", "APPLYING", "DONE"]
    request = audit[5]
    assert request["actor"] == "local"
    assert request["note"] == "ok"
    assert request["artifact_type"] == "ApprovalDecision"

    again = await api.post(f"/v1/runs/{run_id}/approve")
    assert again.status_code == 409, again.text
    assert "already approved by local via rest" in again.json()["message"]

    # the goal's stack: deployed, with what its state holds (REST and the console)
    stacks = {s["goal_id"]: s for s in (await api.get("/v1/stacks")).json()}
    stack = stacks[goal["goal_id"]]
    assert (stack["status"], stack["latest_run_id"], stack["runs"]) == ("deployed", run_id, 1)
    shown = (await api.get(f"/v1/stacks/{stack['stack_id']}")).json()
    assert shown["outputs"]["objects_bucket"] == bucket
    assert "aws_s3_bucket" in {r["type"] for r in shown["resources"]}
    assert [(r["run_id"], r["outcome"]) for r in shown["revisions"]] == [(run_id, "applied")]
    page = await api.get(f"/stacks/{stack['stack_id']}")
    assert page.status_code == 200, page.text
    assert "deployed" in page.text
    assert "aws_s3_bucket." in page.text
    listing = await api.get("/stacks")
    assert stack["stack_id"] in listing.text
    missing = await api.get("/v1/stacks/no-such-stack")
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"] == "stack_not_found"
    assert (await api.get("/stacks/no-such-stack")).status_code == 404

    await wait_for_state(api, blocked_id, "BLOCKED")
    only_done = (await api.get("/v1/runs", params={"state": "DONE"})).json()
    assert [r["run_id"] for r in only_done] == [run_id]
    only_blocked = (await api.get("/v1/runs", params={"state": "BLOCKED"})).json()
    assert [r["run_id"] for r in only_blocked] == [blocked_id]
    assert (await api.get("/v1/runs", params={"state": "WAIT_FOR_APPROVE"})).json() == []
    everything = (await api.get("/v1/runs")).json()
    assert {r["run_id"] for r in everything} == {run_id, blocked_id}
    bad_filter = await api.get("/v1/runs", params={"state": "SLEEPING"})
    assert bad_filter.status_code == 422

    # a DONE run can be rolled back over REST: the worker destroys what it created
    blocked_rollback = await api.post(f"/v1/runs/{blocked_id}/rollback")
    assert blocked_rollback.status_code == 409, blocked_rollback.text
    assert "only a DONE run can be rolled back" in blocked_rollback.json()["message"]
    rollback = await api.post(f"/v1/runs/{run_id}/rollback", json={"reason": "not needed"})
    assert rollback.status_code == 202, rollback.text

    async def rolled_back() -> dict[str, Any]:
        detail: dict[str, Any] = (await api.get(f"/v1/runs/{run_id}")).json()
        return detail

    undone = await wait_until(
        rolled_back,
        lambda d: d["state"] == "DONE" and d["artifacts"]["rollback_result"] is not None,
        what="the rollback to finish",
        interval_s=0.5,
    )
    assert undone["artifacts"]["rollback_result"]["ok"] is True
    assert buckets_tagged(moto_endpoint, "crew-goal", goal["goal_id"]) == set()
    assert undone["summary"]["outcome"] == "rolled back"
    emptied = (await api.get(f"/v1/stacks/{stack['stack_id']}")).json()
    assert (emptied["status"], emptied["resources"]) == ("rolled back", [])
    again = await api.post(f"/v1/runs/{run_id}/rollback")
    assert again.status_code == 409, again.text


async def test_reject_applies_nothing(api: httpx.AsyncClient, moto_endpoint: str) -> None:
    goal = unique_goal()
    run_id = await submit(api, goal)
    await wait_for_state(api, run_id, "WAIT_FOR_APPROVE")

    response = await api.post(f"/v1/runs/{run_id}/reject", json={"reason": "too pricey"})
    assert response.status_code == 202, response.text

    rejected = await wait_for_state(api, run_id, "REJECTED")
    assert rejected["artifacts"]["decision"]["decision"] == "reject"
    assert rejected["artifacts"]["apply_result"] is None
    assert rejected["error"] == "reject by local: too pricey"
    last = rejected["audit"][-1]
    assert (last["seq"], last["event"], last["actor"]) == (5, "run.rejected", "local")
    assert buckets_tagged(moto_endpoint, "crew-goal", goal["goal_id"]) == set()

    late = await api.post(f"/v1/runs/{run_id}/approve")
    assert late.status_code == 409
    assert "already rejected by local" in late.json()["message"]


# -- health --------------------------------------------------------------------------------


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "terraform": "ok"}


async def test_readyz_names_missing_terraform(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=database_url, terraform_bin="/nonexistent/terraform")
    async with serve(settings) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert "/nonexistent/terraform" in body["checks"]["terraform"]
    assert "CREW_TERRAFORM_BIN" in body["checks"]["terraform"]
