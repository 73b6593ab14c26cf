"""Atlas against the real Postgres: past PlanSpecs recalled from the audit log (memory/plans.py)
reach the LLM planner and its provenance; and an LLM outage in a worker-driven run is
recorded and retried, not turned into a blocked design."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from crew.container import open_services
from crew.service import submit_goal
from crew.settings import Settings
from crew.worker import Worker
from memory.db import Pool, open_pool
from memory.migrate import migrate
from memory.plans import PostgresPlanMemory
from memory.runs import RunStore
from nodes.atlas import design_goal, plan_goal
from nodes.planners.llm import LlmPlanner
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec
from schemas.states import ConductorState
from tests.fake_openai import HttpError, ToolCall, fake_openai
from tests.integration._support import wait_until
from tests.integration.test_llm_planner import good_design
from tests.unit.support import make_goal
from tools.llm import LlmClient

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(database_url)
    try:
        await migrate(pool)
        yield pool
    finally:
        await pool.close()


async def past_run(
    pool: Pool, run_id: str, goal: GoalStatement, state: ConductorState, at: datetime
) -> PlanSpec:
    """A finished run as the graph leaves it: the run row and the audit row with its plan."""
    plan = plan_goal(goal, goal_id=run_id, plan_id=f"{run_id}-r1")
    assert isinstance(plan, PlanSpec)
    await RunStore(pool).create(goal, run_id=run_id, at=at)
    async with pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO crew_audit (run_id, seq, at, actor, event, from_state, to_state,
                                    artifact_type, artifact)
            VALUES (%s, 1, %s, 'atlas', 'plan.pending', 'PENDING', 'IN_PROGRESS', 'PlanSpec', %s)
            """,
            (run_id, at, Jsonb(plan.model_dump(mode="json"))),
        )
        await conn.execute(
            "UPDATE crew_runs SET state = %s WHERE run_id = %s", (state.value, run_id)
        )
    return plan


async def test_recall_filters_by_cloud_region_and_workload_newest_first(pool: Pool) -> None:
    api = make_goal("goal-web-api.json", goal_id=None)
    await past_run(pool, "run-old", api, ConductorState.DONE, T0)
    newer = await past_run(pool, "run-new", api, ConductorState.BLOCKED, T0 + timedelta(hours=1))
    await past_run(
        pool,
        "run-frankfurt",
        api.model_copy(update={"region": "eu-central-1"}),
        ConductorState.DONE,
        T0,
    )
    await past_run(pool, "run-bucket", make_goal(), ConductorState.DONE, T0)  # no workload kind
    memory = PostgresPlanMemory(pool)
    found = await memory.recall(api)
    assert [(p.run_id, p.outcome) for p in found] == [
        ("run-new", ConductorState.BLOCKED),
        ("run-old", ConductorState.DONE),
    ]
    assert found[0].plan == newer
    assert found[0].ref == "run-new/run-new-r1"
    assert [p.run_id for p in await memory.recall(api, exclude_run="run-new", limit=1)] == [
        "run-old"
    ]
    assert [p.run_id for p in await memory.recall(make_goal())] == ["run-bucket"]


async def test_an_unreadable_past_plan_is_skipped(pool: Pool) -> None:
    api = make_goal("goal-web-api.json", goal_id=None)
    await past_run(pool, "run-good", api, ConductorState.DONE, T0)
    await RunStore(pool).create(api.model_copy(update={"title": "other"}), run_id="run-odd", at=T0)
    async with pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO crew_audit (run_id, seq, at, actor, event, to_state, artifact_type,
                                    artifact)
            VALUES ('run-odd', 1, %s, 'atlas', 'plan.pending', 'IN_PROGRESS', 'PlanSpec', %s)
            """,
            (T0 + timedelta(hours=2), Jsonb({"cloud": "aws", "region": "eu-west-1", "v": 0})),
        )
    found = await PostgresPlanMemory(pool).recall(api)
    assert [p.run_id for p in found] == ["run-good"]


async def test_the_llm_planner_is_given_past_plans_and_records_their_ids(pool: Pool) -> None:
    goal = make_goal("goal-web-api.json")
    await past_run(
        pool, "run-earlier", make_goal("goal-web-api.json", goal_id=None), ConductorState.DONE, T0
    )
    with fake_openai(ToolCall(good_design(goal))) as llm:
        client = LlmClient(
            model="fake-gpt",
            base_url=llm.base_url,
            api_key=SecretStr("k"),
            timeout_s=10,
            max_retries=0,
        )
        plan = await design_goal(
            goal,
            planner=LlmPlanner(client),
            goal_id="orders-api-2026-11",
            plan_id="run-now-r1",
            memory=PostgresPlanMemory(pool),
            run_id="run-now",
        )
    assert isinstance(plan, PlanSpec)
    assert plan.provenance.retrieved == ["run-earlier/run-earlier-r1"]
    prompt = llm.user_text(0)
    past = prompt.split("<past_plans>", 1)[1].split("</past_plans>", 1)[0]
    assert '"id": "run-earlier/run-earlier-r1"' in past
    assert '"outcome": "DONE"' in past


async def test_a_worker_retries_a_run_whose_llm_is_down(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    goal = make_goal("goal-web-api.json", goal_id="llm-outage-1")
    design = good_design(goal)
    for c in design["components"]:  # a design that validation refuses, so the run ends at design
        if c["type"] == "rds_postgres":
            c["params"]["multi_az"] = False
    with fake_openai(
        HttpError(500, "model overloaded"), *(ToolCall(design) for _ in range(3))
    ) as llm:
        settings = make_settings(
            database_url=database_url,
            llm_model="fake-gpt",
            llm_base_url=llm.base_url,
            llm_max_retries=0,
            openai_api_key=SecretStr("k"),
        )
        async with open_services(settings, role="test") as svc:
            assert svc.context.planner.name == "llm"
            run, _ = await submit_goal(svc, goal, actor="tester")
            worker = Worker(svc)
            claimed = await svc.runs.claim(run.run_id, svc.worker_id, 30)
            assert claimed is not None
            await worker.drive_and_release(claimed)
            after = await svc.runs.get(run.run_id)
            assert after.state is ConductorState.PENDING  # not BLOCKED: nothing was decided
            assert after.failures == 1
            assert after.last_error is not None
            assert "LlmError" in after.last_error
            assert "HTTP 500" in after.last_error
            # the endpoint is back: after its back-off the run is driven again and designs
            # (here the design is refused three times, so it ends BLOCKED at design)
            claimed = await wait_until(
                lambda: svc.runs.claim(run.run_id, svc.worker_id, 30),
                lambda record: record is not None,
                what="the back-off to pass",
            )
            assert claimed is not None
            await worker.drive_and_release(claimed)
            final = await svc.runs.get(run.run_id)
    assert final.state is ConductorState.BLOCKED
    assert final.failures == 0
    assert len(llm.requests) == 4
    audit_design = [r for r in await _audit(database_url, run.run_id) if r[0] == "design.blocked"]
    assert audit_design


async def _audit(database_url: str, run_id: str) -> list[tuple[str, str | None]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT event, artifact_type FROM crew_audit WHERE run_id = %s ORDER BY seq",
                (run_id,),
            )
        ).fetchall()
    return [(r[0], r[1]) for r in rows]
