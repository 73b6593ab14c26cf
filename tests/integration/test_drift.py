"""Drift detection on moto: a deployed stack changed behind the crew's back is found, announced
once, accepted by a human, then reconciled through the gate (moto back to the declared
configuration); a stack with nothing deployed, or unknown, is refused."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from crew.container import Services
from crew.gate.slack_message import ACCEPT_DRIFT_ACTION, RECONCILE_ACTION
from crew.settings import Settings
from tests.conftest import example_goal
from tests.integration._support import buckets_tagged, s3_client, serve_app, wait_until
from tests.slack_support import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    button_body,
    sign,
)

pytestmark = pytest.mark.integration

APPROVER = "U0APPROVER"


async def _run_state(api: httpx.AsyncClient, run_id: str, state: str) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        detail: dict[str, Any] = (await api.get(f"/v1/runs/{run_id}")).json()
        return detail

    detail = await wait_until(
        get,
        lambda d: d["state"] in {state, "BLOCKED", "FAILED", "REJECTED"} or bool(d["last_error"]),
        what=f"run {run_id} to reach {state}",
        limit_s=600,
        interval_s=0.5,
    )
    assert detail["state"] == state, (detail["state"], detail.get("error"), detail["last_error"])
    return detail


async def _gate_kinds(app: FastAPI, run_id: str) -> list[str]:
    services: Services = app.state.services
    return [e.kind for e in await services.gate.entries(run_id)]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    try:
        yield slack
    finally:
        slack.stop()


def _drift_messages(fake: FakeSlack, stack_id: str) -> list[dict[str, Any]]:
    return [
        c.body
        for c in fake.calls_to("/api/chat.postMessage")
        if RECONCILE_ACTION in json.dumps(c.body.get("blocks", [])) and stack_id in c.body["text"]
    ]


async def test_drift_behind_the_crews_back_is_found_announced_once_and_reconciled(
    database_url: str,
    make_settings: Callable[..., Settings],
    aws_env: dict[str, str],
    moto_endpoint: str,
    fake: FakeSlack,
) -> None:
    settings = make_settings(
        database_url=database_url,
        slack_bot_token=BOT_TOKEN,
        slack_channel=CHANNEL,
        slack_api_url=fake.api_url,
        slack_signing_secret=SIGNING_SECRET,
        approvers=[f"slack:{APPROVER}", "local"],
        request_timeout_s=600,  # a drift check answers when terraform has refreshed the stack
    )
    app = create_app(settings)
    # a drift check answers when terraform has refreshed the stack: allow for a busy machine
    async with serve_app(app, timeout_s=600) as api:
        goal = example_goal(goal_id=f"drift-{secrets.token_hex(4)}")
        run_id = (await api.post("/v1/goals", json=goal)).json()["run_id"]
        await _run_state(api, run_id, "WAIT_FOR_APPROVE")
        stack_id = (await api.get("/v1/stacks")).json()[0]["stack_id"]

        # nothing deployed yet: no drift to check
        early = await api.post(f"/v1/stacks/{stack_id}/drift")
        assert early.status_code == 409, early.text
        assert "planned: nothing deployed to check" in early.json()["message"]

        assert (await api.post(f"/v1/runs/{run_id}/approve")).status_code == 202
        done = await _run_state(api, run_id, "DONE")
        bucket = done["artifacts"]["apply_result"]["outputs"]["objects_bucket"]
        assert buckets_tagged(moto_endpoint, "crew-goal", goal["goal_id"])

        clean = await api.post(f"/v1/stacks/{stack_id}/drift")
        assert clean.status_code == 200, clean.text
        assert clean.json()["drifted"] is False
        assert clean.json()["run_id"] == run_id

        # behind the crew's back: a tag added by hand, the public access block deleted
        s3 = s3_client(moto_endpoint)
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
        s3.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [*tags, {"Key": "owner", "Value": "mallory"}]}
        )
        s3.delete_public_access_block(Bucket=bucket)

        found = await api.post(f"/v1/stacks/{stack_id}/drift")
        assert found.status_code == 200, found.text
        report = found.json()
        assert report["drifted"] is True
        by_type = {r["type"]: r for r in report["resources"]}
        assert by_type["aws_s3_bucket_public_access_block"]["action"] == "delete"
        tagged = [r for r in report["resources"] if r["type"] == "aws_s3_bucket"]
        assert any("tags.owner" in r["attributes"] for r in tagged), report["resources"]
        assert report["trigger"] == "rest:local"
        assert await _gate_kinds(app, run_id) == ["drift.detected"]
        # ... and in Slack, with Reconcile and Accept buttons
        [message] = _drift_messages(fake, stack_id)
        assert "tags.owner" in json.dumps(message["blocks"])
        actions = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
        assert [a["action_id"] for a in actions] == [RECONCILE_ACTION, ACCEPT_DRIFT_ACTION]
        assert actions[0]["value"] == f"{stack_id}|{report['fingerprint']}"

        # the same drift seen again is not announced again; the stack view shows the check
        again = (await api.post(f"/v1/stacks/{stack_id}/drift")).json()
        assert again["fingerprint"] == report["fingerprint"]
        assert await _gate_kinds(app, run_id) == ["drift.detected"]
        assert len(_drift_messages(fake, stack_id)) == 1
        stack = (await api.get(f"/v1/stacks/{stack_id}")).json()
        assert stack["last_drift"]["fingerprint"] == report["fingerprint"]
        assert stack["last_drift_check"] is not None
        assert stack["drift_accepted_by"] is None
        page = await api.get(f"/stacks/{stack_id}")
        assert "aws_s3_bucket_public_access_block" in page.text

        accepted = await api.post(f"/v1/stacks/{stack_id}/drift/accept")
        assert accepted.status_code == 200, accepted.text
        assert await _gate_kinds(app, run_id) == ["drift.detected", "drift.accepted"]
        assert (await api.get(f"/v1/stacks/{stack_id}")).json()["drift_accepted_by"] == "local"

        # reconcile from Slack: a revision that re-applies the declared configuration, through
        # the gate; a user not in CREW_APPROVERS is refused
        value = actions[0]["value"]
        for user in ("U0STRANGER", APPROVER):
            body = button_body(RECONCILE_ACTION, value, user_id=user, response_url=fake.hook(user))
            clicked = await api.post("/slack/interactions", content=body, headers=sign(body))
            assert clicked.status_code == 200, clicked.text

        async def answers(user: str) -> list[str]:
            return [c.body.get("text", "") for c in fake.calls_to(f"/hooks/{user}")]

        refused = await wait_until(lambda: answers("U0STRANGER"), bool, what="the refusal")
        assert refused[0].startswith(":lock:")
        started = await wait_until(lambda: answers(APPROVER), bool, what="the reconcile")
        assert "Reconciling stack" in started[0], started
        found_id = re.search(r"run `([^`]+)`", started[0])
        assert found_id is not None, started
        reconcile_id = found_id.group(1)
        assert reconcile_id != run_id
        gate = await _run_state(api, reconcile_id, "WAIT_FOR_APPROVE")
        assert gate["revision"] == 2
        assert gate["purpose"] == "reconcile"
        assert gate["base"] == {"run_id": run_id, "revision": 1}
        assert gate["artifacts"]["plan"]["components"] == done["artifacts"]["plan"]["components"]
        busy = await api.post(f"/v1/stacks/{stack_id}/drift/reconcile")
        assert busy.status_code == 409, busy.text
        assert "WAIT_FOR_APPROVE" in busy.json()["message"]
        request = gate["artifacts"]["approval_request"]
        changes = {c["type"]: c for c in request["changes"]}
        assert changes["aws_s3_bucket_public_access_block"]["actions"] == ["create"]
        assert "tags.owner" in changes["aws_s3_bucket"]["attributes"]
        assert request["acknowledgement_required"] is False
        assert (await api.post(f"/v1/runs/{reconcile_id}/approve")).status_code == 202
        await _run_state(api, reconcile_id, "DONE")
        # moto is back to the declared configuration
        assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        tag_keys = {t["Key"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        assert "owner" not in tag_keys
        after = (await api.post(f"/v1/stacks/{stack_id}/drift")).json()
        assert after["drifted"] is False
        assert after["run_id"] == reconcile_id

        metrics = (await api.get("/metrics")).text
        assert 'crew_drift_checks_total{result="drifted"} 2.0' in metrics
        assert 'crew_drift_checks_total{result="clean"} 2.0' in metrics

        unknown = await api.post("/v1/stacks/no-such-stack/drift")
        assert unknown.status_code == 404, unknown.text
