"""Stacks and run outcomes: what a run did to the cloud, a stack's status, its state parsed."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crew.drift import fingerprint
from crew.stacks import group_stacks, outcome_of, stack_key, stack_status
from graph.state import run_outcome, summarize
from memory.runs import RunRecord
from schemas.apply import ApplyResult, Operation
from schemas.drift import DriftAction
from schemas.goal import GoalStatement
from schemas.stack import RunOutcome, StackStatus
from schemas.states import ConductorState
from tests.conftest import example_goal
from tools.backend import StateBackend
from tools.stack import StackKey
from tools.state import SENSITIVE, parse_state, read_stack_state
from tools.terraform_output import drifted_resources

T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)


def result(ok: bool, operation: Operation = Operation.APPLY) -> ApplyResult:
    return ApplyResult(
        run_id="r1",
        plan_id="r1-r1",
        operation=operation,
        ok=ok,
        started_at=T0,
        finished_at=T0,
        duration_s=0,
    )


@pytest.mark.parametrize(
    ("state", "applied", "undone", "expected"),
    [
        (ConductorState.PENDING, None, None, RunOutcome.IN_PROGRESS),
        (ConductorState.WAIT_FOR_APPROVE, None, None, RunOutcome.IN_PROGRESS),
        (ConductorState.BLOCKED, None, None, RunOutcome.NOT_APPLIED),
        (ConductorState.REJECTED, None, None, RunOutcome.NOT_APPLIED),
        (ConductorState.APPLYING, None, None, RunOutcome.IN_PROGRESS),
        (ConductorState.DONE, True, None, RunOutcome.APPLIED),
        # a failed apply is rolled back: in progress until the rollback ends
        (ConductorState.ROLLBACK, False, None, RunOutcome.IN_PROGRESS),
        (ConductorState.DONE, False, True, RunOutcome.ROLLED_BACK),
        (ConductorState.FAILED, False, False, RunOutcome.ROLLBACK_FAILED),
        # a human's rollback of an applied run, running, then done or failed
        (ConductorState.ROLLBACK, True, None, RunOutcome.IN_PROGRESS),
        (ConductorState.DONE, True, True, RunOutcome.ROLLED_BACK),
        (ConductorState.FAILED, True, False, RunOutcome.ROLLBACK_FAILED),
    ],
)
def test_run_outcome(
    state: ConductorState, applied: bool | None, undone: bool | None, expected: RunOutcome
) -> None:
    values: dict[str, Any] = {"conductor_state": state}
    if applied is not None:
        values["apply_result"] = result(applied)
    if undone is not None:
        values["rollback_result"] = result(undone, Operation.ROLLBACK)
    assert run_outcome(values) is expected
    assert summarize(values)["outcome"] == expected.value


def test_the_state_may_come_back_as_a_plain_string() -> None:
    values = {"conductor_state": "DONE", "apply_result": result(True)}
    assert run_outcome(values) is RunOutcome.APPLIED


def record(
    run_id: str,
    state: ConductorState,
    outcome: RunOutcome | None,
    *,
    goal_id: str = "g1",
    region: str = "eu-west-1",
    minutes: int = 0,
) -> RunRecord:
    goal = GoalStatement.model_validate(example_goal(goal_id=goal_id, region=region))
    at = T0 + timedelta(minutes=minutes)
    summary: dict[str, Any] = {"plan_id": f"{run_id}-r1"}
    if outcome is not None:
        summary["outcome"] = outcome.value
    return RunRecord(
        run_id=run_id,
        goal_id=goal_id,
        revision=1,
        title="t",
        requested_by=None,
        goal=goal,
        state=state,
        last_seq=0,
        summary=summary,
        decision=None,
        lease_owner=None,
        lease_until=None,
        apply_started_at=None,
        created_at=at,
        updated_at=at,
    )


def test_outcome_of_a_run_recorded_before_outcomes_were() -> None:
    old_done = record("a", ConductorState.DONE, None)
    assert outcome_of(old_done) is RunOutcome.NOT_APPLIED
    assert outcome_of(dataclasses.replace(old_done, state=ConductorState.APPLYING)) is (
        RunOutcome.IN_PROGRESS
    )
    garbage = dataclasses.replace(old_done, summary={"outcome": ["not", "a", "word"]})
    assert outcome_of(garbage) is RunOutcome.NOT_APPLIED


def test_stack_status_follows_the_newest_run_that_touched_the_cloud() -> None:
    applied = record("a", ConductorState.DONE, RunOutcome.APPLIED)
    waiting = record("b", ConductorState.WAIT_FOR_APPROVE, RunOutcome.IN_PROGRESS)
    rolled = record("c", ConductorState.DONE, RunOutcome.ROLLED_BACK)
    broken = record("d", ConductorState.FAILED, RunOutcome.ROLLBACK_FAILED)
    assert stack_status([waiting]) is StackStatus.PLANNED
    assert stack_status([waiting, applied]) is StackStatus.DEPLOYED
    assert stack_status([rolled, applied]) is StackStatus.ROLLED_BACK
    assert stack_status([broken, applied]) is StackStatus.NEEDS_ATTENTION


def test_runs_group_by_goal_and_region() -> None:
    runs = [
        record("a", ConductorState.DONE, RunOutcome.APPLIED, goal_id="g1"),
        record("b", ConductorState.DONE, RunOutcome.APPLIED, goal_id="g2"),
        record("c", ConductorState.DONE, RunOutcome.APPLIED, goal_id="g1", region="us-east-1"),
    ]
    grouped = group_stacks(runs)
    assert set(grouped) == {
        StackKey("g1", "eu-west-1"),
        StackKey("g2", "eu-west-1"),
        StackKey("g1", "us-east-1"),
    }
    assert stack_key(runs[0]).id.startswith("g1.eu-west-1.")


STATE = {
    "version": 4,
    "resources": [
        {"mode": "managed", "type": "aws_s3_bucket", "name": "logs", "instances": [{}]},
        {"mode": "data", "type": "aws_iam_policy_document", "name": "p", "instances": [{}]},
        {
            "mode": "managed",
            "type": "aws_subnet",
            "name": "private",
            "instances": [{"index_key": 0}, {"index_key": 1}],
        },
        {
            "module": "module.net",
            "mode": "managed",
            "type": "aws_vpc",
            "name": "main",
            "instances": [{"index_key": "a"}],
        },
    ],
    "outputs": {
        "bucket": {"value": "crew-1234-logs", "type": "string"},
        "password": {"value": "hunter2", "type": "string", "sensitive": True},
    },
}


def test_parse_state_lists_managed_resources_and_hides_sensitive_outputs() -> None:
    state = parse_state(STATE)
    assert [r.address for r in state.resources] == [
        "aws_s3_bucket.logs",
        "aws_subnet.private[0]",
        "aws_subnet.private[1]",
        'module.net.aws_vpc.main["a"]',
    ]
    assert state.outputs == {"bucket": "crew-1234-logs", "password": SENSITIVE}
    assert parse_state({}).resources == []


class _NoTerraform:
    async def state_pull(self, workdir: Path) -> dict[str, Any]:
        raise AssertionError("a local state is read from its file")


async def test_a_local_state_is_read_from_its_file(tmp_path: Path) -> None:
    backend = StateBackend.local(tmp_path)
    stack = StackKey("g1", "eu-west-1")
    assert (await read_stack_state(backend, stack, _NoTerraform(), None)).resources == []
    path = tmp_path / stack.id / "terraform.tfstate"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(STATE), encoding="utf-8")
    state = await read_stack_state(backend, stack, _NoTerraform(), None)
    assert len(state.resources) == 4
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError):
        await read_stack_state(backend, stack, _NoTerraform(), None)


class _Puller:
    def __init__(self) -> None:
        self.pulled: list[Path] = []

    async def state_pull(self, workdir: Path) -> dict[str, Any]:
        self.pulled.append(workdir)
        return STATE


async def test_a_remote_state_is_pulled_in_the_stack_workspace(tmp_path: Path) -> None:
    backend = StateBackend(kind="s3", bucket="b", region="eu-west-1")
    puller = _Puller()
    state = await read_stack_state(backend, StackKey("g1", "eu-west-1"), puller, tmp_path)
    assert puller.pulled == [tmp_path]
    assert state.outputs["bucket"] == "crew-1234-logs"
    with pytest.raises(FileNotFoundError):
        await read_stack_state(backend, StackKey("g1", "eu-west-1"), puller, None)


PLAN_WITH_DRIFT = {
    "resource_drift": [
        # filled by a sibling resource after the apply: not what the check reports
        {
            "address": "aws_s3_bucket.objects",
            "mode": "managed",
            "type": "aws_s3_bucket",
            "change": {"actions": ["update"], "before": {"versioning": []}, "after": {}},
        }
    ],
    "resource_changes": [
        {
            "address": "aws_s3_bucket.objects",
            "mode": "managed",
            "type": "aws_s3_bucket",
            "change": {
                "actions": ["update"],
                "before": {"tags": {"team": "platform", "owner": "mallory"}, "tags_all": None},
                "after": {"tags": {"team": "platform"}, "tags_all": {}},
            },
        },
        {
            "address": "aws_s3_bucket_public_access_block.objects",
            "mode": "managed",
            "type": "aws_s3_bucket_public_access_block",
            "change": {"actions": ["create"], "before": None, "after": {"block_public_acls": True}},
        },
        {
            "address": "aws_security_group.app",
            "mode": "managed",
            "type": "aws_security_group",
            "change": {
                "actions": ["delete", "create"],
                "before": {"name": "a", "ingress": [{"from_port": 22}]},
                "after": {"name": "a", "ingress": []},
            },
        },
        {
            "address": "aws_kms_key.stack",
            "mode": "managed",
            "type": "aws_kms_key",
            "change": {"actions": ["no-op"], "before": {}, "after": {}},
        },
        {
            "address": "data.aws_caller_identity.me",
            "mode": "data",
            "type": "aws_caller_identity",
            "change": {"actions": ["read"]},
        },
    ],
}


def test_drift_is_what_applying_the_declared_configuration_again_would_change() -> None:
    drifted = {r.address: r for r in drifted_resources(PLAN_WITH_DRIFT)}
    assert set(drifted) == {
        "aws_s3_bucket.objects",
        "aws_s3_bucket_public_access_block.objects",
        "aws_security_group.app",
    }
    bucket = drifted["aws_s3_bucket.objects"]
    # an added tag is named; null vs empty is not a change anyone made
    assert (bucket.action, bucket.attributes) == (DriftAction.UPDATE, ["tags.owner"])
    deleted = drifted["aws_s3_bucket_public_access_block.objects"]
    assert (deleted.action, deleted.attributes) == (DriftAction.DELETE, [])
    assert drifted["aws_security_group.app"].attributes == ["ingress"]
    assert drifted_resources({}) == []


def test_the_same_drift_has_the_same_fingerprint() -> None:
    first = drifted_resources(PLAN_WITH_DRIFT)
    assert fingerprint(first) == fingerprint(list(reversed(first)))
    assert fingerprint(first) != fingerprint(first[:1])
    assert fingerprint([]) == fingerprint([])
