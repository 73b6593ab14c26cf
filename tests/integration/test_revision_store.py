"""Revisions in Postgres (no terraform): a goal_id seen before starts the next revision only
when the latest one ended, stays in its region, plans against the newest applied revision,
and a restarted worker starts it from its row exactly as the first one would have."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from psycopg.types.json import Jsonb

from crew.container import Services, open_services
from crew.settings import Settings
from graph.state import start_of
from schemas.errors import RunConflictError
from schemas.goal import GoalStatement
from schemas.stack import RevisionBase, RunPurpose
from tests.conftest import EXAMPLES, example_goal

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def services(
    database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Services]:
    async with open_services(make_settings(database_url=database_url), role="test") as opened:
        yield opened


async def _end(services: Services, run_id: str, state: str, outcome: str) -> None:
    """What a worker's last checkpoint would project: the state and the outcome."""
    async with services.pool.connection() as conn:
        await conn.execute(
            "UPDATE crew_runs SET state = %s, summary = %s WHERE run_id = %s",
            (state, Jsonb({"plan_id": f"{run_id}-p", "outcome": outcome}), run_id),
        )


def _goal(**changes: object) -> GoalStatement:
    return GoalStatement.model_validate(example_goal(goal_id="orders", **changes))


async def test_revisions_follow_the_stack(services: Services) -> None:
    runs = services.runs
    first, created = await runs.create(_goal(), run_id="r1", at=T0, actor="alice")
    assert (first.revision, first.base, created) == (1, None, True)
    # the same goal again: the same run
    same, created = await runs.create(_goal(), run_id="r1b", at=T0, actor="alice")
    assert (same.run_id, created) == ("r1", False)
    # a changed goal while revision 1 runs: refused, naming it
    bigger = _goal(budget={"monthly_usd": 40})
    with pytest.raises(
        RunConflictError, match="revision 1 of goal 'orders' \\(run r1\\) is PENDING"
    ):
        await runs.create(bigger, run_id="r2", at=T0, actor="alice")

    # revision 1 blocked (nothing applied): revision 2 has no base
    await _end(services, "r1", "BLOCKED", "not applied")
    second, created = await runs.create(bigger, run_id="r2", at=T0, actor="bob")
    assert (second.revision, second.base, created) == (2, None, True)
    await _end(services, "r2", "DONE", "applied")

    # revision 3 plans against revision 2, the applied one; a reconcile seed survives a restart
    seed = json.loads((EXAMPLES / "artifacts" / "PlanSpec.json").read_text())
    third, created = await runs.create(
        bigger,
        run_id="r3",
        at=T0,
        actor="bob",
        revise=True,
        purpose=RunPurpose.RECONCILE,
        seed_plan=seed,
    )
    assert third.base == RevisionBase(run_id="r2", revision=2)
    assert third.purpose is RunPurpose.RECONCILE
    start = start_of(await runs.get("r3"))  # what a worker (a restarted one too) starts from
    assert (start["revision"], start["base"], start["purpose"]) == (
        3,
        RevisionBase(run_id="r2", revision=2),
        RunPurpose.RECONCILE,
    )
    assert start["seed_plan"] is not None
    assert start["seed_plan"].plan_id == seed["plan_id"]
    audit = await runs.audit("r3")
    assert "reconcile: revision 3 of the stack, planned against revision 2 (run r2)" in (
        audit[0].note or ""
    )

    # a rolled-back revision leaves the applied one as the base; a region change is refused
    await _end(services, "r3", "DONE", "rolled back")
    with pytest.raises(RunConflictError, match="cannot move it to eu-central-1"):
        await runs.create(_goal(region="eu-central-1"), run_id="r4", at=T0, actor="bob")
    fourth, _ = await runs.create(_goal(), run_id="r4", at=T0, actor="bob")
    assert (fourth.revision, fourth.base) == (4, RevisionBase(run_id="r2", revision=2))
    # after a decommission, nothing is applied: the next revision starts from empty
    await _end(services, "r4", "DONE", "destroyed")
    fifth, _ = await runs.create(bigger, run_id="r5", at=T0, actor="bob")
    assert (fifth.revision, fifth.base) == (5, None)
    assert (await runs.latest_of_goal("orders")).run_id == "r5"  # type: ignore[union-attr]
    assert [r.run_id for r in await runs.newer_revisions("orders", 3)] == ["r4", "r5"]
