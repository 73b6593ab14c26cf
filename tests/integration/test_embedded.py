"""The embedded default: no CREW_DATABASE_URL starts PostgreSQL 18 + pgvector under data_dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from crew.container import open_services
from crew.settings import Settings
from schemas.goal import GoalStatement
from schemas.states import ConductorState
from tests.conftest import example_goal
from tests.integration._support import embedded_data_dir, pid_alive, postmaster_pid

pytestmark = pytest.mark.integration


@pytest.fixture
def embedded_settings(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings with no database URL; whatever happens, no server is left running."""
    monkeypatch.delenv("CREW_DATABASE_URL", raising=False)
    with embedded_data_dir() as data_dir:
        settings = make_settings(data_dir=data_dir)
        assert settings.database_url is None
        yield settings


async def test_embedded_postgres_18_with_pgvector_keeps_data(embedded_settings: Settings) -> None:
    settings = embedded_settings
    goal = GoalStatement.model_validate(example_goal(goal_id="embedded-goal"))

    async with open_services(settings, role="test") as services:
        assert services.database.startswith("embedded PostgreSQL 18")
        assert str(settings.pgdata_dir) in services.database
        assert (settings.pgdata_dir / "PG_VERSION").read_text().strip() == "18"
        pid = postmaster_pid(settings.pgdata_dir)
        assert pid is not None
        assert pid_alive(pid)

        async with services.pool.connection() as conn:
            version = await (await conn.execute("SELECT version() AS v")).fetchone()
            assert version is not None
            assert version["v"].startswith("PostgreSQL 18"), version["v"]
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            installed = await (
                await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).fetchone()
            assert installed is not None, "pgvector is not installed"
            distance = await (
                await conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector AS d")
            ).fetchone()
            assert distance is not None
            assert distance["d"] == pytest.approx(2.0)

        record, created = await services.runs.create(
            goal, run_id="embedded-run-1", at=services.context.clock()
        )
        assert created
        back = await services.runs.get(record.run_id)
        assert back.goal == goal
        assert back.state is ConductorState.PENDING
        assert [r.seq for r in await services.runs.audit(record.run_id)] == [0]

    # Leaving the context let go of the server: this process was its only user.
    assert not pid_alive(pid), f"embedded postmaster {pid} still running after exit"

    async with open_services(settings, role="test") as services:
        reopened_pid = postmaster_pid(settings.pgdata_dir)
        assert reopened_pid is not None
        assert pid_alive(reopened_pid)
        again = await services.runs.get("embedded-run-1")
        assert again.goal == goal
        assert again.goal_id == "embedded-goal"
        assert [r.run_id for r in await services.runs.list_runs()] == ["embedded-run-1"]
        # The same goal_id attaches to the same run across restarts.
        same, created = await services.runs.create(
            goal, run_id="embedded-run-2", at=services.context.clock()
        )
        assert (same.run_id, created) == ("embedded-run-1", False)
        async with services.pool.connection() as conn:
            still = await (
                await conn.execute("SELECT 1 AS ok FROM pg_extension WHERE extname = 'vector'")
            ).fetchone()
            assert still is not None

    assert not pid_alive(reopened_pid), f"embedded postmaster {reopened_pid} still running"


async def test_two_users_in_one_process_share_the_server(embedded_settings: Settings) -> None:
    """The first of two users in one process to let go leaves the server to the other; the
    last one stops it."""
    settings = embedded_settings
    async with open_services(settings, role="first") as first:
        pid = postmaster_pid(settings.pgdata_dir)
        assert pid is not None
        async with open_services(settings, role="second") as second:
            assert postmaster_pid(settings.pgdata_dir) == pid
        assert pid_alive(pid), "the second user's exit stopped the first user's server"
        async with first.pool.connection() as conn:
            row = await (await conn.execute("SELECT 1 AS one")).fetchone()
        assert row is not None
        assert row["one"] == 1
        assert second is not first
    assert not pid_alive(pid), f"embedded postmaster {pid} still running after the last user"
