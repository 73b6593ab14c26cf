"""A failed rollback pages the approvers' Slack channel, and `/cancel` works from Slack: the
notifier and the slash command on a real Postgres, with `slack_sdk` talking to the loopback
Slack Web API of tests/slack_support.py.

The FAILED run is written into its checkpoint as the rollback node writes it (no terraform:
tests/unit/test_graph_flow.py runs the rollback itself to FAILED); everything from there (the
message outbox, rendering, posting once, the gate message update) is the product path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from crew.container import Services, open_services
from crew.gate.notifier import build_notifier
from crew.settings import Settings
from graph.state import initial_state, transition
from schemas.apply import ApplyResult, Operation
from schemas.build import BuildStatus
from schemas.events import EventType
from schemas.plan import PlanSpec
from schemas.states import ConductorState as S
from tests.slack_support import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    command_body,
    sign,
)
from tests.unit.support import ARTIFACT_EXAMPLES, make_goal
from tools.stack import StackKey

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0)
APPROVER = "U0APPROVER"
LEFT = ["aws_kms_key.stack", "aws_s3_bucket.objects", 'aws_s3_bucket_policy.objects["tls"]']


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    try:
        yield slack
    finally:
        slack.stop()


@pytest.fixture
async def services(
    database_url: str, make_settings: Callable[..., Settings], fake: FakeSlack
) -> AsyncIterator[Services]:
    settings = make_settings(
        database_url=database_url,
        planner="catalog",
        slack_signing_secret=SIGNING_SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_channel=CHANNEL,
        slack_api_url=fake.api_url,
        approvers=[f"slack:{APPROVER}"],
    )
    async with open_services(settings, role="test") as opened:
        yield opened


async def failed_run(services: Services, run_id: str, remaining: list[str] | None) -> PlanSpec:
    """A run whose apply failed and whose rollback failed too, as the graph records it."""
    goal = make_goal(goal_id=f"goal-{run_id}", title="Team <b>uploads</b> bucket")
    record, _ = await services.runs.create(goal, run_id=run_id, at=T0, actor="sam")
    plan = PlanSpec.model_validate_json((ARTIFACT_EXAMPLES / "PlanSpec.json").read_text())
    plan = plan.model_copy(update={"goal_id": record.goal_id, "diagram_svg": None})
    workspace = str(services.settings.workspaces_dir / run_id / "r1")
    applied = ApplyResult.model_validate_json((ARTIFACT_EXAMPLES / "ApplyResult.json").read_text())
    applied = applied.model_copy(
        update={"run_id": run_id, "ok": False, "error": "apply failed", "failure_at": T0}
    )
    undone = applied.model_copy(
        update={
            "operation": Operation.ROLLBACK,
            "error": "terraform destroy failed: AccessDenied deleting the KMS key",
            "page_human": True,
            "remaining": remaining,
        }
    )
    state = initial_state(record.run_id, record.goal_id, goal, T0)
    state.update(
        plan=plan,
        build=BuildStatus(plan_id=plan.plan_id, ok=True, workspace=workspace),
        apply_result=applied,
        rollback_result=undone,
        error="rollback failed, page a human: terraform destroy failed",
    )
    steps = [
        (S.IN_PROGRESS, EventType.PLAN_PENDING),
        (S.APPLYING, EventType.APPLY_REQUEST),
        (S.ROLLBACK, EventType.ROLLBACK_STARTED),
        (S.FAILED, EventType.ROLLBACK_FAILED),
    ]
    for at, (to, event) in enumerate(steps, start=1):
        moved = transition(state, to, event=event, actor="forge", at=T0 + timedelta(seconds=at))
        state["transitions"] = [*state["transitions"], moved]
        state["conductor_state"] = to
    config: Any = {"configurable": {"thread_id": run_id}}
    await services.graph.aupdate_state(config, state, as_node="rollback")
    assert (await services.runs.get(run_id)).state is S.FAILED
    return plan


def pages(fake: FakeSlack) -> list[dict[str, Any]]:
    return [
        c.body
        for c in fake.calls_to("/api/chat.postMessage")
        if str(c.body.get("text")).startswith("<!here> Rollback failed")
    ]


async def test_a_failed_rollback_pages_the_channel_once(
    services: Services, fake: FakeSlack
) -> None:
    run_id = "20261207T010000-fa11ed01"
    plan = await failed_run(services, run_id, LEFT)
    notifier = build_notifier(services)
    assert notifier is not None

    assert await notifier.deliver_due() == 1
    (page,) = pages(fake)
    assert page["channel"] == CHANNEL
    text = page["text"]
    assert text.startswith("<!here> Rollback failed for Team &lt;b&gt;uploads&lt;/b&gt; bucket")
    stack = StackKey.of(plan).id
    assert stack in text
    blocks = json.dumps(page["blocks"])
    assert stack in blocks
    assert run_id in blocks
    for address in LEFT:  # what is left in the cloud, by address (escaped for mrkdwn)
        assert json.dumps(address.replace("&", "&amp;"))[1:-1] in blocks
    assert "3 resource(s) this run added" in blocks
    assert "AccessDenied deleting the KMS key" in blocks
    assert "terraform state list" in blocks
    assert f"crew show {run_id}" in blocks
    assert "pre-apply.tfstate" in blocks  # where the state before the apply is kept

    # The gate message is posted too (no message was posted for it before), once.
    gate = [c for c in fake.messages_for(run_id) if "page a human" in str(c.body.get("text"))]
    assert len(gate) == 1
    message = await services.slack_messages.get(run_id)
    assert message is not None
    assert message.page_ts is not None
    assert message.paged_seq == 4

    # Nothing new happened: no second page, whatever the notifier does next.
    assert await notifier.deliver_due() == 0
    assert len(pages(fake)) == 1


async def test_a_page_that_fails_to_post_is_retried_and_posted_once(
    services: Services, fake: FakeSlack
) -> None:
    run_id = "20261207T010000-fa11ed02"
    await failed_run(services, run_id, None)
    notifier = build_notifier(services)
    assert notifier is not None
    fake.fail_next("chat.postMessage", {"ok": False, "error": "ratelimited"})
    assert await notifier.deliver_due() == 0
    message = await services.slack_messages.get(run_id)
    assert message is not None
    assert message.page_ts is None
    assert message.attempts == 1
    async with services.pool.connection() as conn:  # the back-off is over
        await conn.execute(
            "UPDATE crew_slack_messages SET next_attempt_at = NULL WHERE run_id = %s", (run_id,)
        )
    assert await notifier.deliver_due() == 1
    refused, page = pages(fake)  # Slack answered the first try with `ratelimited`
    assert refused == page
    assert "unknown: the state could not be read" in json.dumps(page["blocks"])
    assert await notifier.deliver_due() == 0
    assert len(pages(fake)) == 2


async def test_slash_cancel_from_slack(services: Services, fake: FakeSlack) -> None:
    app = create_app(services.settings, run_worker=False)
    app.state.services = services
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    goal = make_goal(goal_id="goal-slack-cancel")
    record, _ = await services.runs.create(goal, run_id="20261207T010000-ca11ed01", at=T0)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

        async def command(text: str, user_id: str) -> str:
            body = command_body("/cancel", text, user_id=user_id, user_name="ann")
            response = await http.post("/slack/commands", content=body, headers=sign(body))
            assert response.status_code == 200, response.text
            answer: str = response.json()["text"]
            return answer

        refused = await command(f"{record.run_id} not yours", "U0STRANGER")
        assert refused.startswith(":lock: refused:")
        assert "not an approver" in refused
        assert (await services.runs.get(record.run_id)).state is S.PENDING

        done = await command(f"{record.run_id} duplicate of another goal", APPROVER)
        assert done == f":octagonal_sign: Cancelled run `{record.run_id}`; it ends REJECTED " + (
            "and nothing is applied."
        )
        run = await services.runs.get(record.run_id)
        assert run.state is S.REJECTED
        assert run.decision is not None
        assert run.decision.actor == f"ann ({APPROVER})"
        assert run.decision.reason == "duplicate of another goal"
        audit = await services.runs.audit(record.run_id)
        assert (audit[-1].event, audit[-1].actor) == (EventType.RUN_CANCELLED, f"ann ({APPROVER})")
        assert (
            audit[-1].note == f"cancelled by ann ({APPROVER}) via slack: duplicate of another goal"
        )

        again = await command(record.run_id, APPROVER)
        assert again.startswith(":warning: run")
        assert "already cancelled" in again
        usage = await command("", APPROVER)
        assert "`/cancel RUN_ID [reason]`" in usage


async def test_cancel_at_the_gate_from_slack_updates_the_message(
    database_url: str,
    make_settings: Callable[..., Settings],
    aws_env: dict[str, str],
) -> None:
    """A real run (terraform plan on moto, Sentinel) waits at the gate; `/cancel` answers the
    gate's interrupt as a reject would, and the gate message loses its buttons."""
    from tests.integration._support import wait_until
    from tests.integration.gate_support import gate_overrides, serve_gate, unique_goal

    slack = FakeSlack().start()
    try:
        settings = make_settings(database_url=database_url, **gate_overrides(slack))
        async with serve_gate(settings, slack) as gate:
            run_id = await gate.submit(unique_goal())
            await gate.wait_for(run_id, "WAIT_FOR_APPROVE")
            # The gate message goes out on the notifier's next round; a run cancelled before it
            # is posted gets no message at all (nobody was asked), so wait for it first.
            await wait_until(
                lambda: asyncio.to_thread(slack.messages_for, run_id),
                bool,
                what="the gate message posted",
            )
            answer = await gate.command("/cancel", f"{run_id} superseded")
            assert answer.status_code == 200, answer.text
            said = answer.json()["text"]
            if said.startswith("Working on"):  # past Slack's 3 s: the outcome follows
                (said,) = await gate.hook_texts("cmd")
            assert said.startswith(f":octagonal_sign: Cancelled run `{run_id}`"), said
            detail = await gate.wait_for(run_id, "REJECTED")
            assert detail["decision"]["decision"] == "cancel"
            last = detail["audit"][-1]
            assert (last["event"], last["from_state"], last["to_state"]) == (
                "run.cancelled",
                "WAIT_FOR_APPROVE",
                "REJECTED",
            )

            async def text() -> dict[str, Any]:
                calls = slack.messages_for(run_id)
                return calls[-1].body if calls else {}

            body = await wait_until(
                text, lambda b: "Cancelled" in b.get("text", ""), what="the message updated"
            )
            assert not [b for b in body["blocks"] if b["type"] == "actions"]
            approve = await gate.http.post(
                f"/v1/runs/{run_id}/approve", headers={"Authorization": "Bearer x"}
            )
            assert approve.status_code == 401
    finally:
        slack.stop()
