"""nodes/atlas: the design node's contract, its retry loop, and what it blocks on and why.

The planners here are the real catalog planner and `ScriptedPlanner`, a test double that
plays back proposals the way an LLM planner would hand them over (the real LLM path, over
HTTP, is tests/integration/test_llm_planner.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from langgraph.runtime import Runtime

from catalog.design import plan_tags
from catalog.planner import design_for
from catalog.prices import load_prices
from catalog.validate import ProblemCode, validate_plan
from graph.context import CrewContext, NodeConfig
from graph.planner import Attempt, Proposal
from graph.state import initial_state
from memory.plans import PastPlan
from nodes.atlas import design, design_goal, plan_goal, with_svg
from nodes.planners.catalog import CatalogPlanner
from schemas.errors import LlmError
from schemas.events import EventType
from schemas.goal import Constraints, Environment, GoalStatement
from schemas.plan import DesignBlocked, PlanSpec
from schemas.states import ConductorState
from tests.unit.support import make_goal

T0 = datetime(2026, 11, 24, 18, 24, 40, tzinfo=UTC)


def planned(name: str = "goal-object-storage.json", **changes: Any) -> PlanSpec:
    result = plan_goal(make_goal(name, **changes), goal_id="goal-1", plan_id="run-1-r1")
    assert isinstance(result, PlanSpec), result
    return result


def blocked(name: str = "goal-object-storage.json", **changes: Any) -> DesignBlocked:
    result = plan_goal(make_goal(name, **changes), goal_id="goal-1", plan_id="run-1-r1")
    assert isinstance(result, DesignBlocked), result
    return result


# -- the catalog path (plan_goal) --------------------------------------------------------------


def test_object_storage_goal_gives_one_private_bucket(object_storage_goal: GoalStatement) -> None:
    spec = plan_goal(object_storage_goal, goal_id="goal-1", plan_id="run-1-r1", revision=3)
    assert isinstance(spec, PlanSpec)
    assert [(c.type, c.name) for c in spec.components] == [("s3_bucket", "objects")]
    # every parameter is written out, secure defaults included
    assert spec.components[0].params == {
        "versioning": True,
        "access_logging": True,
        "force_destroy": True,
        "size_gb": 100.0,
        "expiration_days": 90,
        "monthly_requests_million": 1.0,
        "website_origin": False,
    }
    assert (spec.plan_id, spec.goal_id, spec.revision) == ("run-1-r1", "goal-1", 3)
    assert (spec.region, spec.environment) == ("eu-west-1", Environment.DEV)
    assert spec.provenance.planner == "catalog"
    assert spec.provenance.attempts == 1
    assert spec.diagram.startswith("flowchart LR")
    assert "c_objects" in spec.diagram


def test_forecast_comes_from_the_regional_price_table() -> None:
    prices = load_prices()
    for region in ("eu-west-1", "eu-central-1"):
        spec = planned(region=region)
        storage = prices.price("s3.standard.gb_month", region).usd
        requests = prices.price("s3.requests.million", region).usd
        assert spec.budget.forecast_monthly_usd == round(100 * storage + 1 * requests, 2)
        (line,) = spec.budget.breakdown
        assert line.component == "objects"
        assert "100 GB S3 Standard" in line.basis
    assert spec.budget.cap_monthly_usd == 20
    assert spec.budget.brake_monthly_usd == 16


def test_tags_include_required_tags_and_provenance() -> None:
    required = {"team": "platform", "cost-center": "cc-1234"}
    spec = planned(constraints={"required_tags": required})
    assert required.items() <= spec.tags.items()
    assert spec.tags["managed-by"] == "infra-crew"
    assert spec.tags["crew-goal"] == "goal-1"
    assert spec.tags["environment"] == "dev"


def test_required_tags_cannot_relabel_the_crews_own() -> None:
    """The contract refuses them (tests/unit/test_goal_contract_property.py); a goal built
    around it still cannot override them."""
    goal = make_goal()
    constraints = Constraints.model_construct(required_tags={"environment": "sandbox"})
    spoofed = goal.model_copy(update={"constraints": constraints})
    tags = plan_tags(spoofed, "goal-1")
    assert (tags["environment"], tags["crew-goal"]) == ("dev", "goal-1")


@pytest.mark.parametrize(
    ("environment", "force_destroy"), [("dev", True), ("staging", True), ("prod", False)]
)
def test_prod_buckets_are_never_force_destroyed(environment: str, force_destroy: bool) -> None:
    spec = planned(environment=environment)
    assert spec.components[0].params["force_destroy"] is force_destroy
    assert spec.components[0].params["versioning"] is True


def test_the_web_api_example_is_designed_within_its_brake(web_api_goal: GoalStatement) -> None:
    spec = plan_goal(web_api_goal, goal_id="orders-api-2026-11", plan_id="p")
    assert isinstance(spec, PlanSpec)
    assert validate_plan(spec, web_api_goal) == []
    assert spec.budget.forecast_monthly_usd <= spec.budget.brake_monthly_usd == 320
    assert spec.tags["team"] == "orders"


# -- blocked designs: one reason per clash, each with a concrete fix ---------------------------


def test_region_outside_allowed_regions_is_blocked() -> None:
    result = blocked(constraints={"allowed_regions": ["eu-central-1", "eu-north-1"]})
    (reason,) = result.reasons
    assert reason.constraint == "constraints.allowed_regions"
    assert "eu-west-1" in reason.why
    assert reason.suggestion == "use region eu-central-1"
    assert (result.goal_id, result.attempts) == ("goal-1", 1)


@pytest.mark.parametrize(
    "region", ["eu-north-1", "eu-west-3", "ap-northeast-1", "ca-central-1", "ap-south-1"]
)
def test_every_commercial_region_is_planned_with_estimated_prices(region: str) -> None:
    spec = planned(region=region)
    assert spec.region == region
    assert spec.budget.forecast_monthly_usd > 0
    assert any(f"estimated for {region}" in a for a in spec.assumptions)


def test_a_region_without_price_data_uses_a_stated_conservative_bound() -> None:
    spec = planned(region="us-gov-west-1")
    assert any("conservative bound" in a for a in spec.assumptions)
    east = planned(region="us-east-1")
    assert spec.budget.forecast_monthly_usd > east.budget.forecast_monthly_usd


def test_budget_too_small_names_the_budget_that_would_do() -> None:
    result = blocked(budget={"monthly_usd": 2})
    (reason,) = result.reasons
    assert reason.constraint == "budget.monthly_usd"
    assert "$3.62/month" in reason.why
    assert "$1.60" in reason.why
    assert reason.suggestion == "raise budget.monthly_usd to >= 4.52"
    assert isinstance(
        plan_goal(make_goal(budget={"monthly_usd": 4.52}), goal_id="g", plan_id="p"), PlanSpec
    )
    assert isinstance(
        plan_goal(make_goal(budget={"monthly_usd": 4.51}), goal_id="g", plan_id="p"), DesignBlocked
    )


@pytest.mark.parametrize("budget", [0.001, 0.006])
def test_a_budget_below_a_cent_of_brake_is_blocked_not_an_error(budget: float) -> None:
    (reason,) = blocked(budget={"monthly_usd": budget}).reasons
    assert reason.constraint == "budget.monthly_usd"
    assert reason.suggestion.startswith("raise budget.monthly_usd to >= ")


def test_when_the_recommended_design_is_too_dear_the_cheapest_one_is_planned() -> None:
    goal = make_goal("goal-web-api.json")
    roomy = plan_goal(goal, goal_id="g", plan_id="p")
    assert isinstance(roomy, PlanSpec)
    network = next(c for c in roomy.components if c.type == "vpc")
    assert network.params["nat"] == "per_az"
    tight = planned("goal-web-api.json", budget={"monthly_usd": 260})
    assert tight.budget.forecast_monthly_usd < roomy.budget.forecast_monthly_usd
    assert next(c for c in tight.components if c.type == "vpc").params["nat"] == "single"
    assert "cheapest design that satisfies the goal" in tight.rationale
    assert any("One NAT gateway" in r.description for r in tight.risks)
    db = next(c for c in tight.components if c.type == "rds_postgres")
    assert db.params["multi_az"] is True  # still prod: never traded for money


@pytest.mark.parametrize(
    ("changes", "constraint", "fix"),
    [
        (
            {
                "environment": "prod",
                "workload": {
                    "availability": "single_az",
                    "data_stores": [{"kind": "object_storage"}],
                },
            },
            "workload.availability",
            "multi_az",
        ),
        (
            {"workload": {"kind": "static_site", "data_stores": [{"kind": "postgres"}]}},
            "workload.data_stores",
            "web_service",
        ),
        (
            {"workload": {}, "title": "Project X", "description": "Something nice."},
            "workload",
            "workload.kind",
        ),
        (
            {"workload": {"kind": "api", "expected_rps": 5_000_000}},
            "workload.expected_rps",
            "lower workload.expected_rps",
        ),
        (
            {"workload": {"data_stores": [{"kind": "postgres", "size_gb": 60_000}]}},
            "workload.data_stores[0].size_gb",
            "16384",
        ),
    ],
)
def test_goals_that_contradict_themselves_are_blocked(
    changes: dict[str, Any], constraint: str, fix: str
) -> None:
    result = blocked(**changes)
    reasons = [r for r in result.reasons if r.constraint == constraint]
    assert reasons, result.reasons
    assert fix in reasons[0].suggestion


# -- design_goal: any planner, validated, retried with the clash explained ---------------------


@dataclass
class ScriptedPlanner:
    """Plays back proposals as an LLM planner would; records what it was told."""

    replies: list[Proposal | Exception]
    name: str = "llm"
    model: str | None = "scripted-1"
    max_attempts: int = 3
    uses_memory: bool = True
    seen: list[list[Attempt]] = field(default_factory=list)
    past: list[Sequence[PastPlan]] = field(default_factory=list)

    async def propose(
        self, goal: GoalStatement, past: Sequence[PastPlan], rejected: Sequence[Attempt]
    ) -> Proposal:
        self.seen.append(list(rejected))
        self.past.append(past)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def good(goal: GoalStatement, tokens: int = 100) -> Proposal:
    design_ = design_for(goal)
    assert design_ is not None
    return Proposal(
        design_, raw=design_.model_dump_json(), prompt_tokens=tokens, completion_tokens=10
    )


def tampered(goal: GoalStatement, **db_params: Any) -> Proposal:
    base = design_for(goal)
    assert base is not None
    components = [
        c.model_copy(update={"params": {**c.params, **db_params}})
        if c.type == "rds_postgres"
        else c
        for c in base.components
    ]
    proposal = base.model_copy(update={"components": components})
    return Proposal(
        proposal, raw=proposal.model_dump_json(), prompt_tokens=100, completion_tokens=10
    )


async def test_a_valid_first_proposal_is_the_plan_with_its_tokens(
    web_api_goal: GoalStatement,
) -> None:
    planner = ScriptedPlanner([good(web_api_goal, tokens=1234)])
    plan = await design_goal(web_api_goal, planner=planner, goal_id="g", plan_id="p")
    assert isinstance(plan, PlanSpec)
    p = plan.provenance
    assert (p.planner, p.model, p.attempts) == ("llm", "scripted-1", 1)
    assert (p.prompt_tokens, p.completion_tokens) == (1234, 10)


async def test_a_rejected_proposal_is_explained_and_the_retry_fixes_it(
    web_api_goal: GoalStatement,
) -> None:
    planner = ScriptedPlanner([tampered(web_api_goal, multi_az=False), good(web_api_goal)])
    plan = await design_goal(web_api_goal, planner=planner, goal_id="g", plan_id="p")
    assert isinstance(plan, PlanSpec)
    assert plan.provenance.attempts == 2
    assert plan.provenance.prompt_tokens == 200  # both attempts count
    (attempt,) = planner.seen[1]
    assert attempt.number == 1
    assert [p.code for p in attempt.problems] == [ProblemCode.MULTI_AZ]
    assert attempt.problems[0].constraint == "components.db.params.multi_az"
    assert '"multi_az":false' in attempt.answer


async def test_three_rejections_give_a_design_blocked_with_the_last_reasons(
    web_api_goal: GoalStatement,
) -> None:
    replies: list[Proposal | Exception] = [tampered(web_api_goal, multi_az=False) for _ in range(3)]
    planner = ScriptedPlanner(replies)
    result = await design_goal(web_api_goal, planner=planner, goal_id="g", plan_id="p")
    assert isinstance(result, DesignBlocked)
    assert result.attempts == 3
    assert [len(s) for s in planner.seen] == [0, 1, 2]
    (reason,) = result.reasons
    assert reason.constraint == "components.db.params.multi_az"
    assert reason.suggestion == "set multi_az true"


async def test_an_unparsable_reply_counts_as_an_attempt(web_api_goal: GoalStatement) -> None:
    planner = ScriptedPlanner(
        [Proposal(None, error="invalid JSON at line 1", raw="{oops"), good(web_api_goal)]
    )
    plan = await design_goal(web_api_goal, planner=planner, goal_id="g", plan_id="p")
    assert isinstance(plan, PlanSpec)
    (attempt,) = planner.seen[1]
    assert attempt.problems[0].code is ProblemCode.BAD_REPLY
    assert "invalid JSON" in attempt.problems[0].why


async def test_an_llm_over_budget_is_pointed_at_the_cheaper_catalog_design() -> None:
    goal = make_goal("goal-web-api.json")
    dear = tampered(goal, instance_class="db.r6g.xlarge")
    planner = ScriptedPlanner([dear, dear, dear])
    result = await design_goal(goal, planner=planner, goal_id="g", plan_id="p")
    assert isinstance(result, DesignBlocked)
    (reason,) = result.reasons
    assert reason.constraint == "budget.monthly_usd"
    assert reason.suggestion.startswith("raise budget.monthly_usd to >= ")
    assert "--planner catalog" in reason.suggestion


async def test_a_goal_that_contradicts_itself_never_reaches_the_planner() -> None:
    planner = ScriptedPlanner([])
    goal = make_goal(constraints={"allowed_regions": ["us-east-1"]})
    result = await design_goal(goal, planner=planner, goal_id="g", plan_id="p")
    assert isinstance(result, DesignBlocked)
    assert planner.seen == []


@dataclass
class StubMemory:
    found: list[PastPlan]
    calls: list[str | None] = field(default_factory=list)

    async def recall(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 3
    ) -> list[PastPlan]:
        self.calls.append(exclude_run)
        return self.found


async def test_retrieved_plans_reach_the_planner_and_the_provenance(
    web_api_goal: GoalStatement, example_plan: PlanSpec
) -> None:
    memory = StubMemory([PastPlan("run-0", example_plan, ConductorState.DONE, T0)])
    planner = ScriptedPlanner([good(web_api_goal)])
    plan = await design_goal(
        web_api_goal, planner=planner, goal_id="g", plan_id="p", memory=memory, run_id="run-1"
    )
    assert isinstance(plan, PlanSpec)
    assert memory.calls == ["run-1"]
    assert planner.past[0][0].outcome is ConductorState.DONE
    assert plan.provenance.retrieved == [f"run-0/{example_plan.plan_id}"]
    # the catalog planner's rules do not use memory: nothing is retrieved for it
    memory.calls.clear()
    plan = await design_goal(
        web_api_goal, planner=CatalogPlanner(), goal_id="g", plan_id="p", memory=memory
    )
    assert isinstance(plan, PlanSpec)
    assert memory.calls == []
    assert plan.provenance.retrieved == []


async def test_the_catalog_planner_behind_the_interface_equals_plan_goal(
    web_api_goal: GoalStatement,
) -> None:
    direct = plan_goal(web_api_goal, goal_id="g", plan_id="p")
    through = await design_goal(web_api_goal, planner=CatalogPlanner(), goal_id="g", plan_id="p")
    assert direct == through


# -- the node ----------------------------------------------------------------------------------


def context(tmp_path: Path, planner: Any) -> Runtime[CrewContext]:
    ctx = CrewContext(
        config=NodeConfig(workspaces_dir=tmp_path / "workspaces", tf_state_dir=tmp_path / "state"),
        terraform=cast(Any, None),
        ledger=cast(Any, None),
        sentinel=cast(Any, None),
        clock=lambda: T0,
        planner=planner,
    )
    return Runtime(context=ctx)


async def test_the_node_moves_to_in_progress_with_a_plan(
    tmp_path: Path, web_api_goal: GoalStatement
) -> None:
    state = initial_state("run-1", "orders-api-2026-11", web_api_goal, T0)
    update = await design(state, context(tmp_path, CatalogPlanner()))
    assert update["conductor_state"] is ConductorState.IN_PROGRESS
    plan = update["plan"]
    assert plan is not None
    assert (plan.plan_id, plan.goal_id) == ("run-1-r1", "orders-api-2026-11")
    (t,) = update["transitions"]
    assert (t.event, t.from_state, t.to_state, t.artifact) == (
        EventType.PLAN_PENDING,
        ConductorState.PENDING,
        ConductorState.IN_PROGRESS,
        "plan",
    )


async def test_the_node_blocks_with_a_reason_per_clash(tmp_path: Path) -> None:
    goal = make_goal("goal-web-api.json", region="us-east-1", budget={"monthly_usd": 100})
    update = await design(
        initial_state("run-2", "g", goal, T0), context(tmp_path, CatalogPlanner())
    )
    assert update["conductor_state"] is ConductorState.BLOCKED
    blocked_ = update["design_blocked"]
    assert blocked_ is not None
    assert len(blocked_.reasons) == 2
    assert [t.event for t in update["transitions"]] == [
        EventType.DESIGN_STARTED,
        EventType.DESIGN_BLOCKED,
    ]
    assert update["error"] == "design blocked: " + "; ".join(r.why for r in blocked_.reasons)


async def test_an_llm_failure_propagates_for_the_worker_to_retry(
    tmp_path: Path, web_api_goal: GoalStatement
) -> None:
    planner = ScriptedPlanner([LlmError("the LLM at http://127.0.0.1:9/v1 answered HTTP 500")])
    state = initial_state("run-3", "g", web_api_goal, T0)
    with pytest.raises(LlmError, match="HTTP 500"):
        await design(state, context(tmp_path, planner))


async def test_without_a_mermaid_cli_there_is_no_svg_and_a_broken_one_is_not_fatal(
    example_plan: PlanSpec, tmp_path: Path
) -> None:
    assert await with_svg(example_plan, None) is example_plan
    missing = tmp_path / "no-such-mmdc"
    assert await with_svg(example_plan, missing) is example_plan
    failing = tmp_path / "mmdc"
    failing.write_text("#!/bin/sh\necho 'no chromium here' >&2\nexit 1\n")
    failing.chmod(0o755)
    assert await with_svg(example_plan, failing) is example_plan


async def test_a_working_mermaid_cli_puts_the_svg_on_the_plan(
    example_plan: PlanSpec, tmp_path: Path
) -> None:
    # a stand-in mmdc (no browser here): copies its input into an SVG, as the real one renders it
    fake = tmp_path / "mmdc"
    fake.write_text(
        "#!/bin/sh\n"
        'while [ $# -gt 0 ]; do case "$1" in\n'
        '  -i) in="$2"; shift;; -o) out="$2"; shift;;\n'
        "esac; shift; done\n"
        'printf "<svg><!-- %s --></svg>" "$(head -c 20 "$in")" > "$out"\n'
    )
    fake.chmod(0o755)
    plan = await with_svg(example_plan, fake)
    assert plan.diagram_svg is not None
    assert plan.diagram_svg.startswith("<svg><!-- flowchart LR")
    assert plan.model_copy(update={"diagram_svg": None}) == example_plan
