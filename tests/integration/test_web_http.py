"""The web console over HTTP (no browser): login, CSRF, roles, the goal form's validation,
error pages. The app is served by a real uvicorn on a real Postgres, without a worker, so runs
stay PENDING and no terraform is needed; the browser test (test_web_console.py) drives a run
through the gate."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from markupsafe import escape
from pydantic import ValidationError

from api.app import create_app
from crew.settings import Settings
from schemas.goal import GoalStatement
from schemas.inputs import problems_from
from tests.conftest import example_goal
from tests.integration._support import serve_app

pytestmark = pytest.mark.integration

TOKENS = {
    "alice": ("approver", f"crew_{secrets.token_hex(16)}"),
    "sam": ("submitter", f"crew_{secrets.token_hex(16)}"),
    "vic": ("viewer", f"crew_{secrets.token_hex(16)}"),
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_entries() -> list[str]:
    return [f"{name}:{role}:{token}" for name, (role, token) in TOKENS.items()]


@pytest.fixture
async def console(
    database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url=database_url, api_tokens=token_entries())
    async with serve_app(create_app(settings, run_worker=False)) as client:
        yield client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


async def login(client: httpx.AsyncClient, name: str) -> str:
    """Log `name` in on `client` (its cookie jar keeps the session); the page's CSRF token."""
    form = await client.get("/login")
    response = await client.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "token": TOKENS[name][1], "next": "/"},
    )
    assert response.status_code == 303, response.text
    page = await client.get("/")
    assert page.status_code == 200
    assert f"Signed in as <strong>{name}</strong>" in page.text
    return csrf_of(page.text)


async def test_pages_need_a_login_and_the_session_names_the_principal(
    console: httpx.AsyncClient,
) -> None:
    first = await console.get("/?state=DONE")
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2F%3Fstate%3DDONE"

    form = await console.get("/login?next=/audit")
    cookie = form.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert form.headers["content-security-policy"].startswith("default-src 'none'")
    token = csrf_of(form.text)

    wrong = await console.post(
        "/login", data={"csrf_token": token, "token": "crew_not-a-real-token", "next": "/"}
    )
    assert wrong.status_code == 401
    assert "not one of the configured API tokens" in wrong.text

    ok = await console.post(
        "/login", data={"csrf_token": token, "token": TOKENS["vic"][1], "next": "/audit"}
    )
    assert ok.status_code == 303
    assert ok.headers["location"] == "/audit"
    session = console.cookies["crew_session"]
    assert TOKENS["vic"][1] not in session  # the token itself is never in the cookie
    audit = await console.get("/audit")
    assert audit.status_code == 200
    assert "Signed in as <strong>vic</strong>" in audit.text
    assert csrf_of(audit.text) != token  # a new CSRF token at login

    # An open redirect is refused: after login the browser stays on this site.
    again = await console.post(
        "/login",
        data={"csrf_token": csrf_of(audit.text), "token": TOKENS["vic"][1], "next": "//evil"},
    )
    assert again.headers["location"] == "/"

    stale = await console.post("/logout", data={"csrf_token": csrf_of(audit.text)})
    assert stale.status_code == 403  # the second login rotated the token
    current = csrf_of((await console.get("/")).text)
    out = await console.post("/logout", data={"csrf_token": current})
    assert out.status_code == 303
    assert (await console.get("/")).status_code == 303


