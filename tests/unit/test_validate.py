"""catalog/validate.py: what any design must be, and what a goal asks of it. These are the
checks an LLM's design meets before it may become a PlanSpec."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.design import DesignProposal, assemble_plan
from catalog.validate import Problem, ProblemCode, validate_components, validate_plan
from schemas.goal import GoalStatement
from schemas.plan import Component, PlanSpec, Provenance
from tests.unit.support import make_goal

P = ProblemCode


def c(type_: str, name: str, depends_on: list[str] | None = None, **params: Any) -> Component:
    return Component(type=type_, name=name, params=params, depends_on=depends_on or [])


def web(**overrides: Any) -> list[Component]:
    """A valid small web design; `overrides` replace components by name."""
    parts = {
        "net": c("vpc", "net", nat="single"),
        "app": c("ecs_service", "app", grants=[{"component": "files", "access": "read_write"}]),
        "lb": c("alb", "lb", target="app"),
        "db": c("rds_postgres", "db", allow_from=["app"]),
        "files": c("s3_bucket", "files"),
        "alarms": c(
            "cloudwatch_alarms", "alarms", alarms=[{"component": "db", "kind": "db_cpu_high"}]
        ),
    }
    parts.update(overrides)
    return [v for v in parts.values() if v is not None]


def codes(problems: list[Problem]) -> list[ProblemCode]:
    return [p.code for p in problems]


def test_the_reference_design_is_valid() -> None:
    assert validate_components(web()) == []


@pytest.mark.parametrize(
    ("components", "code", "where"),
    [
        (
            web(x=c("iam_user", "x", policy="AdministratorAccess")),
            P.UNKNOWN_TYPE,
            "components.x.type",
        ),
        (
            web(x=c("null_resource", "x", provisioner="local-exec")),
            P.UNKNOWN_TYPE,
            "components.x.type",
        ),
        (
            web(files=c("s3_bucket", "files", acl="public-read-write")),
            P.BAD_PARAMS,
            "components.files.params.acl",
        ),
        (
            web(app=c("ecs_service", "app", ssh_cidr="0.0.0.0/0")),
            P.BAD_PARAMS,
            "components.app.params.ssh_cidr",
        ),
        (
            web(app=c("ecs_service", "app", cpu=256, memory_mb=8192)),
            P.BAD_PARAMS,
            "components.app.params",
        ),
        (
            web(db=c("rds_postgres", "db", storage_encrypted=False)),
            P.BAD_PARAMS,
            "components.db.params.storage_encrypted",
        ),
        (web(net=c("vpc", "net", cidr="8.8.0.0/16")), P.BAD_PARAMS, "components.net.params.cidr"),
        (
            web(lb=c("alb", "lb", target="ghost")),
            P.DANGLING_REFERENCE,
            "components.lb.params.target",
        ),
        (web(lb=c("alb", "lb", target="db")), P.WRONG_REFERENCE, "components.lb.params.target"),
        (
            web(db=c("rds_postgres", "db", allow_from=["files"])),
            P.WRONG_REFERENCE,
            "components.db.params.allow_from",
        ),
        (
            web(app=c("ecs_service", "app", grants=[{"component": "db", "access": "read"}])),
            P.WRONG_REFERENCE,
            "components.app.params.grants",
        ),
        (
            web(app=c("ecs_service", "app", grants=[{"component": "files", "access": "consume"}])),
            P.BAD_GRANT,
            "components.app.params.grants",
        ),
        (
            web(
                alarms=c(
                    "cloudwatch_alarms",
                    "alarms",
                    alarms=[{"component": "files", "kind": "cpu_high"}],
                )
            ),
            P.WRONG_REFERENCE,
            "components.alarms.params.alarms",
        ),
        (web(net=None), P.VPC_MISSING, "components"),
        (web(net2=c("vpc", "net2")), P.VPC_EXTRA, "components"),
        (web(net=c("vpc", "net", nat="none")), P.NO_EGRESS, "components.net.params.nat"),
        (web(net=c("vpc", "net", az_count=1)), P.TOO_FEW_AZS, "components.net.params.az_count"),
        (
            web(files=c("s3_bucket", "files", depends_on=["files"])),
            P.DANGLING_REFERENCE,
            "components.files.depends_on",
        ),
        (
            web(job=c("ecs_scheduled_task", "job", schedule="rate(1 hours)")),
            P.BAD_SCHEDULE,
            "components.job.params.schedule",
        ),
        (
            web(job=c("ecs_scheduled_task", "job", schedule="cron(0 2 * * * *)")),
            P.BAD_SCHEDULE,
            "components.job.params.schedule",
        ),
    ],
)
def test_structural_problems_name_the_component_and_the_fix(
    components: list[Component], code: ProblemCode, where: str
) -> None:
    problems = validate_components(components)
    assert code in codes(problems), problems
    problem = next(p for p in problems if p.code is code)
    assert problem.constraint.startswith(where)
    assert problem.suggestion


def test_unknown_params_list_the_known_ones() -> None:
    (problem,) = validate_components(web(files=c("s3_bucket", "files", acl="public-read")))
    assert "versioning" in problem.suggestion
    assert "remove it" in problem.suggestion


def test_duplicate_names_and_dependency_cycles() -> None:
    dupes = [*web(), c("s3_bucket", "files")]
    assert P.DUPLICATE_NAME in codes(validate_components(dupes))
    cycle = web(
        files=c("s3_bucket", "files", depends_on=["db"]),
        db=c("rds_postgres", "db", depends_on=["files"], allow_from=["app"]),
    )
    assert P.DEPENDENCY_CYCLE in codes(validate_components(cycle))


def test_a_vpc_without_anything_in_it_is_refused() -> None:
    problems = validate_components([c("vpc", "net"), c("s3_bucket", "files")])
    assert codes(problems) == [P.VPC_EXTRA]


def test_a_cdn_origin_must_be_a_website_origin_bucket() -> None:
    design = [c("s3_bucket", "site"), c("cloudfront_distribution", "cdn", origin="site")]
    (problem,) = validate_components(design)
    assert problem.constraint == "components.site.params.website_origin"
    fixed = [c("s3_bucket", "site", website_origin=True), design[1]]
    assert validate_components(fixed) == []


# -- against a goal ----------------------------------------------------------------------------


def plan(goal: GoalStatement, components: list[Component]) -> PlanSpec:
    proposal = DesignProposal(summary="s", rationale="r", components=components)
    return assemble_plan(
        goal, proposal, goal_id="g", plan_id="p", revision=1, provenance=Provenance(planner="llm")
    )


def web_goal(**changes: Any) -> GoalStatement:
    workload = {"kind": "web_service", "expected_rps": 40, "data_stores": [{"kind": "postgres"}]}
    return make_goal(**{"workload": workload, "budget": {"monthly_usd": 1_000}, **changes})


def test_the_reference_design_satisfies_a_dev_web_goal() -> None:
    assert validate_plan(plan(web_goal(), web()), web_goal()) == []


def test_prod_wants_multi_az_backups_and_deletion_protection() -> None:
    goal = web_goal(environment="prod")
    problems = validate_plan(plan(goal, web()), goal)
    where = {p.constraint: p.code for p in problems}
    assert where["components.db.params.multi_az"] is P.MULTI_AZ
    assert where["components.db.params.deletion_protection"] is P.DELETION_PROTECTION
    assert where["components.app.params.min_count"] is P.MULTI_AZ
    prod_ready = web(
        app=c("ecs_service", "app", min_count=2, grants=[{"component": "files", "access": "read"}]),
        db=c("rds_postgres", "db", multi_az=True, deletion_protection=True, allow_from=["app"]),
    )
    assert validate_plan(plan(goal, prod_ready), goal) == []


@pytest.mark.parametrize(
    ("flag", "override", "constraint"),
    [
        (
            "backups",
            {"db": c("rds_postgres", "db", backup_retention_days=3, allow_from=["app"])},
            "components.db.params.backup_retention_days",
        ),
        (
            "backups",
            {"files": c("s3_bucket", "files", versioning=False)},
            "components.files.params.versioning",
        ),
        ("logging", {"net": c("vpc", "net", flow_logs=False)}, "components.net.params.flow_logs"),
        (
            "logging",
            {"lb": c("alb", "lb", target="app", access_logs=False)},
            "components.lb.params.access_logs",
        ),
        ("logging", {}, "components.app.params.log_retention_days"),
        (
            "logging",
            {"files": c("s3_bucket", "files", access_logging=False)},
            "components.files.params.access_logging",
        ),
    ],
)
def test_each_compliance_flag_names_the_parameter_it_needs(
    flag: str, override: dict[str, Component], constraint: str
) -> None:
    goal = web_goal(constraints={"compliance": [flag]})
    problems = validate_plan(plan(goal, web(**override)), goal)
    assert constraint in [p.constraint for p in problems], problems


def test_required_tags_must_be_on_the_plan() -> None:
    goal = web_goal(constraints={"required_tags": {"team": "web"}})
    spec = plan(goal, web()).model_copy(update={"tags": {"managed-by": "infra-crew"}})
    (problem,) = validate_plan(spec, goal)
    assert (problem.code, problem.constraint) == (P.TAGS, "constraints.required_tags")


def test_coverage_and_capacity_of_the_goal() -> None:
    goal = web_goal(
        workload={"kind": "web_service", "expected_rps": 900, "data_stores": [{"kind": "redis"}]}
    )
    problems = validate_plan(plan(goal, web()), goal)
    assert P.NOT_COVERED in codes(problems)  # no elasticache_redis for the redis store
    capacity = next(p for p in problems if p.code is P.CAPACITY)
    assert "100 rps" in capacity.why  # 2 tasks x 0.25 vCPU x 200 rps


def test_a_static_site_with_compute_contradicts_its_goal() -> None:
    goal = make_goal(workload={"kind": "static_site"})
    site = [
        c("s3_bucket", "site", website_origin=True),
        c("cloudfront_distribution", "cdn", origin="site"),
        c("vpc", "net"),
        c("ecs_service", "app"),
    ]
    assert P.CONTRADICTION in codes(validate_plan(plan(goal, site), goal))


def test_over_budget_names_the_budget_that_would_do() -> None:
    goal = web_goal(budget={"monthly_usd": 50})
    over = next(p for p in validate_plan(plan(goal, web()), goal) if p.code is P.OVER_BUDGET)
    assert over.constraint == "budget.monthly_usd"
    assert over.suggestion.startswith("raise budget.monthly_usd to >= ")
