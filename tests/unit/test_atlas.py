"""nodes/atlas.plan_goal: the interim planner's designs and its honest DesignBlocked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.atlas import BRAKE_RATIO, S3_STANDARD_USD_PER_GB_MONTH, plan_goal
from schemas.goal import (
    Availability,
    Compliance,
    DataStoreKind,
    Environment,
    GoalStatement,
    WorkloadKind,
)
from schemas.plan import DesignBlocked, PlanSpec
from schemas.regions import AWS_REGIONS
from tests.unit.support import goal_dict, make_goal
from tools.workspace import render_workspace_files

OBJECT_STORE = {"kind": "object_storage", "size_gb": 100}


def plan(**changes: Any) -> PlanSpec | DesignBlocked:
    return plan_goal(make_goal(**changes), goal_id="goal-1", plan_id="run-1-r1")


def planned(**changes: Any) -> PlanSpec:
    result = plan(**changes)
    assert isinstance(result, PlanSpec), result
    return result


def blocked(**changes: Any) -> DesignBlocked:
    result = plan(**changes)
    assert isinstance(result, DesignBlocked), result
    return result


# -- the one design ---------------------------------------------------------------------------


def test_object_storage_goal_gives_one_bucket(object_storage_goal: GoalStatement) -> None:
    spec = plan_goal(object_storage_goal, goal_id="goal-1", plan_id="run-1-r1", revision=3)
    assert isinstance(spec, PlanSpec)
    assert [(c.type, c.name) for c in spec.components] == [("s3_bucket", "objects")]
    assert spec.components[0].params == {"versioning": True, "force_destroy": True, "size_gb": 100}
    assert (spec.plan_id, spec.goal_id, spec.revision) == ("run-1-r1", "goal-1", 3)
    assert (spec.region, spec.environment) == ("eu-west-1", Environment.DEV)
    assert spec.provenance.planner == "catalog"
    assert spec.diagram.startswith("flowchart LR")
    assert "objects" in spec.diagram


@pytest.mark.parametrize("size_gb", [1, 20, 100, 347.5, 65_536])
def test_forecast_is_size_times_s3_standard_price(size_gb: float) -> None:
    spec = planned(
        budget={"monthly_usd": 10_000},
        workload={"data_stores": [{"kind": "object_storage", "size_gb": size_gb}]},
    )
    expected = round(size_gb * S3_STANDARD_USD_PER_GB_MONTH, 2)
    assert spec.budget.forecast_monthly_usd == pytest.approx(size_gb * 0.023, abs=0.005)
    assert spec.budget.forecast_monthly_usd == expected
    assert [line.monthly_usd for line in spec.budget.breakdown] == [expected]
    assert spec.budget.cap_monthly_usd == 10_000
    assert spec.budget.brake_monthly_usd == 8_000


def test_unsized_stores_count_as_50_gb_each() -> None:
    stores = [{"kind": "object_storage"}, {"kind": "object_storage", "size_gb": 10}]
    spec = planned(workload={"data_stores": stores})
    assert spec.components[0].params["size_gb"] == 60
    assert spec.budget.forecast_monthly_usd == round(60 * 0.023, 2)


def test_tags_include_required_tags_and_provenance() -> None:
    required = {"team": "platform", "cost-center": "cc-1234"}
    spec = planned(constraints={"required_tags": required})
    assert required.items() <= spec.tags.items()
    assert spec.tags["managed-by"] == "infra-crew"
    assert spec.tags["crew-goal"] == "goal-1"
    assert spec.tags["environment"] == "dev"


def test_required_tags_win_over_defaults() -> None:
    spec = planned(constraints={"required_tags": {"environment": "sandbox"}})
    assert spec.tags["environment"] == "sandbox"


@pytest.mark.parametrize(
    ("environment", "force_destroy"),
    [("dev", True), ("staging", True), ("prod", False)],
)
def test_prod_buckets_are_not_force_destroyed(environment: str, force_destroy: bool) -> None:
    spec = planned(environment=environment)
    assert spec.components[0].params["force_destroy"] is force_destroy
    assert spec.environment is Environment(environment)


def test_region_inside_allowed_regions_is_fine() -> None:
    spec = planned(constraints={"allowed_regions": ["eu-central-1", "eu-west-1"]})
    assert spec.region == "eu-west-1"


# -- blocked designs --------------------------------------------------------------------------


def test_region_outside_allowed_regions_is_blocked() -> None:
    result = blocked(constraints={"allowed_regions": ["eu-central-1", "eu-north-1"]})
    (reason,) = result.reasons
    assert reason.constraint == "constraints.allowed_regions"
    assert "eu-west-1" in reason.why
    assert reason.suggestion == "use region eu-central-1"
    assert result.goal_id == "goal-1"
    assert result.attempts == 1


@pytest.mark.parametrize("kind", list(WorkloadKind))
def test_every_workload_kind_is_beyond_the_interim_planner(kind: WorkloadKind) -> None:
    result = blocked(workload={"kind": kind.value, "data_stores": [OBJECT_STORE]})
    (reason,) = result.reasons
    assert reason.constraint == "workload"
    assert "interim single-component planner" in reason.why
    assert "object storage only" in reason.suggestion


@pytest.mark.parametrize(
    "kind", [k for k in DataStoreKind if k is not DataStoreKind.OBJECT_STORAGE]
)
def test_other_data_stores_are_beyond_the_interim_planner(kind: DataStoreKind) -> None:
    result = blocked(workload={"data_stores": [{"kind": kind.value, "size_gb": 50}]})
    assert [r.constraint for r in result.reasons] == ["workload"]
    assert "interim" in result.reasons[0].why


def test_object_storage_with_postgres_is_blocked() -> None:
    result = blocked(workload={"data_stores": [OBJECT_STORE, {"kind": "postgres"}]})
    assert [r.constraint for r in result.reasons] == ["workload"]


@pytest.mark.parametrize("workload", [None, {}, {"availability": "multi_az"}])
def test_a_goal_without_object_storage_is_blocked(workload: dict[str, Any] | None) -> None:
    data = goal_dict(workload=workload)
    if workload is None:
        del data["workload"]
    result = plan_goal(GoalStatement.model_validate(data), goal_id="g", plan_id="p")
    assert isinstance(result, DesignBlocked)
    assert [r.constraint for r in result.reasons] == ["workload"]


def test_the_web_api_example_is_blocked_with_every_reason(web_api_goal: GoalStatement) -> None:
    result = plan_goal(web_api_goal, goal_id="orders-api-2026-11", plan_id="p")
    assert isinstance(result, DesignBlocked)
    assert [r.constraint for r in result.reasons] == ["workload"]
    moved = web_api_goal.model_copy(update={"region": "us-east-1"})
    result = plan_goal(moved, goal_id="orders-api-2026-11", plan_id="p")
    assert isinstance(result, DesignBlocked)
    assert [r.constraint for r in result.reasons] == ["constraints.allowed_regions", "workload"]


def test_budget_too_small_suggests_a_sufficient_budget() -> None:
    # 100 GB -> $2.30/month; the brake of a $2 budget is $1.60
    result = blocked(budget={"monthly_usd": 2})
    (reason,) = result.reasons
    assert reason.constraint == "budget.monthly_usd"
    assert "$2.30" in reason.why
    assert "$1.60" in reason.why
    assert reason.suggestion == "raise budget.monthly_usd to >= 2.88"
    assert 2.30 / BRAKE_RATIO <= 2.88
    # following the suggestion unblocks the design
    assert isinstance(plan(budget={"monthly_usd": 2.88}), PlanSpec)


def test_forecast_exactly_at_the_brake_is_planned() -> None:
    spec = planned(budget={"monthly_usd": 2.875})  # 80 % = $2.30 = the forecast
    assert spec.budget.forecast_monthly_usd == spec.budget.brake_monthly_usd == 2.3


@pytest.mark.parametrize("budget", [0.001, 0.006])
def test_a_budget_below_a_cent_of_brake_is_blocked_not_an_error(budget: float) -> None:
    tiny = {"data_stores": [{"kind": "object_storage", "size_gb": 0.01}]}  # forecast $0.00
    result = blocked(budget={"monthly_usd": budget}, workload=tiny)
    (reason,) = result.reasons
    assert reason.constraint == "budget.monthly_usd"
    assert "below one cent" in reason.why
    assert reason.suggestion == "raise budget.monthly_usd to >= 0.01"
    assert isinstance(plan(budget={"monthly_usd": 0.01}, workload=tiny), PlanSpec)


# -- property: any valid goal ----------------------------------------------------------------

_text = st.text(min_size=0, max_size=40).map(lambda s: "t" + s)
_sizes = (
    st.none()
    | st.floats(min_value=0.001, max_value=65_536, allow_nan=False)
    | st.floats(min_value=0.001, max_value=1)
)
_store = st.fixed_dictionaries(
    {"kind": st.sampled_from([k.value for k in DataStoreKind])},
    optional={"size_gb": _sizes.filter(lambda v: v is not None)},
)
_store_biased = st.one_of(
    _store, st.fixed_dictionaries({"kind": st.just("object_storage")}, optional={"size_gb": _sizes})
)
_workload = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from([k.value for k in WorkloadKind]),
        "expected_rps": st.floats(min_value=0, max_value=10_000_000),
        "availability": st.sampled_from([a.value for a in Availability]),
        "data_stores": st.lists(_store_biased, max_size=4),
    },
)
#: What the interim planner can design: object storage only, no workload kind.
_object_only = st.fixed_dictionaries(
    {
        "data_stores": st.lists(
            st.fixed_dictionaries(
                {"kind": st.just("object_storage")}, optional={"size_gb": _sizes}
            ),
            min_size=1,
            max_size=3,
        )
    }
)
_regions = st.sampled_from(sorted(AWS_REGIONS))
_constraints = st.fixed_dictionaries(
    {},
    optional={
        "allowed_regions": st.lists(_regions, max_size=3),
        "required_tags": st.dictionaries(
            st.text(min_size=1, max_size=20).map(lambda s: "k" + s),
            st.text(max_size=40),
            max_size=3,
        ),
        "compliance": st.lists(st.sampled_from([c.value for c in Compliance]), max_size=4),
    },
)
goals = st.fixed_dictionaries(
    {
        "schema_version": st.just("0.1"),
        "title": _text,
        "description": _text,
        "cloud": st.just("aws"),
        "region": _regions,
        "budget": st.fixed_dictionaries(
            {
                "monthly_usd": st.floats(
                    min_value=0, max_value=10_000_000, exclude_min=True, allow_nan=False
                )
                | st.floats(min_value=0, max_value=0.05, exclude_min=True)
                | st.sampled_from([0.01, 1, 2.875, 20, 1000])
            }
        ),
    },
    optional={
        "environment": st.sampled_from([e.value for e in Environment]),
        "workload": _workload | _object_only,
        "constraints": _constraints,
        "requested_by": _text,
        "goal_id": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,30}", fullmatch=True),
    },
).map(GoalStatement.model_validate)


_edge_budgets = st.sampled_from([0.001, 0.006, 0.00625, 0.01, 0.02, 1.15, 2.875, 20])
plannable_goals = st.builds(
    lambda base, budget, stores, environment: GoalStatement.model_validate(
        {
            **base,
            "budget": {"monthly_usd": budget},
            "environment": environment,
            "workload": {"data_stores": stores},
        }
    ),
    st.just(goal_dict()),
    st.floats(min_value=0, max_value=10_000_000, exclude_min=True)
    | st.floats(min_value=0, max_value=0.05, exclude_min=True)
    | _edge_budgets,
    st.lists(
        st.fixed_dictionaries(
            {"kind": st.just("object_storage")},
            optional={"size_gb": st.floats(min_value=0.001, max_value=0.3) | _sizes},
        ),
        min_size=1,
        max_size=2,
    ),
    st.sampled_from([e.value for e in Environment]),
)


def check_design(goal: GoalStatement) -> PlanSpec | DesignBlocked:
    """plan_goal's contract for one valid goal: never raises, and says what to change."""
    goal_id = goal.goal_id or "20261124T182440-5f3c9a1e"
    result = plan_goal(goal, goal_id=goal_id, plan_id=f"{goal_id}-r1")
    cap = goal.budget.monthly_usd
    if isinstance(result, PlanSpec):
        brake = result.budget.brake_monthly_usd
        assert brake == round(cap * BRAKE_RATIO, 2)
        # the brake is 80 % of the budget at cent precision (as Sentinel applies it)
        assert result.budget.forecast_monthly_usd <= brake
        assert result.budget.forecast_monthly_usd <= cap * BRAKE_RATIO + 0.005
        assert result.goal_id == goal_id
        assert render_workspace_files(result)["main.tf"]  # always renderable
        return result
    assert isinstance(result, DesignBlocked)
    assert result.reasons
    for reason in result.reasons:
        assert reason.suggestion
        if reason.constraint == "budget.monthly_usd":
            match = re.fullmatch(r"raise budget.monthly_usd to >= ([0-9.]+)", reason.suggestion)
            assert match is not None
            budget = goal.budget.model_copy(update={"monthly_usd": float(match.group(1))})
            raised = goal.model_copy(update={"budget": budget})
            assert isinstance(plan_goal(raised, goal_id=goal_id, plan_id="p"), PlanSpec)
    return result


@settings(max_examples=300, deadline=None)
@given(goals)
def test_any_valid_goal_gives_a_plan_within_the_brake_or_a_reason(goal: GoalStatement) -> None:
    check_design(goal)


@settings(max_examples=300, deadline=None)
@given(plannable_goals)
def test_any_object_storage_goal_is_planned_or_blocked_on_budget(goal: GoalStatement) -> None:
    result = check_design(goal)
    if isinstance(result, DesignBlocked):
        assert [r.constraint for r in result.reasons] == ["budget.monthly_usd"]
