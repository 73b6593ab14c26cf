"""Revising a live stack on moto, through the API and a worker: one stack's whole life.

Revision 1 applied; revision 2 (a tag added to the goal, and a TTL) planned against it: the
gate shows the diff, approved, applied, re-validated. Revision 3 (a queue added) fails to apply
(moto refuses a queue name taken behind the crew's back) and rolls back to revision 2, not to
an empty stack. Then the TTL runs out: a warning, and a decommission run waits at the gate; the
bucket's deletion is flagged and the approval is refused until acknowledged; once applied, the
stack is destroyed. One stack, five applies: each step checks what it can.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from api.app import create_app
from crew.container import Services
from crew.expiry import expire_due_stacks
from crew.settings import Settings
from tests.conftest import example_goal
from tests.integration._support import s3_client, serve_app, wait_until
from tools.stack import StackKey

pytestmark = pytest.mark.integration

QUEUE = [{"kind": "object_storage", "size_gb": 100}, {"kind": "queue"}]


async def _settled(api: httpx.AsyncClient, run_id: str, state: str) -> dict[str, Any]:
    async def get() -> dict[str, Any] | None:
        try:
            detail: dict[str, Any] = (await api.get(f"/v1/runs/{run_id}")).json()
        except httpx.TransportError:  # a kept-alive connection the busy server closed: again
            return None
        return detail

    detail = await wait_until(
        get,
        lambda d: (
            d is not None
            and (d["state"] in {state, "BLOCKED", "FAILED", "REJECTED"} or bool(d["last_error"]))
        ),
        what=f"run {run_id} to reach {state}",
        limit_s=900,
        interval_s=0.5,
    )
    assert detail is not None
    assert detail["state"] == state, (detail["state"], detail.get("error"), detail["last_error"])
    return detail


def _tags(moto_endpoint: str, bucket: str) -> dict[str, str]:
    tag_set = s3_client(moto_endpoint).get_bucket_tagging(Bucket=bucket)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


async def test_a_stack_is_revised_rolled_back_to_its_last_revision_and_decommissioned(
    database_url: str,
    make_settings: Callable[..., Settings],
    aws_env: dict[str, str],
    moto_endpoint: str,
) -> None:
    # TTL expiry is driven by the test (no background check racing it); a re-validation
    # answers when terraform and the scanners are done: allow for a busy machine
    app = create_app(
        make_settings(database_url=database_url, ttl_check_interval_s=0, request_timeout_s=600)
    )
    goal_id = f"rev-{secrets.token_hex(4)}"
    tags = {"team": "platform", "cost-center": "cc-1234"}
    async with serve_app(app, timeout_s=600) as api:
        services: Services = app.state.services
        # -- revision 1 -----------------------------------------------------------------------
        first = (await api.post("/v1/goals", json=example_goal(goal_id=goal_id))).json()
        assert first["revision"] == 1
        run1 = first["run_id"]
        await _settled(api, run1, "WAIT_FOR_APPROVE")
        revised = example_goal(
            goal_id=goal_id,
            constraints={"required_tags": {**tags, "owner": "payments"}},
            ttl_hours=1,
        )
        busy = await api.post("/v1/goals", json=revised)
        assert busy.status_code == 409, busy.text
        assert "is WAIT_FOR_APPROVE; wait for it to end" in busy.json()["message"]
        assert (await api.post(f"/v1/runs/{run1}/approve")).status_code == 202
        done1 = await _settled(api, run1, "DONE")
        bucket = done1["artifacts"]["apply_result"]["outputs"]["objects_bucket"]
        assert "owner" not in _tags(moto_endpoint, bucket)
        again = await api.post("/v1/goals", json=example_goal(goal_id=goal_id))
        assert again.status_code == 200
        assert again.json()["run_id"] == run1

        # -- revision 2: the goal again with a tag added, planned against revision 1 ----------
        second = await api.post("/v1/goals", json=revised)
        assert second.status_code == 202, second.text
        assert second.json()["revision"] == 2
        assert second.json()["created"] is True
        run2 = second.json()["run_id"]
        gate2 = await _settled(api, run2, "WAIT_FOR_APPROVE")
        assert gate2["base"] == {"run_id": run1, "revision": 1}
        request = gate2["artifacts"]["approval_request"]
        assert request["revision"] == 2
        assert (request["create"], request["delete"], request["replace"]) == (0, 0, 0)
        assert request["update"] >= 1
        bucket_change = next(c for c in request["changes"] if c["type"] == "aws_s3_bucket")
        assert bucket_change["actions"] == ["update"]
        assert any("owner" in a for a in bucket_change["attributes"]), bucket_change
        assert request["acknowledgement_required"] is False
        page = await api.get(f"/runs/{run2}")
        assert "Changes to the deployed stack" in page.text
        assert (await api.post(f"/v1/runs/{run2}/approve")).status_code == 202
        done2 = await _settled(api, run2, "DONE")
        assert done2["summary"]["outcome"] == "applied"
        assert _tags(moto_endpoint, bucket)["owner"] == "payments"
        stack_id = StackKey(goal_id, "eu-west-1").id
        stack = (await api.get(f"/v1/stacks/{stack_id}")).json()
        assert stack["status"] == "deployed"
        assert [r["revision"] for r in stack["revisions"]] == [2, 1]
        # today's Sentinel on the applied configuration: what it finds that the applied run's
        # validation did not is announced (once)
        checked = await api.post(f"/v1/stacks/{stack_id}/revalidate")
        assert checked.status_code == 200, checked.text
        revalidated = checked.json()
        assert revalidated["run_id"] == run2
        assert revalidated["report"]["verdict"] in {"PASS", "FAIL"}
        announced = "stack.findings" in [e.kind for e in await services.gate.entries(run2)]
        assert announced == bool(revalidated["new_findings"]) == revalidated["announced"]

        # -- revision 3 fails to apply: rolled back to revision 2 -----------------------------
        # Behind the crew's back, a queue with the name revision 3 wants (other attributes):
        # SQS refuses to create ours.
        prefix = StackKey(goal_id, "eu-west-1").name_prefix
        sqs = _sqs(moto_endpoint)
        sqs.create_queue(QueueName=f"{prefix}-queue", Attributes={"VisibilityTimeout": "7"})
        third = await api.post(
            f"/v1/stacks/{stack_id}/revisions",
            json=example_goal(
                workload={"data_stores": QUEUE},
                constraints={"required_tags": {**tags, "owner": "payments"}},
            ),
        )
        assert third.status_code == 202, third.text
        run3 = third.json()["run_id"]
        assert third.json()["revision"] == 3
        gate3 = await _settled(api, run3, "WAIT_FOR_APPROVE")
        assert gate3["artifacts"]["approval_request"]["create"] >= 2
        assert gate3["artifacts"]["approval_request"]["delete"] == 0
        assert gate3["base"] == {"run_id": run2, "revision": 2}
        assert (await api.post(f"/v1/runs/{run3}/approve")).status_code == 202
        done3 = await _settled(api, run3, "DONE")
        assert done3["artifacts"]["apply_result"]["ok"] is False
        undone = done3["artifacts"]["rollback_result"]
        assert undone["ok"] is True, undone
        assert undone["restored"] == "revision 2"
        assert done3["summary"]["outcome"] == "rolled back"
        # revision 2 stands: its bucket and tag; revision 3's dead-letter queue is gone, the
        # queue made behind the crew's back is left alone
        assert _tags(moto_endpoint, bucket)["owner"] == "payments"
        queues = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        assert [q.rsplit("/", 1)[1] for q in queues] == [f"{prefix}-queue"]
        stack = (await api.get(f"/v1/stacks/{stack_id}")).json()
        assert stack["status"] == "deployed", stack
        assert [(r["revision"], r["outcome"]) for r in stack["revisions"]] == [
            (3, "rolled back"),
            (2, "applied"),
            (1, "applied"),
        ]
        # only the latest applied revision can be rolled back
        old = await api.post(f"/v1/runs/{run1}/rollback")
        assert old.status_code == 409, old.text
        assert "revision 2" in old.json()["message"]

        # -- TTL (revision 2 set ttl_hours 1): a warning, then a decommission at the gate ----
        assert await expire_due_stacks(services) == []
        assert "stack.expiring" in [e.kind for e in await services.gate.entries(run2)]
        async with services.pool.connection() as conn:  # revision 2 applied two hours ago
            await conn.execute(
                "UPDATE crew_runs SET updated_at = now() - interval '2 hours' WHERE run_id = %s",
                (run2,),
            )
        expired = await expire_due_stacks(services)
        assert [r.purpose.value for r in expired] == ["decommission"]
        run4 = expired[0].run_id
        assert "stack.expired" in [e.kind for e in await services.gate.entries(run4)]
        assert await expire_due_stacks(services) == []  # asked once
        again = await api.post(f"/v1/stacks/{stack_id}/decommission")
        assert again.status_code == 409, again.text

        # -- the decommission: a destroy through the gate, the bucket's deletion acknowledged -
        gate4 = await _settled(api, run4, "WAIT_FOR_APPROVE")
        request = gate4["artifacts"]["approval_request"]
        assert gate4["purpose"] == "decommission"
        assert request["create"] == 0
        assert request["update"] == 0
        assert request["delete"] >= 5
        assert request["acknowledgement_required"] is True
        flagged = {(c["type"], c["action"]) for c in request["stateful_changes"]}
        assert ("aws_s3_bucket", "delete") in flagged
        page = await api.get(f"/runs/{run4}")
        assert 'name="acknowledge_stateful"' in page.text
        refused = await api.post(f"/v1/runs/{run4}/approve")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "acknowledgement_required"
        assert "deletes bucket aws_s3_bucket.objects" in refused.json()["message"]
        approved = await api.post(f"/v1/runs/{run4}/approve", json={"acknowledge_stateful": True})
        assert approved.status_code == 202, approved.text
        done4 = await _settled(api, run4, "DONE")
        assert done4["decision"]["acknowledge_stateful"] is True
        assert done4["summary"]["outcome"] == "destroyed"
        assert bucket not in {b["Name"] for b in s3_client(moto_endpoint).list_buckets()["Buckets"]}
        stack = (await api.get(f"/v1/stacks/{stack_id}")).json()
        assert stack["status"] == "destroyed"
        assert stack["resources"] == []
        late = await api.post(f"/v1/stacks/{stack_id}/drift")
        assert late.status_code == 409
        assert "destroyed" in late.json()["message"]
        refusals = [e for e in await services.gate.entries(run4) if e.kind == "approval.refused"]
        assert len(refusals) == 1
        assert "data may be lost" in refusals[0].detail


def _sqs(moto_endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
