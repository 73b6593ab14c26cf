"""The gate's checks against a real Postgres, without terraform or moto (seconds, not minutes):
the rollback SLA job counting each breach once, an approval refused because a newer revision
exists, and the Slack ack budget spent by the request checks themselves.

History the checks read (audit rows of a slow rollback) is written as the nodes write it;
everything that reads, decides, logs and counts is the product's own code.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.routes import slack as slack_routes
from crew.access import Role
from crew.container import Services, open_services
from crew.gate.actions import Identity, act
from crew.gate.timers import check_rollback_slas
from crew.service import submit_goal
from crew.settings import Settings
from crew.worker import Worker
from memory.runs import RunRecord
from schemas.apply import ApplyResult, Operation
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.errors import StalePlanError
from schemas.states import ConductorState
from tests.integration._support import wait_until
from tests.slack_support import SIGNING_SECRET, FakeSlack, command_body, sign
from tests.unit.support import make_goal
from tests.unit.test_graph_flow import FakeTerraform

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
APPROVER_ID = "U0APPROVER"
ALICE = Identity(actor="alice", channel=Channel.REST, actor_id="alice", role=Role.APPROVER)


@pytest.fixture
async def services(
    database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Services]:
    settings = make_settings(
        database_url=database_url,
        approvers=[f"slack:{APPROVER_ID}", "rest:alice"],
        slack_signing_secret=SIGNING_SECRET,
        extra_scanners=False,
        conftest_bin=None,
        infracost_bin=None,
    )
    async with open_services(settings, role="test") as opened:
        yield opened


def at(services: Services, when: datetime) -> Services:
    """`services` whose clock reads `when` (the gate jobs take the time from it)."""
    return replace(services, context=replace(services.context, clock=lambda: when))


async def rows(services: Services, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with services.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(sql, params)  # type: ignore[arg-type]
        return await cur.fetchall()


def breaches(services: Services) -> dict[str, float]:
    """crew_rollback_sla_breaches_total by trigger, as /metrics shows it."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(services.metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "crew_rollback_sla_breaches_total":
                found[sample.labels["trigger"]] = sample.value
    return found


# -- the rollback SLA ------------------------------------------------------------------------


async def new_run(services: Services, name: str) -> str:
    record, _ = await services.runs.create(
        make_goal(goal_id=f"sla-{name}"), run_id=f"run-{name}", at=T0 - timedelta(hours=1)
    )
    return record.run_id


