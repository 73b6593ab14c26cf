"""The human gate end to end: tokens with roles, Slack messages posted and updated through the
real slack_sdk client (against a local stand-in for Slack's Web API), signed slash commands and
buttons that resume the run, every refusal, the approval race, stale plans, approval expiry, a
Slack /rollback, and the rollback SLA, with terraform applying to moto."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.routes import slack as slack_routes
from crew.gate.slack_message import APPROVE_ACTION, button_value
from crew.gate.timers import expire_waiting_runs
from crew.settings import Settings
from tests.integration._support import buckets_tagged, wait_until
from tests.integration.gate_support import (
    APPROVER_ID,
    PUBLIC_URL,
    Gate,
    auth,
    gate_overrides,
    serve_gate,
    terraform_applies,
    unique_goal,
)
from tests.slack_support import BOT_TOKEN, CHANNEL, FakeSlack, command_body, sign

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
async def gate(
    database_url: str,
    make_settings: Callable[..., Settings],
    aws_env: dict[str, str],
    fake_slack: FakeSlack,
) -> AsyncIterator[Gate]:
    settings = make_settings(database_url=database_url, **gate_overrides(fake_slack))
    async with serve_gate(settings, fake_slack) as running:
        yield running


def _actions(call_body: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in call_body.get("blocks", []) if b["type"] == "actions"]


async def _message_saying(gate: Gate, run_id: str, words: str) -> dict[str, Any]:
    """Wait for the run's Slack message to be updated to say `words`; its last body."""

    async def last() -> dict[str, Any]:
        calls = gate.fake.messages_for(run_id)
        return calls[-1].body if calls else {}

    return await wait_until(last, lambda b: words in b.get("text", ""), what=f"message: {words}")


