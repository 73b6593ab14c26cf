"""Vector memory against real PostgreSQL: pgvector on the embedded PostgreSQL 18 (one server
for this module, a database per test), the fallback on the machine's PostgreSQL without it.

Covered: finished runs indexed by the worker's end-of-run hook and by the catch-up pass, then
recalled by meaning for a new goal whose LLM design cites them (fake OpenAI server); metadata
filters (cloud, region, workload kind, type, the run itself); the HNSW index in EXPLAIN;
runbooks chunked, re-indexed on change and removed; two embedders side by side without
mixing; `crew memory`; and a Postgres without pgvector starting with audit memory.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from pydantic import SecretStr
from typer.testing import CliRunner

from cli.main import app
from crew.container import open_services
from crew.service import submit_goal
from crew.settings import Settings
from crew.worker import Worker
from memory.db import Pool, open_pool
from memory.embedded import EmbeddedPostgres
from memory.migrate import migrate
from memory.plans import PostgresPlanMemory
from memory.vector_memory import VectorPlanMemory, goal_text
from memory.vectors import EmbeddingSpace, MemoryFilter, VectorStore, enable_vectors
from nodes.atlas import design_goal
from schemas.errors import ConfigurationError
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec
from schemas.states import ConductorState
from tests.fake_openai import ToolCall, fake_openai
from tests.integration._support import embedded_data_dir
from tests.integration.test_llm_planner import good_design, with_db
from tests.integration.test_plan_memory import past_run
from tests.unit.support import make_goal
from tools.embeddings import MiniLmEmbedder, OpenAiEmbedder

pytestmark = pytest.mark.integration

RUNBOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "memory" / "runbooks"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pgvector_server() -> Iterator[str]:
    """The embedded PostgreSQL 18 with pgvector, once for the module (start-up takes ~1 s)."""
    with embedded_data_dir() as data_dir:
        server = EmbeddedPostgres(data_dir / "pg18")
        uri = server.start()
        try:
            yield uri
        finally:
            server.stop()


@pytest.fixture
def vector_url(pgvector_server: str) -> Iterator[str]:
    """A fresh database on that server, dropped afterwards."""
    name = f"crew_vec_{secrets.token_hex(4)}"
    with psycopg.connect(pgvector_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(pgvector_server, dbname=name)
    finally:
        with psycopg.connect(pgvector_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def minilm() -> MiniLmEmbedder:
    return MiniLmEmbedder()


@pytest.fixture
async def pool(vector_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(vector_url)
    try:
        await migrate(pool)
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def memory(pool: Pool, minilm: MiniLmEmbedder) -> VectorPlanMemory:
    support = await enable_vectors(pool)
    assert support.enabled, support.reason
    assert support.iterative_scan
    return VectorPlanMemory(VectorStore(pool, support), minilm)


def goal(title: str, description: str, **changes: Any) -> GoalStatement:
    return make_goal(
        "goal-web-api.json", goal_id=None, title=title, description=description
    ).model_copy(update=changes)


async def finished_run(
    pool: Pool,
    run_id: str,
    g: GoalStatement,
    state: ConductorState,
    *,
    event: str,
    actor: str = "forge",
    error: str | None = None,
    at: datetime = T0,
) -> PlanSpec:
    """A run as the graph leaves it: its PlanSpec (audit seq 1), the transition into its
    final state (seq 2, the run's last_seq) and the run's error in its summary."""
    plan = await past_run(pool, run_id, g, state, at)
    async with pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO crew_audit (run_id, seq, at, actor, event, from_state, to_state)
            VALUES (%s, 2, %s, %s, %s, 'IN_PROGRESS', %s)
            """,
            (run_id, at + timedelta(minutes=5), actor, event, state.value),
        )
        await conn.execute(
            "UPDATE crew_runs SET last_seq = 2, summary = %s WHERE run_id = %s",
            (Jsonb({"error": error} if error else {}), run_id),
        )
    return plan


async def history(pool: Pool) -> None:
    """Four finished runs: two similar APIs in eu-west-1 (one applied, one blocked), the same
    API in Frankfurt, and a static site in eu-west-1."""
    await finished_run(
        pool,
        "run-orders",
        goal("Orders API", "A public REST API for orders with a multi-AZ Postgres database."),
        ConductorState.DONE,
        event="apply.done",
    )
    await finished_run(
        pool,
        "run-billing",
        goal("Billing API", "An HTTP API that stores invoices in PostgreSQL, highly available."),
        ConductorState.BLOCKED,
        event="validate.result",
        actor="sentinel",
        error="validation failed: CKV_AWS_157 RDS instance is not multi-AZ",
    )
    await finished_run(
        pool,
        "run-frankfurt",
        goal(
            "Orders API Frankfurt",
            "A public REST API for orders with a multi-AZ Postgres database.",
            region="eu-central-1",
        ),
        ConductorState.DONE,
        event="apply.done",
    )
    await finished_run(
        pool,
        "run-site",
        make_goal(
            "goal-object-storage.json",
            goal_id=None,
            title="Marketing site",
            description="Static pages behind a CDN.",
            workload={"kind": "static_site"},
        ),
        ConductorState.DONE,
        event="apply.done",
    )


