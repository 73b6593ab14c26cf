"""Slack requests in (signature, parsing into command / reply / ignore) and the gate message out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from crew.gate.slack_message import (
    APPROVE_ACTION,
    REJECT_ACTION,
    button_value,
    escape,
    render_message,
    status_line,
)
from crew.gate.slack_webhook import (
    GateCommand,
    Ignore,
    Malformed,
    NotVerified,
    Reply,
    Verified,
    parse_command,
    parse_interaction,
    verify_slack_request,
)
from schemas.apply import ApplyResult, Operation, ResourceCounts
from schemas.approval import ApprovalDecision, ApprovalRequest, Channel, Decision
from schemas.goal import GoalStatement
from schemas.run import RunArtifacts, RunDetail
from schemas.states import ConductorState
from tests.slack_support import SIGNING_SECRET, button_body, command_body, sign

NOW = 1_700_000_000.0
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "goal-object-storage.json"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _verify(body: bytes, headers: dict[str, str], now: float = NOW) -> Verified | NotVerified:
    lowered = {k.lower(): v for k, v in headers.items()}
    return verify_slack_request(SIGNING_SECRET, body, lowered, now)


# -- signatures -----------------------------------------------------------------------------


def test_a_correctly_signed_request_verifies() -> None:
    body = command_body("/approve", "run-1", user_id="U1")
    headers = sign(body, at=NOW)
    verdict = _verify(body, headers)
    assert verdict == Verified(signature=headers["X-Slack-Signature"], timestamp=int(NOW))


def test_a_signature_made_with_another_secret_is_refused() -> None:
    body = command_body("/approve", "run-1", user_id="U1")
    assert _verify(body, sign(body, secret="not-the-secret", at=NOW)) == NotVerified(
        "bad signature"
    )


def test_a_changed_body_is_refused() -> None:
    body = command_body("/approve", "run-1", user_id="U1")
    headers = sign(body, at=NOW)
    tampered = command_body("/approve", "run-2", user_id="U1")
    assert _verify(tampered, headers) == NotVerified("bad signature")


def test_timestamps_more_than_five_minutes_off_are_refused() -> None:
    body = command_body("/approve", "run-1", user_id="U1")
    for skew in (-301, 301, 3600):
        verdict = _verify(body, sign(body, at=NOW + skew))
        assert isinstance(verdict, NotVerified)
        assert verdict.reason.startswith("stale request")
    assert isinstance(_verify(body, sign(body, at=NOW - 299)), Verified)


def test_missing_or_malformed_headers_are_refused() -> None:
    body = command_body("/approve", "run-1", user_id="U1")
    headers = sign(body, at=NOW)
    assert isinstance(_verify(body, {}), NotVerified)
    no_sig = {k: v for k, v in headers.items() if k != "X-Slack-Signature"}
    assert "missing" in _reason(_verify(body, no_sig))
    assert "Unix time" in _reason(_verify(body, {**headers, "X-Slack-Request-Timestamp": "x"}))


def _reason(verdict: Verified | NotVerified) -> str:
    assert isinstance(verdict, NotVerified)
    return verdict.reason


def test_the_real_clock_is_used_by_default_in_signing() -> None:
    body = b"a=b"
    assert isinstance(_verify(body, sign(body), now=time.time()), Verified)


# -- slash commands -------------------------------------------------------------------------


def test_commands_become_gate_commands() -> None:
    parsed = parse_command(
        command_body("/reject", "run-1  too expensive for now", user_id="U1", user_name="alice")
    )
    assert parsed == GateCommand(
        action=Decision.REJECT,
        run_id="run-1",
        user_id="U1",
        user_name="alice",
        response_url="https://hooks.slack.com/commands/T0001/1/abc",
        reason="too expensive for now",
    )
    assert parsed.actor == "alice (U1)"
    approve = parse_command(command_body("/approve", " 20260105T120000-ab12cd34 ", user_id="U1"))
    assert isinstance(approve, GateCommand)
    assert (approve.action, approve.run_id, approve.reason) == (
        Decision.APPROVE,
        "20260105T120000-ab12cd34",
        None,
    )
    rollback = parse_command(command_body("/rollback", "run-1", user_id="U1"))
    assert isinstance(rollback, GateCommand)
    assert rollback.action is Decision.ROLLBACK


def test_malformed_commands_get_a_reply_and_do_nothing() -> None:
    cases = {
        command_body("/approve", "", user_id="U1"): "Which run?",
        command_body("/deploy", "run-1", user_id="U1"): "Unknown command `/deploy`",
        command_body("/approve", "<@U2>", user_id="U1"): "is not a run id",
        command_body("/approve", "run-1", user_id=""): "no user id",
        b"": "Unknown command `(none)`",
    }
    for body, expected in cases.items():
        parsed = parse_command(body)
        assert isinstance(parsed, Reply), body
        assert expected in parsed.text


# -- buttons --------------------------------------------------------------------------------


def test_buttons_carry_the_run_and_the_plan_digest() -> None:
    parsed = parse_interaction(
        button_body(APPROVE_ACTION, button_value("run-1", "ab" * 32), user_id="U1", user_name="al")
    )
    assert isinstance(parsed, GateCommand)
    assert (parsed.action, parsed.run_id, parsed.plan_digest) == (
        Decision.APPROVE,
        "run-1",
        "ab" * 32,
    )
    assert parsed.response_url == "https://hooks.slack.com/actions/T0001/1/abc"
    reject = parse_interaction(button_body(REJECT_ACTION, "run-1|cd", user_id="U1"))
    assert isinstance(reject, GateCommand)
    assert reject.action is Decision.REJECT
    assert reject.reason


def test_other_interactions_are_ignored() -> None:
    view = json.dumps({"type": "view_submission", "user": {"id": "U1"}})
    assert isinstance(parse_interaction(b"payload=" + view.encode()), Ignore)
    assert isinstance(
        parse_interaction(button_body("someone_else", "run-1|x", user_id="U1")), Ignore
    )


def test_interactions_slack_would_not_send_are_malformed() -> None:
    cases = {
        b"": "no `payload` field",
        b"payload=not-json": "payload is not JSON",
        button_body(APPROVE_ACTION, "|x", user_id="U1"): "carries no run id",
        button_body(APPROVE_ACTION, "run-1|x", user_id=""): "payload.user.id",
    }
    for body, expected in cases.items():
        parsed = parse_interaction(body)
        assert isinstance(parsed, Malformed), body
        assert expected in parsed.reason, (body, parsed.reason)


# -- the message ------------------------------------------------------------------------------


def _detail(state: ConductorState, **artifacts: object) -> RunDetail:
    goal = GoalStatement.model_validate(
        {**json.loads(EXAMPLE.read_text()), "title": "Logs <bucket> & more"}
    )
    return RunDetail(
        run_id="run-1",
        goal_id="g-1",
        revision=1,
        title=goal.title,
        requested_by=None,
        state=state,
        created_at=T0,
        updated_at=T0,
        goal=goal,
        artifacts=RunArtifacts(**artifacts),  # type: ignore[arg-type]
    )


def _request() -> ApprovalRequest:
    return ApprovalRequest(
        run_id="run-1",
        plan_id="run-1-r1",
        plan_file_digest="d" * 64,
        summary="A private bucket",
        forecast_monthly_usd=1.5,
        budget_monthly_usd=20,
        create=5,
        update=0,
        delete=0,
        top_findings=["LOW CKV_AWS_18: access logging <off>"],
    )


def test_the_waiting_message_has_the_facts_and_the_buttons() -> None:
    text, blocks = render_message(
        _detail(ConductorState.WAIT_FOR_APPROVE, approval_request=_request()),
        "https://crew.example.com/v1/runs/run-1",
    )
    dumped = json.dumps(blocks)
    assert "Logs &lt;bucket&gt; &amp; more" in text
    assert "Waiting for approval" in text
    assert "<https://crew.example.com/v1/runs/run-1|run-1>" in dumped
    assert "+5 ~0 -0" in dumped
    assert "access logging &lt;off&gt;" in dumped
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    buttons = {e["action_id"]: e["value"] for e in actions[0]["elements"]}
    assert buttons == {
        APPROVE_ACTION: button_value("run-1", "d" * 64),
        REJECT_ACTION: button_value("run-1", "d" * 64),
    }


def test_the_message_follows_the_run_and_loses_its_buttons() -> None:
    decision = ApprovalDecision(
        run_id="run-1", decision=Decision.APPROVE, actor="alice (U1)", channel=Channel.SLACK, at=T0
    )
    applied = ApplyResult(
        run_id="run-1",
        plan_id="run-1-r1",
        operation=Operation.APPLY,
        ok=True,
        resources=ResourceCounts(added=5),
        started_at=T0,
        finished_at=T0,
        duration_s=1,
    )
    rolled = applied.model_copy(update={"operation": Operation.ROLLBACK, "restored": "empty stack"})
    cases = [
        (_detail(ConductorState.APPLYING, decision=decision), "Approved by alice (U1) via slack"),
        (_detail(ConductorState.DONE, decision=decision, apply_result=applied), "5 added"),
        (
            _detail(
                ConductorState.DONE,
                decision=decision,
                apply_result=applied,
                rollback_result=rolled,
                rollback_request=decision.model_copy(update={"decision": Decision.ROLLBACK}),
            ),
            "Rolled back by alice (U1) via slack: restored empty stack",
        ),
        (
            _detail(
                ConductorState.REJECTED,
                decision=decision.model_copy(
                    update={"decision": Decision.REJECT, "reason": "too <big>"}
                ),
            ),
            "Rejected by alice (U1) via slack: too &lt;big&gt;",
        ),
    ]
    for detail, expected in cases:
        assert expected in status_line(detail)
        _, blocks = render_message(detail, "http://x/v1/runs/run-1")
        assert not [b for b in blocks if b["type"] == "actions"], detail.state


def test_escape_neutralises_links_and_mentions() -> None:
    assert escape("<!channel> <http://evil|click> & co") == (
        "&lt;!channel&gt; &lt;http://evil|click&gt; &amp; co"
    )
