"""Revisions at the gate, without terraform: the resource diff read from a plan, stateful
replacements and deletions flagged, the Slack message and button that acknowledge them, and
the drift message's Reconcile / Accept buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crew.gate.drift_message import drift_button_value, render_drift_message
from crew.gate.slack_message import (
    ACCEPT_DRIFT_ACTION,
    APPROVE_ACKNOWLEDGED_ACTION,
    RECONCILE_ACTION,
    button_value,
    render_message,
)
from crew.gate.slack_webhook import (
    GateCommand,
    Malformed,
    StackAction,
    StackCommand,
    parse_interaction,
)
from nodes.forge import summarize_plan
from schemas.approval import ApprovalRequest, Decision
from schemas.build import ResourceChange
from schemas.drift import DriftAction, DriftedResource, DriftReport
from schemas.goal import GoalStatement
from schemas.run import RunArtifacts, RunDetail
from schemas.states import ConductorState
from sentinel.stateful import describe_stateful, stateful_changes
from tests.slack_support import button_body

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "goal-object-storage.json"


def _rc(address: str, actions: list[str], before: Any, after: Any, **extra: Any) -> dict[str, Any]:
    return {
        "address": address,
        "type": address.split(".")[0],
        "change": {"actions": actions, "before": before, "after": after, **extra},
    }


PLAN = {
    "resource_changes": [
        _rc(
            "aws_s3_bucket.objects",
            ["update"],
            {"bucket": "b", "tags": {"team": "platform"}},
            {"bucket": "b", "tags": {"team": "platform", "owner": "payments"}},
        ),
        _rc(
            "aws_db_instance.db",
            ["delete", "create"],
            {"engine_version": "15", "identifier": "x"},
            {"engine_version": "16", "identifier": "x"},
            replace_paths=[["engine_version"]],
        ),
        _rc("aws_dynamodb_table.t", ["delete"], {"name": "t"}, None),
        _rc("aws_iam_role.app", ["delete"], {"name": "r"}, None),
        _rc("aws_sqs_queue.q", ["create"], None, {"name": "q"}),
        _rc("aws_s3_bucket_policy.p", ["no-op"], {"x": 1}, {"x": 1}),
    ]
}


def test_the_diff_names_what_changes_and_what_forces_a_replacement() -> None:
    summary = summarize_plan(PLAN)
    counts = (summary.create, summary.update, summary.replace, summary.delete)
    assert counts == (1, 1, 1, 2)
    by_address = {c.address: c for c in summary.resource_changes}
    assert "aws_s3_bucket_policy.p" not in by_address  # no-ops are not in the diff
    assert by_address["aws_s3_bucket.objects"].attributes == ["tags.owner"]
    assert by_address["aws_db_instance.db"].attributes == ["engine_version"]
    assert by_address["aws_db_instance.db"].replace_because == ["engine_version"]
    assert by_address["aws_sqs_queue.q"].attributes == []


def test_replacing_or_deleting_what_holds_data_is_flagged() -> None:
    flagged = stateful_changes(summarize_plan(PLAN).resource_changes)
    assert [(c.address, c.kind, c.action) for c in flagged] == [
        ("aws_db_instance.db", "database", "replace"),
        ("aws_dynamodb_table.t", "table", "delete"),
    ]
    assert describe_stateful(flagged) == (
        "replaces database aws_db_instance.db; deletes table aws_dynamodb_table.t"
    )
    # an update of a bucket, a created queue, a deleted role: no data lost
    assert not stateful_changes(
        [
            ResourceChange(address="aws_s3_bucket.b", type="aws_s3_bucket", actions=["update"]),
            ResourceChange(address="aws_sqs_queue.q", type="aws_sqs_queue", actions=["create"]),
            ResourceChange(address="aws_iam_role.r", type="aws_iam_role", actions=["delete"]),
        ]
    )


def _waiting(request: ApprovalRequest) -> RunDetail:
    goal = GoalStatement.model_validate(json.loads(EXAMPLE.read_text()))
    return RunDetail(
        run_id="run-2",
        goal_id="g-1",
        revision=2,
        title=goal.title,
        requested_by=None,
        state=ConductorState.WAIT_FOR_APPROVE,
        created_at=T0,
        updated_at=T0,
        goal=goal,
        artifacts=RunArtifacts(approval_request=request),
    )


@pytest.mark.parametrize("acknowledge", [False, True])
def test_the_gate_message_shows_the_diff_and_asks_for_the_acknowledgement(
    acknowledge: bool,
) -> None:
    summary = summarize_plan(PLAN)
    flagged = stateful_changes(summary.resource_changes) if acknowledge else []
    request = ApprovalRequest(
        run_id="run-2",
        plan_id="run-2-r2",
        plan_file_digest="d" * 64,
        summary="A private bucket",
        forecast_monthly_usd=1.5,
        budget_monthly_usd=20,
        create=summary.create,
        update=summary.update,
        delete=summary.delete,
        replace=summary.replace,
        revision=2,
        changes=summary.resource_changes,
        stateful_changes=flagged,
        acknowledgement_required=bool(flagged),
    )
    _, blocks = render_message(_waiting(request), "https://crew.example.com/runs/run-2")
    dumped = json.dumps(blocks)
    assert "Terraform plan (revision 2)" in dumped
    assert "+1 ~1 -2 \\u00b11 replaced" in dumped
    assert "Changes to the deployed stack" in dumped
    assert "update `aws_s3_bucket.objects` (tags.owner)" in dumped
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    approve = buttons[0]
    if acknowledge:
        assert approve["action_id"] == APPROVE_ACKNOWLEDGED_ACTION
        assert approve["text"]["text"] == "Approve, data loss acknowledged"
        assert "replaces database aws_db_instance.db" in approve["confirm"]["text"]["text"]
        assert "Data may be lost" in dumped
    else:
        assert approve["action_id"] == "crew_approve"
        assert "Data may be lost" not in dumped


def test_the_acknowledging_button_acknowledges() -> None:
    value = button_value("run-2", "ab" * 32)
    parsed = parse_interaction(button_body(APPROVE_ACKNOWLEDGED_ACTION, value, user_id="U1"))
    assert isinstance(parsed, GateCommand)
    assert parsed.action is Decision.APPROVE
    assert parsed.acknowledge_stateful is True
    plain = parse_interaction(button_body("crew_approve", value, user_id="U1"))
    assert isinstance(plain, GateCommand)
    assert plain.acknowledge_stateful is False


def test_a_ttl_is_for_non_prod_stacks() -> None:
    goal = json.loads(EXAMPLE.read_text())
    assert GoalStatement.model_validate({**goal, "ttl_hours": 24}).ttl_hours == 24
    with pytest.raises(ValueError, match="ttl_hours is for non-prod stacks"):
        GoalStatement.model_validate({**goal, "environment": "prod", "ttl_hours": 24})


def _drift() -> DriftReport:
    return DriftReport(
        stack_id="orders.eu-west-1.0a1b2c3d",
        run_id="run-1",
        checked_at=T0,
        duration_s=3.2,
        drifted=True,
        resources=[
            DriftedResource(
                address="aws_s3_bucket.objects",
                type="aws_s3_bucket",
                action=DriftAction.UPDATE,
                attributes=["tags.owner"],
            ),
            DriftedResource(
                address="aws_s3_bucket_public_access_block.objects",
                type="aws_s3_bucket_public_access_block",
                action=DriftAction.DELETE,
            ),
        ],
        fingerprint="f" * 16,
        trigger="schedule",
    )


def test_a_drift_message_offers_reconcile_and_accept() -> None:
    report = _drift()
    text, blocks = render_drift_message(report, "https://crew.example.com/stacks/x")
    assert text == "Drift in stack orders.eu-west-1.0a1b2c3d: 2 resource(s) changed"
    dumped = json.dumps(blocks)
    assert "`aws_s3_bucket.objects` changed (tags.owner)" in dumped
    assert "public_access_block.objects` deleted outside Terraform" in dumped
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [b["action_id"] for b in buttons] == [RECONCILE_ACTION, ACCEPT_DRIFT_ACTION]
    value = drift_button_value(report)
    for action_id, action in (
        (RECONCILE_ACTION, StackAction.RECONCILE),
        (ACCEPT_DRIFT_ACTION, StackAction.ACCEPT_DRIFT),
    ):
        parsed = parse_interaction(button_body(action_id, value, user_id="U1", user_name="al"))
        assert isinstance(parsed, StackCommand)
        assert (parsed.action, parsed.stack_id, parsed.fingerprint) == (
            action,
            report.stack_id,
            "f" * 16,
        )
        assert parsed.actor == "al (U1)"
    # a value that is no stack id (a path, a run id) is refused before anything runs
    for bad in ("../../etc|x", "run-1|x", "|x"):
        assert isinstance(
            parse_interaction(button_body(RECONCILE_ACTION, bad, user_id="U1")), Malformed
        )