async def audit(
    services: Services,
    run_id: str,
    seq: int,
    when: datetime,
    event: str,
    moves: tuple[ConductorState, ConductorState],
    artifact: ApplyResult | ApprovalDecision,
) -> None:
    """One audit row as the checkpointer writes it, and the run's state after it."""
    async with services.pool.connection() as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO crew_audit (run_id, seq, at, actor, event, from_state, to_state,
                                    artifact_type, artifact)
            VALUES (%s, %s, %s, 'forge', %s, %s, %s, %s, %s)
            """,
            (
                run_id,
                seq,
                when,
                event,
                moves[0].value,
                moves[1].value,
                artifact.artifact_name,
                Jsonb(artifact.model_dump(mode="json")),
            ),
        )
        await conn.execute(
            "UPDATE crew_runs SET state = %s, last_seq = %s WHERE run_id = %s",
            (moves[1].value, seq, run_id),
        )


def rolled_back(
    run_id: str, began: timedelta, took: timedelta, failure_at: datetime | None
) -> ApplyResult:
    started = T0 + began
    return ApplyResult(
        run_id=run_id,
        plan_id=f"{run_id}-r1",
        operation=Operation.ROLLBACK,
        ok=True,
        started_at=started,
        finished_at=started + took,
        duration_s=took.total_seconds(),
        failure_at=failure_at,
        rollback_started_at=started,
        rollback_finished_at=started + took,
    )


def failed_apply(run_id: str) -> ApplyResult:
    return ApplyResult(
        run_id=run_id,
        plan_id=f"{run_id}-r1",
        operation=Operation.APPLY,
        ok=False,
        started_at=T0 - timedelta(minutes=1),
        finished_at=T0,
        duration_s=60,
        error="Error: creating S3 Bucket: timeout",
        failure_at=T0,
    )


async def test_a_slow_rollback_is_alerted_published_and_counted_once(services: Services) -> None:
    slow, quick = await new_run(services, "slow"), await new_run(services, "quick")
    for run_id, began, took in (
        (slow, timedelta(minutes=6), timedelta(minutes=14)),  # began 6 min after the request
        (quick, timedelta(seconds=5), timedelta(minutes=2)),
    ):
        asked = ApprovalDecision(
            run_id=run_id, decision=Decision.ROLLBACK, actor="alice", channel=Channel.REST, at=T0
        )
        state = (ConductorState.DONE, ConductorState.ROLLBACK)
        await audit(services, run_id, 1, T0, "rollback.started", state, asked)
        done = rolled_back(run_id, began, took, failure_at=None)
        back = (ConductorState.ROLLBACK, ConductorState.DONE)
        await audit(services, run_id, 2, done.finished_at, "rollback.done", back, done)
    later = at(services, T0 + timedelta(minutes=21))

    measured, overdue = await check_rollback_slas(later)

    assert sorted((m.run_id, m.begin_s, m.finish_s, m.met) for m in measured) == [
        (quick, 5.0, 125.0, True),
        (slow, 360.0, 1200.0, False),
    ]
    assert overdue == []
    logged = await rows(services, "SELECT * FROM crew_gate_log ORDER BY id")
    assert [(r["kind"], r["run_id"], r["actor"], r["action"]) for r in logged] == [
        ("rollback.sla_breached", slow, "conductor", "rollback")
    ]
    assert logged[0]["detail"].startswith(
        "rollback SLA missed: began 360s and finished 1200s after its trigger"
    )
    assert logged[0]["at"] == T0 + timedelta(minutes=21)
    published = await rows(
        services, "SELECT * FROM crew_events WHERE type = 'rollback.sla_breached'"
    )
    assert [(e["event_id"], e["run_id"]) for e in published] == [
        (f"gate.rollback.breach:{slow}:1", slow)
    ]
    assert published[0]["body"]["payload"]["operation"] == "rollback"
    assert published[0]["body"] == logged[0]["event"]
    assert breaches(services) == {"requested": 1, "apply_failure": 0}

    # the next pass (or another replica's) finds nothing new and counts nothing again
    assert await check_rollback_slas(at(services, T0 + timedelta(minutes=22))) == ([], [])
    assert len(await rows(services, "SELECT * FROM crew_gate_log")) == 1
    assert breaches(services) == {"requested": 1, "apply_failure": 0}
    sla = await rows(services, "SELECT run_id, met FROM crew_rollback_sla ORDER BY run_id")
    assert [(r["run_id"], r["met"]) for r in sla] == [(quick, True), (slow, False)]


async def test_an_overdue_rollback_is_one_breach_also_when_it_finishes_late(
    services: Services,
) -> None:
    run_id = await new_run(services, "stuck")
    moves = (ConductorState.APPLYING, ConductorState.ROLLBACK)
    await audit(services, run_id, 1, T0, "rollback.started", moves, failed_apply(run_id))

    assert await check_rollback_slas(at(services, T0 + timedelta(minutes=14))) == ([], [])
    assert breaches(services) == {"requested": 0, "apply_failure": 0}
    _, overdue = await check_rollback_slas(at(services, T0 + timedelta(minutes=16)))
    assert overdue == [run_id]
    assert breaches(services) == {"requested": 0, "apply_failure": 1}
    _, again = await check_rollback_slas(at(services, T0 + timedelta(minutes=17)))
    assert again == []
    assert breaches(services) == {"requested": 0, "apply_failure": 1}

    # It finishes, late: measured and recorded, but the breach was already alerted and counted.
    done = rolled_back(run_id, timedelta(minutes=1), timedelta(minutes=24), failure_at=T0)
    back = (ConductorState.ROLLBACK, ConductorState.DONE)
    await audit(services, run_id, 2, done.finished_at, "rollback.done", back, done)
    measured, overdue = await check_rollback_slas(at(services, T0 + timedelta(minutes=26)))
    assert [(m.run_id, m.finish_s, m.met) for m in measured] == [(run_id, 1500.0, False)]
    assert overdue == []
    logged = await rows(services, "SELECT kind, detail, dedup FROM crew_gate_log")
    assert [(r["kind"], r["dedup"]) for r in logged] == [
        ("rollback.sla_breached", f"rollback.breach:{run_id}:1")
    ]
    assert logged[0]["detail"].startswith("rollback still running 960s after its trigger")
    published = await rows(
        services, "SELECT event_id FROM crew_events WHERE type = 'rollback.sla_breached'"
    )
    assert [e["event_id"] for e in published] == [f"gate.rollback.breach:{run_id}:1"]
    assert breaches(services) == {"requested": 0, "apply_failure": 1}


# -- a newer revision makes the validated plan stale -----------------------------------------


async def at_the_gate(services: Services, terraform: FakeTerraform) -> tuple[Worker, RunRecord]:
    """Submit the example goal and drive it to WAIT_FOR_APPROVE as a worker does (terraform's
    answers recorded: tests/fixtures/terraform)."""
    worker = Worker(replace(services, context=replace(services.context, terraform=terraform)))  # type: ignore[arg-type]
    record, _ = await submit_goal(services, make_goal(), actor="tester")
    assert await drive(worker, record.run_id) is ConductorState.WAIT_FOR_APPROVE
    return worker, await services.runs.get(record.run_id)


async def drive(worker: Worker, run_id: str) -> ConductorState:
    settings = worker.services.settings
    claimed = await worker.services.runs.claim(run_id, worker.worker_id, settings.lease_ttl_s)
    assert claimed is not None
    return await worker.drive(claimed)


async def test_approving_after_a_newer_revision_exists_is_refused_and_resumes_nothing(
    services: Services,
) -> None:
    terraform = FakeTerraform()
    worker, waiting = await at_the_gate(services, terraform)
    run_id = waiting.run_id
    r1 = services.settings.workspaces_dir / run_id / "r1"
    assert (r1 / "main.tf").is_file()
    newer = r1.parent / "r2"
    newer.mkdir()

    with pytest.raises(StalePlanError) as refused:
        await act(services, run_id, Decision.APPROVE, ALICE)

    why = f"revision 2 of run {run_id} exists; revision 1 is stale"
    assert str(refused.value) == f"refused: {why}"
    after = await services.runs.get(run_id)
    assert (after.state, after.decision, after.last_seq) == (
        ConductorState.WAIT_FOR_APPROVE,
        None,
        waiting.last_seq,
    )
    (entry,) = await services.gate.entries(run_id)
    assert (entry.kind, entry.channel, entry.actor, entry.action, entry.detail) == (
        "approval.refused",
        Channel.REST,
        "alice",
        "approve",
        why,
    )
    published = await rows(
        services,
        "SELECT body FROM crew_events WHERE run_id = %s AND type = %s",
        run_id,
        "approval.refused",
    )
    assert [e["body"]["payload"]["reason"] for e in published] == [why]
    # nothing to resume: no worker may take the run, terraform was not asked to apply
    assert await services.runs.claim_next("another-worker", 30) is None
    assert await services.runs.claim(run_id, worker.worker_id, 30) is None
    assert "apply" not in terraform.calls

    # Without the newer revision the same approval goes through and applies, once.
    newer.rmdir()
    decided = await act(services, run_id, Decision.APPROVE, ALICE)
    assert decided.decision is not None
    assert decided.decision.actor == "alice"
    assert await drive(worker, run_id) is ConductorState.DONE
    assert terraform.calls.count("apply") == 1


# -- Slack's 3 seconds include the request checks --------------------------------------------


async def waiting_on_a_lock(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_a_slow_replay_check_spends_the_ack_budget(
    services: Services, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay store's insert waits on another transaction holding the same signature (as
    a concurrent delivery would) for longer than the whole budget: the command is acknowledged
    at once, and its outcome follows through response_url."""
    monkeypatch.setattr(slack_routes, "ACK_BUDGET_S", 0.3)
    app = FastAPI()
    app.include_router(slack_routes.router)
    app.state.services = services
    app.state.slack = slack_routes.SlackRuntime()
    fake = FakeSlack().start()
    body = command_body(
        "/approve", "no-such-run", user_id=APPROVER_ID, response_url=fake.hook("later")
    )
    headers = sign(body)
    key = hashlib.sha256(headers["X-Slack-Signature"].encode()).hexdigest()
    try:
        async with (
            await psycopg.AsyncConnection.connect(database_url) as holder,
            await psycopg.AsyncConnection.connect(database_url, autocommit=True) as watcher,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            await holder.execute(
                "INSERT INTO crew_slack_requests (signature, expires_at) VALUES (%s, %s)",
                (key, T0),
            )
            sent = asyncio.create_task(http.post("/slack/commands", content=body, headers=headers))
            await wait_until(lambda: waiting_on_a_lock(watcher), bool, what="the replay check")
            await asyncio.sleep(0.4)  # longer than the whole budget
            await holder.rollback()  # the other delivery gave up: this one is the first
            response = await sent
        assert response.status_code == 200, response.text
        assert response.json() == {
            "response_type": "ephemeral",
            "text": "Working on `approve no-such-run`; the outcome follows.",
        }

        async def answers() -> list[str]:
            return [str(c.body.get("text")) for c in fake.calls_to("/hooks/later")]

        (later,) = await wait_until(answers, bool, what="the answer on response_url")
        assert "no run with id 'no-such-run'" in later
    finally:
        fake.stop()