async def test_every_post_without_the_csrf_token_is_refused(console: httpx.AsyncClient) -> None:
    csrf = await login(console, "alice")
    other = httpx.AsyncClient(base_url=str(console.base_url))
    foreign = csrf_of((await other.get("/login")).text)  # another session's token
    await other.aclose()
    paths = ["/login", "/logout", "/goals/new"] + [
        f"/runs/some-run/{action}" for action in ("approve", "reject", "rollback", "cancel")
    ]
    for path in paths:
        for data in ({}, {"csrf_token": ""}, {"csrf_token": foreign}, {"csrf_token": csrf + "x"}):
            response = await console.post(path, data=data)
            assert response.status_code == 403, (path, data, response.status_code)
            assert "Form refused" in response.text
            assert "cross-site request forgery" in response.text
    # JSON bodies and the header path: only the session's own token passes.
    refused = await console.post("/logout", json={"csrf_token": csrf})
    assert refused.status_code == 403
    accepted = await console.post("/logout", headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 303


async def test_goal_form_validates_like_the_api(console: httpx.AsyncClient) -> None:
    csrf = await login(console, "sam")
    page = await console.get("/goals/new")
    assert page.status_code == 200
    assert 'value="sam"' in page.text  # requested_by defaults to the principal

    bad = {
        "csrf_token": csrf,
        "mode": "fields",
        "title": "",
        "description": "A bucket",
        "region": "eu-west-9",
        "budget.monthly_usd": "0",
        "workload.data_stores.2.size_gb": "ten",
        "constraints.required_tags": "team=platform\nno-equals-sign",
    }
    response = await console.post("/goals/new", data=bad)
    assert response.status_code == 422
    text = response.text
    # The same messages as POST /v1/goals (schemas.inputs), next to the fields they are about.
    data = {"schema_version": "0.1", "cloud": "aws", "description": "A bucket"}
    data |= {"region": "eu-west-9", "budget": {"monthly_usd": "0"}}
    with pytest.raises(ValidationError) as caught:
        GoalStatement.model_validate(data)
    for problem in problems_from(caught.value):
        assert str(escape(f"{problem.problem} — {problem.fix}")) in text, problem
    assert "did you mean &#39;eu-west-3&#39;?" in text
    assert 'id="f-region" name="region" aria-invalid="true"' in text
    assert "line 2 (&#39;no-equals-sign&#39;) is not key=value" in text
    assert "workload.data_stores.2.size_gb" in text  # the form row, not the list index
    assert 'value="A bucket"' not in text  # textarea content, not an attribute
    assert ">A bucket</textarea>" in text  # what was typed is kept
    runs = await console.get("/")
    assert "No runs" in runs.text

    goal = example_goal(goal_id=f"web-{secrets.token_hex(4)}")
    fields = {
        "csrf_token": csrf,
        "mode": "fields",
        "title": goal["title"],
        "description": goal["description"],
        "region": goal["region"],
        "environment": goal["environment"],
        "budget.monthly_usd": str(goal["budget"]["monthly_usd"]),
        "workload.data_stores.1.kind": "object_storage",
        "workload.data_stores.1.size_gb": "100",
        "constraints.required_tags": "team=platform\ncost-center=cc-1234",
        "requested_by": goal["requested_by"],
        "goal_id": goal["goal_id"],
    }
    created = await console.post("/goals/new", data=fields)
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert location.startswith("/runs/")
    assert location.endswith("?notice=submitted")
    run = await console.get(location)
    assert run.status_code == 200
    assert "Log archive bucket" in run.text
    assert "Goal submitted" in run.text
    assert 'id="approve"' not in run.text  # a submitter decides nothing

    # The same goal as JSON: the same goal_id leads to the same run (REST's 200).
    as_json = {"csrf_token": csrf, "mode": "json", "goal_json": json.dumps(goal)}
    again = await console.post("/goals/new", data=as_json)
    assert again.status_code == 303
    assert again.headers["location"] == location.replace("submitted", "existing")

    changed = json.dumps({**goal, "title": "Something else"})
    conflict = await console.post("/goals/new", data={**as_json, "goal_json": changed})
    assert conflict.status_code == 409
    assert goal["goal_id"] in conflict.text

    broken = await console.post("/goals/new", data={**as_json, "goal_json": '{"title": '})
    assert broken.status_code == 422
    assert "not valid JSON" in broken.text


async def test_viewer_reads_but_submits_and_decides_nothing(console: httpx.AsyncClient) -> None:
    csrf = await login(console, "vic")
    runs = await console.get("/")
    assert 'href="/goals/new"' not in runs.text
    form = await console.get("/goals/new")
    assert form.status_code == 403
    assert "viewer role" in form.text
    post = await console.post("/goals/new", data={"csrf_token": csrf, "mode": "json"})
    assert post.status_code == 403
    # Deciding goes through the gate, which refuses the viewer (as REST does) before it
    # even looks the run up.
    decide = await console.post("/runs/no-such-run/approve", data={"csrf_token": csrf})
    assert decide.status_code == 403
    assert "deciding at the gate needs approver" in decide.text


async def test_unknown_run_and_bad_filters_are_pages(console: httpx.AsyncClient) -> None:
    csrf = await login(console, "alice")
    missing = await console.get("/runs/no-such-run")
    assert missing.status_code == 404
    assert "no run with id &#39;no-such-run&#39;" in missing.text
    assert "<html" in missing.text
    fragment = await console.get("/fragments/runs/no-such-run", headers={"X-Console-Live": "1"})
    assert fragment.status_code == 404
    decide = await console.post("/runs/no-such-run/approve", data={"csrf_token": csrf})
    assert decide.status_code == 404
    state = await console.get("/?state=SLEEPING")
    assert state.status_code == 422
    assert "is not a run state" in state.text
    audit = await console.get("/audit?since=yesterday&event=apply.requst")
    assert audit.status_code == 422
    assert "did you mean &#39;apply.request&#39;?" in audit.text
    assert "since" in audit.text


async def test_audit_search_and_export(console: httpx.AsyncClient) -> None:
    csrf = await login(console, "sam")
    goal = example_goal(goal_id=f"web-{secrets.token_hex(4)}")
    submitted = await console.post(
        "/goals/new", data={"csrf_token": csrf, "mode": "json", "goal_json": json.dumps(goal)}
    )
    run_id = submitted.headers["location"].split("/")[2].split("?")[0]
    page = await console.get(f"/audit?run_id={run_id}")
    assert page.status_code == 200
    assert "run.created" in page.text
    exported = await console.get(f"/audit/export?run_id={run_id}&format=csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[0].startswith("at,run_id,seq,event")
    assert run_id in lines[1]
    assert "run.created" in lines[1]
    as_json = await console.get(f"/audit/export?run_id={run_id}&format=json")
    assert as_json.json()["items"][0]["run_id"] == run_id


async def test_live_fragments_answer_204_while_nothing_changed(
    console: httpx.AsyncClient,
) -> None:
    csrf = await login(console, "sam")
    goal = example_goal(goal_id=f"web-{secrets.token_hex(4)}")
    submitted = await console.post(
        "/goals/new", data={"csrf_token": csrf, "mode": "json", "goal_json": json.dumps(goal)}
    )
    run_id = submitted.headers["location"].split("/")[2].split("?")[0]
    live = {"X-Console-Live": "1"}
    first = await console.get(f"/fragments/runs/{run_id}", headers=live)
    assert first.status_code == 200
    version = first.headers["x-live-version"]
    assert first.headers["x-live"] == "1"
    same = await console.get(f"/fragments/runs/{run_id}?v={version}", headers=live)
    assert same.status_code == 204
    listing = await console.get("/fragments/runs", headers=live)
    assert run_id in listing.text
    unchanged = await console.get(
        f"/fragments/runs?v={listing.headers['x-live-version']}", headers=live
    )
    assert unchanged.status_code == 204
    # A background refresh of an ended session is a 401 (the script reloads the page).
    console.cookies.clear()
    ended = await console.get("/fragments/runs", headers=live)
    assert ended.status_code == 401


async def test_without_tokens_on_loopback_everyone_is_local(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=database_url)
    async with serve_app(create_app(settings, run_worker=False)) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert "Signed in as <strong>local</strong>" in page.text
        assert "Log out" not in page.text
        assert 'href="/goals/new"' in page.text  # local has the approver role, as for REST
        refused = await client.post("/goals/new", data={"mode": "json"})
        assert refused.status_code == 403  # CSRF still applies (any site can reach loopback)
        login: Any = await client.get("/login")
        assert "No API tokens are configured" in login.text


async def test_a_link_from_another_site_reopens_the_page_with_the_session(
    console: httpx.AsyncClient,
) -> None:
    """SameSite=Strict keeps the cookie off a navigation that starts elsewhere (a Slack
    link); the console answers such a request with a same-site reload instead of the login."""
    cross = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    reopen = await console.get("/runs/r1?notice=approved", headers=cross)
    assert reopen.status_code == 200
    assert '<meta http-equiv="refresh" content="0; url=/runs/r1?notice=approved">' in reopen.text
    same = await console.get("/runs/r1", headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 303
    assert same.headers["location"].startswith("/login?next=")


async def test_cancel_from_the_console_names_the_principal(console: httpx.AsyncClient) -> None:
    """A run nobody drives (no worker here) is cancelled with the run page's button, as the
    logged-in approver; the goal form's requested_by stays a claim in the audit."""
    csrf = await login(console, "sam")
    goal = example_goal(goal_id=f"web-{secrets.token_hex(4)}", requested_by="mallory")
    submitted = await console.post(
        "/goals/new", data={"csrf_token": csrf, "mode": "json", "goal_json": json.dumps(goal)}
    )
    run_id = submitted.headers["location"].split("/")[2].split("?")[0]
    page = await console.get(f"/runs/{run_id}")
    assert 'id="cancel"' not in page.text  # a submitter does not decide
    await console.post("/logout", data={"csrf_token": csrf_of(page.text)})

    csrf = await login(console, "alice")
    page = await console.get(f"/runs/{run_id}")
    assert f'action="/runs/{run_id}/cancel"' in page.text
    assert 'id="cancel"' in page.text
    done = await console.post(
        f"/runs/{run_id}/cancel", data={"csrf_token": csrf_of(page.text), "reason": "typo"}
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/runs/{run_id}?notice=cancelled"
    shown = await console.get(done.headers["location"])
    assert "Cancelled. The run ended REJECTED" in shown.text
    assert 'id="cancel"' not in shown.text
    exported = await console.get(f"/audit/export?run_id={run_id}&format=json")
    rows = sorted(exported.json()["items"], key=lambda r: r["seq"])
    assert [(r["event"], r["actor"]) for r in rows] == [
        ("run.created", "sam"),
        ("run.cancelled", "alice"),
    ]
    assert rows[0]["note"].endswith(": mallory")
    assert rows[1]["note"] == "cancelled by alice via rest: typo"
    again = await console.post(f"/runs/{run_id}/cancel", data={"csrf_token": csrf_of(shown.text)})
    assert again.status_code == 409
    assert "already cancelled by alice" in again.text