NEW_GOAL = goal("Payments API", "A public REST API for payments backed by a Postgres database.")


async def test_recall_by_meaning_honours_metadata_filters(
    pool: Pool, memory: VectorPlanMemory
) -> None:
    await history(pool)
    assert await memory.index_finished_runs() == 4
    assert await memory.index_finished_runs() == 0  # idempotent: nothing new

    found = await memory.recall(NEW_GOAL)
    assert [p.run_id for p in found] == ["run-orders", "run-billing"]  # not Frankfurt, not the site
    orders, billing = found
    assert (orders.outcome, orders.result, orders.reason) == (ConductorState.DONE, "applied", None)
    assert billing.result == "blocked by Sentinel"
    assert billing.reason == "validation failed: CKV_AWS_157 RDS instance is not multi-AZ"
    assert orders.ref == "run-orders/run-orders-r1"
    assert orders.plan.plan_id == "run-orders-r1"
    assert [p.run_id for p in await memory.recall(NEW_GOAL, exclude_run="run-orders")] == [
        "run-billing"
    ]
    frankfurt = await memory.recall(NEW_GOAL.model_copy(update={"region": "eu-central-1"}))
    assert [p.run_id for p in frankfurt] == ["run-frankfurt"]

    # the same filters through search: every hit matches, nearest first
    where = MemoryFilter(item_types=("plan",), cloud="aws", region="eu-west-1")
    hits = await memory.search("static website", where, limit=10)
    assert hits[0].run_id == "run-site"
    assert {h.region for h in hits} == {"eu-west-1"}
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    kind = await memory.search("website", MemoryFilter(workload_kind="static_site"), limit=10)
    assert [h.run_id for h in kind] == ["run-site"]

    # a later event (a human rolls the applied run back) replaces the item
    async with pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO crew_audit (run_id, seq, at, actor, event, from_state, to_state)
            VALUES ('run-orders', 3, %s, 'forge', 'rollback.done', 'ROLLBACK', 'DONE')
            """,
            (T0 + timedelta(days=1),),
        )
        await conn.execute("UPDATE crew_runs SET last_seq = 3 WHERE run_id = 'run-orders'")
    assert await memory.index_finished_runs() == 1
    assert (await memory.recall(NEW_GOAL))[0].result == "rolled back"


async def test_the_hnsw_index_serves_the_recall_query(
    pool: Pool, memory: VectorPlanMemory, minilm: MiniLmEmbedder
) -> None:
    """With a few thousand items (and statistics that say so) Postgres takes the space's
    HNSW index for exactly the query Atlas's recall runs, filters included. No planner
    setting is forced: on a handful of analysed rows, or with a filter that keeps only a
    few, a sequential scan would rightly win."""
    space = EmbeddingSpace.of(minilm.name, 384)
    async with pool.connection() as conn:
        # 3000 unrelated unit vectors, half in another region, a third of another kind;
        # written before the space's index exists, which then is built in one go (faster)
        await conn.execute(
            "INSERT INTO crew_memory_spaces (embedder, dims, index_name) VALUES (%s, %s, %s)",
            (space.key, space.dims, space.index_name),
        )
        await conn.execute(
            """
            INSERT INTO crew_memory_items (embedder, item_key, item_type, ref, content,
                                           content_hash, cloud, region, workload_kind, embedding)
            SELECT %s, 'fill-' || g, 'plan', 'fill-' || g, 'filler', '-', 'aws',
                   CASE WHEN g %% 2 = 0 THEN 'eu-west-1' ELSE 'us-east-1' END,
                   CASE WHEN g %% 3 = 0 THEN 'batch' END,
                   l2_normalize(v.vec)
            FROM generate_series(1, 3000) g
            CROSS JOIN LATERAL (SELECT array_agg(random() - 0.5)::vector AS vec
                                FROM generate_series(1, 384) WHERE g > 0) v
            """,
            (space.key,),
        )
    await history(pool)
    await memory.index_finished_runs()
    async with pool.connection() as conn:
        await conn.execute("ANALYZE crew_memory_items")
    where = MemoryFilter(
        item_types=("plan",),
        cloud="aws",
        region="eu-west-1",
        workload_kind="api",
        exclude_run="run-new",
    )
    plan = await memory.explain("payments api", where, limit=3)
    assert f"Index Scan using {space.index_name}" in plan, plan
    assert "Order By: ((embedding)::vector(384) <=>" in plan
    # the iterative scan walks past the fillers the filters drop; the two similar plans of
    # eu-west-1 still come first, in order (the fillers that match have no plan to recall)
    assert [p.run_id for p in await memory.recall(NEW_GOAL)] == ["run-orders", "run-billing"]
    hits = await memory.search(goal_text(NEW_GOAL), where, limit=10)
    assert len(hits) == 10
    assert all(h.region == "eu-west-1" and h.workload_kind in (None, "api") for h in hits)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


async def test_runbooks_are_indexed_reindexed_on_change_and_removed(
    pool: Pool, memory: VectorPlanMemory, tmp_path: Path, minilm: MiniLmEmbedder
) -> None:
    folder = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, folder)
    first = await memory.index_runbooks(folder)
    assert (first.added, first.updated, first.removed, first.chunks) == (3, 0, 0, 5)
    again = await memory.index_runbooks(folder)
    assert (again.unchanged, again.chunks) == (3, 0)  # nothing re-embedded

    snippets = await memory.recall_runbooks(
        NEW_GOAL.model_copy(
            update={"description": "the primary database is down, promote the standby"}
        )
    )
    assert snippets[0].ref == "runbook:postgres.md#failover"
    assert snippets[0].heading == "Postgres > Failover"
    # front matter scopes: the Postgres runbook is for workload kind api only
    site_goal = NEW_GOAL.model_copy(update={"workload": None})
    assert "postgres.md" in {s.path for s in await memory.recall_runbooks(site_goal, limit=10)}
    batch = make_goal("goal-object-storage.json", workload={"kind": "batch"})
    assert "postgres.md" not in {s.path for s in await memory.recall_runbooks(batch, limit=10)}

    (folder / "static-sites.md").write_text("# Static sites\n\n## Deploy\n\nSync the bucket.\n")
    (folder / "networking" / "nat.md").unlink()
    changed = await memory.index_runbooks(folder)
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (0, 1, 1, 1)
    assert changed.chunks == 1
    refs = {
        h.ref
        for h in await memory.search("anything", MemoryFilter(item_types=("runbook",)), limit=50)
    }
    assert refs == {
        "runbook:postgres.md#postgres",
        "runbook:postgres.md#failover",
        "runbook:postgres.md#point-in-time-restore",
        "runbook:static-sites.md#deploy",
    }


async def test_two_embedders_keep_their_vectors_apart(pool: Pool, memory: VectorPlanMemory) -> None:
    await memory.index_runbooks(RUNBOOKS)
    with fake_openai() as server:
        other = VectorPlanMemory(
            memory.store,
            OpenAiEmbedder(
                model="fake-embed",
                base_url=server.base_url,
                api_key=None,
                timeout_s=5,
                max_retries=0,
            ),
        )
        report = await other.index_runbooks(RUNBOOKS)  # the new space starts empty
        hits = await other.search("NAT gateway costs", MemoryFilter(), limit=10)
    assert report.added == 3
    assert (await other.space()).key == "openai/fake-embed@16"
    assert len(hits) == 5  # only its own five chunks, not MiniLM's
    stats = {s.embedder: s for s in await memory.store.stats()}
    assert set(stats) == {"minilm/all-MiniLM-L6-v2-onnx-int8@384", "openai/fake-embed@16"}
    assert {s.counts["runbook"] for s in stats.values()} == {5}
    assert len({s.index_name for s in stats.values()}) == 2
    # forgetting the old model: its index and vectors go, the other space is untouched
    old_index = stats["openai/fake-embed@16"].index_name
    assert await memory.store.drop_space("openai/fake-embed@16") == 5
    assert [s.embedder for s in await memory.store.stats()] == [
        "minilm/all-MiniLM-L6-v2-onnx-int8@384"
    ]
    async with pool.connection() as conn:
        left = await (
            await conn.execute(
                "SELECT count(*) AS n FROM pg_indexes WHERE indexname = %s", (old_index,)
            )
        ).fetchone()
    assert left is not None
    assert left["n"] == 0
    assert len(await memory.search("NAT gateway costs", MemoryFilter(), limit=10)) == 5
    with pytest.raises(ConfigurationError, match="pgvector indexes at most 4000"):
        EmbeddingSpace.of("huge", 8192)


async def test_finished_runs_are_indexed_and_a_new_llm_design_cites_them(
    vector_url: str, make_settings: Callable[..., Settings]
) -> None:
    blocked_goal = goal("Ledger API", "A REST API for the ledger with a Postgres database.")
    refused = with_db(good_design(blocked_goal), multi_az=False)  # prod: validation refuses
    with fake_openai(
        *(ToolCall(refused) for _ in range(3)), ToolCall(good_design(NEW_GOAL))
    ) as llm:
        settings = make_settings(
            database_url=SecretStr(vector_url),
            llm_model="fake-gpt",
            llm_base_url=llm.base_url,
            llm_max_retries=0,
            openai_api_key=SecretStr("k"),
            runbooks_dir=RUNBOOKS,
        )
        async with open_services(settings, role="test") as svc:
            memory = svc.context.plan_memory
            assert isinstance(memory, VectorPlanMemory)
            await history(svc.pool)
            # the worker's end-of-run hook: a run driven to BLOCKED is in memory at once
            run, _ = await submit_goal(
                svc, blocked_goal.model_copy(update={"goal_id": "ledger-1"}), actor="tester"
            )
            claimed = await svc.runs.claim(run.run_id, svc.worker_id, 30)
            assert claimed is not None
            await Worker(svc).drive_and_release(claimed)
            assert (await svc.runs.get(run.run_id)).state is ConductorState.BLOCKED
            (item,) = await memory.search("ledger", MemoryFilter(item_types=("goal",)), limit=5)
            assert (item.run_id, item.result) == (run.run_id, "blocked at design")
            assert item.reason is not None
            assert "design blocked" in item.reason
            # the catch-up pass (what the worker's interval runs) takes the rest
            assert await memory.index_finished_runs() == 4
            assert (await memory.index_runbooks()).added == 3

            plan = await design_goal(
                NEW_GOAL,
                planner=svc.context.planner,
                memory=memory,
                goal_id="payments-1",
                plan_id="run-new-r1",
                run_id="run-new",
            )
    assert isinstance(plan, PlanSpec)
    plans = [r for r in plan.provenance.retrieved if not r.startswith("runbook:")]
    runbooks = [r for r in plan.provenance.retrieved if r.startswith("runbook:")]
    # the past plans, then the goal blocked at design (it has no plan: cited by its run id)
    assert plans == ["run-orders/run-orders-r1", "run-billing/run-billing-r1", run.run_id]
    assert len(runbooks) == 3  # the nearest runbook sections follow
    assert runbooks[0] == "runbook:postgres.md#postgres"
    prompt = llm.user_text(3)
    past = prompt.split("<past_plans>", 1)[1].split("</past_plans>", 1)[0]
    assert '"id": "run-orders/run-orders-r1"' in past
    assert '"result": "applied"' in past
    assert '"why": "validation failed: CKV_AWS_157' in past
    assert "run-frankfurt" not in prompt
    assert "<runbooks>" in prompt
    blocked = prompt.split("<past_goals_without_plan>", 1)[1].split("</past_goals_", 1)[0]
    assert f'"id": "{run.run_id}"' in blocked
    assert '"result": "blocked at design"' in blocked
    assert "Ledger API" in blocked
    assert '"why": "design blocked' in blocked


def test_crew_memory_indexes_and_searches(
    vector_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREW_DATABASE_URL", vector_url)
    monkeypatch.setenv("CREW_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    indexed = runner.invoke(app, ["memory", "index", "--runbooks-dir", str(RUNBOOKS), "--json"])
    assert indexed.exit_code == 0, indexed.output
    assert '"chunks_embedded": 5' in indexed.output
    found = runner.invoke(
        app, ["memory", "search", "standby database promotion", "--kind", "api", "--limit", "1"]
    )
    assert found.exit_code == 0, found.output
    assert "runbook:postgres.md#failover" in found.output
    bad = runner.invoke(app, ["memory", "search", "x", "--type", "wiki"])
    assert bad.exit_code == 2
    assert "unknown wiki" in bad.output
    current = runner.invoke(app, ["memory", "drop", "minilm/all-MiniLM-L6-v2-onnx-int8@384"])
    assert current.exit_code == 2, current.output
    assert "switch CREW_EMBEDDER" in current.output
    unknown = runner.invoke(app, ["memory", "drop", "nope@3"])
    assert unknown.exit_code == 2, unknown.output
    assert "no embedding space 'nope@3'" in unknown.output


async def test_without_pgvector_the_service_starts_with_audit_memory(
    database_url: str,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A team's own Postgres without pgvector (the machine's PostgreSQL here): one warning,
    the audit-log memory, everything else as usual; CREW_MEMORY=vector refuses to start."""
    with caplog.at_level(logging.WARNING, logger="crew.plan_memory"):
        async with open_services(make_settings(database_url=database_url), role="test") as svc:
            assert isinstance(svc.context.plan_memory, PostgresPlanMemory)
            await svc.context.plan_memory.recall(NEW_GOAL)
    warnings = [r.getMessage() for r in caplog.records if r.name == "crew.plan_memory"]
    assert len(warnings) == 1
    assert warnings[0].startswith("vector memory off: the pgvector extension is not installed")
    assert "\n" not in warnings[0]
    with pytest.raises(ConfigurationError, match="CREW_MEMORY=vector needs pgvector"):
        async with open_services(make_settings(database_url=database_url, memory="vector")):
            pass