async def test_slack_gate_end_to_end(
    gate: Gate, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    goal = unique_goal()
    # -- roles: nobody anonymous, viewers read, submitters submit -------------------------
    assert (await gate.http.get("/v1/runs")).status_code == 401
    anonymous = await gate.http.post("/v1/goals", json=goal)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"] == "unauthenticated"
    viewer = await gate.http.post("/v1/goals", json=goal, headers=auth("vic"))
    assert viewer.status_code == 403, viewer.text
    assert viewer.json()["message"] == "'vic' has the viewer role; this needs submitter"
    # The first post to Slack fails; the notifier backs off and posts again.
    gate.fake.fail_next("chat.postMessage", {"ok": False, "error": "internal_error"})
    run_id = await gate.submit(goal, as_="sam")
    await gate.wait_for(run_id, "WAIT_FOR_APPROVE")

    # -- the message at the gate ----------------------------------------------------------
    posts = await wait_until(
        lambda: _async(gate.fake.calls_to("/api/chat.postMessage")),
        lambda calls: len(calls) >= 2,
        what="the gate message (after one failed try)",
    )
    posted = posts[-1]
    assert posted.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert posted.body["channel"] == CHANNEL
    blocks = json.dumps(posted.body["blocks"])
    assert f"<{PUBLIC_URL}/runs/{run_id}|{run_id}>" in blocks
    assert "s3_bucket" in blocks
    assert "Forecast vs budget" in blocks
    assert "Top findings" in blocks
    assert [e["action_id"] for e in _actions(posted.body)[0]["elements"]] == [
        "crew_approve",
        "crew_reject",
    ]

    # -- refusals: nothing resumes --------------------------------------------------------
    body = command_body("/approve", run_id, user_id=APPROVER_ID, user_name="approver")
    forged = await gate.slack("/slack/commands", body, headers=sign(body, secret="guessed"))
    assert forged.status_code == 401
    assert forged.json() == {
        "error": "invalid_slack_request",
        "message": "bad signature",
        "errors": [],
    }
    stale = await gate.slack("/slack/commands", body, headers=sign(body, at=time.time() - 600))
    assert stale.status_code == 401
    assert stale.json()["message"].startswith("stale request")
    mallory = await gate.command("/approve", run_id, user_id="U0MALLORY")
    assert mallory.status_code == 200
    assert mallory.json()["response_type"] == "ephemeral"
    assert "'U0MALLORY' is not an approver" in mallory.json()["text"]
    unknown = await gate.command("/approve", "no-such-run")
    assert "no run with id 'no-such-run'" in unknown.json()["text"]
    # An outcome slower than the ack budget is acknowledged first and answered later.
    monkeypatch.setattr(slack_routes, "ACK_BUDGET_S", 0.0)
    slow = await gate.command("/approve", "no-such-run-2", hook="later")
    assert slow.json()["text"].startswith("Working on `approve no-such-run-2`")
    assert "no run with id 'no-such-run-2'" in (await gate.hook_texts("later"))[0]
    monkeypatch.undo()
    for name, why in (
        ("vic", "'vic' has the viewer role"),
        ("sam", "'sam' has the submitter role"),
        ("eve", "'eve' is not an approver (CREW_APPROVERS)"),
    ):
        response = await gate.http.post(f"/v1/runs/{run_id}/approve", headers=auth(name))
        assert response.status_code == 403, response.text
        assert why in response.json()["message"]
    body_actor = await gate.http.post(
        f"/v1/runs/{run_id}/approve", json={"actor": "alice"}, headers=auth("eve")
    )
    assert body_actor.status_code == 422
    assert "principal your bearer token names" in body_actor.json()["errors"][0]["problem"]
    still = await gate.detail(run_id)
    assert (still["state"], still["decision"]) == ("WAIT_FOR_APPROVE", None)
    refused = gate.rows("SELECT * FROM crew_gate_log WHERE run_id = %s ORDER BY id", run_id)
    assert [(r["kind"], r["channel"], r["actor"]) for r in refused] == [
        ("approval.refused", "slack", "mallory (U0MALLORY)"),
        ("approval.refused", "rest", "vic"),
        ("approval.refused", "rest", "sam"),
        ("approval.refused", "rest", "eve"),
    ]
    assert refused[0]["event"]["payload"]["decision"] == "approve"
    published = gate.rows(
        "SELECT body FROM crew_events WHERE run_id = %s AND type = 'approval.refused'", run_id
    )
    assert sorted(e["body"]["event_id"] for e in published) == sorted(
        r["event"]["event_id"] for r in refused
    )

    # -- a signed /approve resumes the run; a replay is refused -----------------------------
    headers = sign(body)
    approved = await gate.slack("/slack/commands", body, headers=headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["text"].startswith(":white_check_mark: Approved run")
    replay = await gate.slack("/slack/commands", body, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["error"] == "replayed_slack_request"
    retry = await gate.slack("/slack/commands", body, headers={**headers, "X-Slack-Retry-Num": "1"})
    assert (retry.status_code, retry.json()) == (200, {})

    # -- the apply's progress, resource by resource, while it runs -------------------------
    def applying_with_progress(detail: dict[str, Any]) -> bool:
        if detail["state"] in ("DONE", "ROLLBACK", "FAILED"):
            pytest.fail(f"the apply ended before any progress was seen: {detail['progress']}")
        progress = detail["progress"] or {}
        return progress.get("step") == "apply" and progress["done"] > 0

    midway = await wait_until(
        lambda: gate.detail(run_id), applying_with_progress, what="apply progress"
    )
    progress = midway["progress"]
    assert (midway["state"], progress["operation"], progress["finished"]) == (
        "APPLYING",
        "apply",
        False,
    )
    assert 0 < progress["done"] < progress["total"] == 16, progress
    assert progress["elapsed_s"] >= 0
    done = await gate.wait_for(run_id, "DONE")
    assert done["artifacts"]["apply_result"]["ok"] is True
    final = done["progress"]
    assert (final["step"], final["finished"], final["failed"]) == ("apply", True, 0)
    assert (
        final["done"] == final["total"] == done["artifacts"]["apply_result"]["resources"]["added"]
    )
    updates = [c.body.get("text", "") for c in gate.fake.messages_for(run_id)]
    assert any("applying: " in t and " of 16 resources" in t for t in updates), updates
    assert terraform_applies(done) == 1
    again = await gate.command("/approve", run_id, user_id=APPROVER_ID)
    assert "already approved by approver (U0APPROVER) via slack" in again.json()["text"]
    applied_msg = await _message_saying(gate, run_id, "Applied by approver (U0APPROVER)")
    assert not _actions(applied_msg)
    bucket = done["artifacts"]["apply_result"]["outputs"]["objects_bucket"]
    assert bucket in buckets_tagged(moto_endpoint, "crew-goal", goal["goal_id"])

    # -- /rollback from Slack ----------------------------------------------------------------
    refused_rollback = await gate.http.post(f"/v1/runs/{run_id}/rollback", headers=auth("sam"))
    assert refused_rollback.status_code == 403
    rolling = await gate.command("/rollback", f"{run_id} cleaning up the demo")
    assert rolling.json()["text"].startswith(":rewind: Rolling back run"), rolling.text

    async def rolled_back() -> dict[str, Any]:
        return await gate.detail(run_id)

    after = await wait_until(
        rolled_back,
        # the node's writes can be read a moment before the checkpoint that moves the state
        lambda d: d["artifacts"]["rollback_result"] is not None and d["state"] != "ROLLBACK",
        what="rollback",
    )
    assert after["state"] == "DONE"
    assert after["artifacts"]["rollback_result"]["ok"] is True
    assert buckets_tagged(moto_endpoint, "crew-goal", goal["goal_id"]) == set()
    await _message_saying(gate, run_id, "Rolled back by approver (U0APPROVER) via slack")

    # -- the audit log says who did what, when, and how ----------------------------------
    audit = {r["event"]: r for r in after["audit"]}
    assert audit["run.created"]["to_state"] == "PENDING"
    request = audit["apply.request"]
    assert request["actor"] == "approver (U0APPROVER)"
    assert request["artifact"]["channel"] == "slack"
    assert request["at"] <= audit["apply.done"]["at"]
    asked = audit["rollback.started"]
    assert (asked["actor"], asked["note"]) == ("approver (U0APPROVER)", "cleaning up the demo")
    assert asked["artifact"]["decision"] == "rollback"
    assert audit["rollback.done"]["from_state"] == "ROLLBACK"

    # -- the rollback SLA was measured ------------------------------------------------------
    async def sla() -> list[dict[str, Any]]:
        return gate.rows("SELECT * FROM crew_rollback_sla WHERE run_id = %s", run_id)

    measured = await wait_until(sla, lambda rows: len(rows) == 1, what="the rollback SLA")
    assert measured[0]["met"] is True
    assert measured[0]["begin_s"] < 300


async def _async(value: Any) -> Any:
    return value


def _crew(gate: Gate, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `crew` console script against the gate's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREW_")}
    env.update(
        CREW_DATABASE_URL=gate.database_url,
        CREW_DATA_DIR=str(tmp_path / "cli"),
        CREW_APPROVERS=",".join(gate.services.settings.approvers),
        COLUMNS="200",
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "crew"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def test_concurrent_approvals_apply_once_and_stale_or_expired_ones_never(
    gate: Gate, moto_endpoint: str, tmp_path: Path
) -> None:
    race_goal, idle_goal = unique_goal(), unique_goal()
    race_id = await gate.submit(race_goal)
    idle_id = await gate.submit(idle_goal)
    waiting = await gate.wait_for(race_id, "WAIT_FOR_APPROVE")
    idle = await gate.wait_for(idle_id, "WAIT_FOR_APPROVE")
    digest = waiting["artifacts"]["approval_request"]["plan_file_digest"]

    # -- three approvals at once: REST, a slash command and a button --------------------------
    rest, command, click = await asyncio.gather(
        gate.http.post(f"/v1/runs/{race_id}/approve", headers=auth("alice")),
        gate.command("/approve", race_id),
        gate.click(APPROVE_ACTION, button_value(race_id, digest), hook="race"),
    )
    assert click.status_code == 200
    clicked = (await gate.hook_texts("race"))[0]
    outcomes = [
        "approved" if rest.status_code == 202 else rest.json()["message"],
        "approved" if "Approved run" in command.json()["text"] else command.json()["text"],
        "approved" if "Approved run" in clicked else clicked,
    ]
    assert outcomes.count("approved") == 1, outcomes
    assert all("already approved by" in o for o in outcomes if o != "approved"), outcomes

    done = await gate.wait_for(race_id, "DONE")
    events = [r["event"] for r in done["audit"]]
    assert (events.count("apply.request"), events.count("apply.done")) == (1, 1)
    assert terraform_applies(done) == 1
    race_bucket = done["artifacts"]["apply_result"]["outputs"]["objects_bucket"]
    assert race_bucket in buckets_tagged(moto_endpoint, "crew-goal", race_goal["goal_id"])

    # -- a plan that changed after validation is not approved ---------------------------------
    build = idle["artifacts"]["build"]
    plan_file = Path(build["workspace"]) / build["plan_file"]
    original = plan_file.read_bytes()
    plan_file.write_bytes(original + b"tampered")
    try:
        stale = await gate.http.post(f"/v1/runs/{idle_id}/approve", headers=auth("alice"))
    finally:
        plan_file.write_bytes(original)
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"] == "stale_plan"
    assert "changed since it was validated" in stale.json()["message"]
    # -- nor one whose validation went stale because a newer revision exists -----------------
    newer = Path(build["workspace"]).parent / "r2"
    newer.mkdir()
    try:
        superseded = await gate.http.post(f"/v1/runs/{idle_id}/approve", headers=auth("alice"))
    finally:
        newer.rmdir()
    assert superseded.status_code == 409, superseded.text
    assert superseded.json()["error"] == "stale_plan"
    assert f"revision 2 of run {idle_id} exists" in superseded.json()["message"]
    old_button = await gate.click(APPROVE_ACTION, button_value(idle_id, "0" * 64), hook="old")
    assert old_button.status_code == 200
    assert "older plan" in (await gate.hook_texts("old"))[0]
    # The CLI takes the same path: with CREW_APPROVERS set, its --actor must be listed.
    cli = await asyncio.to_thread(
        _crew, gate, tmp_path, "approve", idle_id, "--actor", "intern", "--no-wait"
    )
    assert cli.returncode == 5, cli.stderr
    assert "'intern' is not an approver (CREW_APPROVERS)" in cli.stderr
    assert (await gate.detail(idle_id))["decision"] is None

    # -- nobody decides: the approval expires ----------------------------------------------
    later = gate.services.context.clock() + timedelta(hours=73)
    future = replace(gate.services, context=replace(gate.services.context, clock=lambda: later))
    assert await expire_waiting_runs(future) == [idle_id]
    rejected = await gate.wait_for(idle_id, "REJECTED")
    decision = rejected["artifacts"]["decision"]
    assert (decision["actor"], decision["channel"]) == ("conductor", "system")
    assert decision["reason"].startswith("approval expired: nobody decided within 3d")
    assert rejected["artifacts"]["apply_result"] is None
    assert buckets_tagged(moto_endpoint, "crew-goal", idle_goal["goal_id"]) == set()
    kinds = [
        r["kind"] for r in gate.rows("SELECT kind FROM crew_gate_log WHERE run_id = %s", idle_id)
    ]
    assert kinds == ["approval.refused"] * 4 + ["approval.expired"]
    channels = [
        r["channel"]
        for r in gate.rows(
            "SELECT channel FROM crew_gate_log WHERE run_id = %s ORDER BY id", idle_id
        )
    ]
    assert channels == ["rest", "rest", "slack", "cli", "system"]
    expired_events = gate.rows(
        "SELECT event_id FROM crew_events WHERE run_id = %s AND type = 'approval.expired'", idle_id
    )
    assert [e["event_id"] for e in expired_events] == [f"gate.approval.expired:{idle_id}"]
    assert await expire_waiting_runs(future) == []
    shown = await asyncio.to_thread(_crew, gate, tmp_path, "audit", "--gate", "--run", idle_id)
    assert shown.returncode == 0, shown.stderr
    assert "approval.refused" in shown.stdout
    assert "by intern via cli: 'intern' is not an approver" in shown.stdout
    assert "approval.expired" in shown.stdout
    await _message_saying(gate, idle_id, "Rejected by conductor via system")
