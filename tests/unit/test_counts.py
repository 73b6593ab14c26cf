"""Counts and named instances (catalog/reading/counts.py -> catalog/rules.py -> the trace ->
Forge's renderer): "two queues", "5 buckets", "a billing queue and a shipping queue" are read
with their count, designed as that many components with distinct names, traced as met (or
unsupported with the reason), and render to that many resources."""

from __future__ import annotations

import re
from typing import Any

import pytest

from catalog.planner import design_for
from catalog.reading import read_goal
from catalog.reading.counts import MAX_COUNT, slug
from catalog.rules import MAX_INSTANCES
from catalog.trace import trace_requirements
from schemas.goal import GoalStatement
from schemas.plan import Component, Requirement
from tests.unit.render_support import blocks, parse
from tools.render import render_workspace_files


def goal(description: str, **fields: Any) -> GoalStatement:
    return GoalStatement.model_validate(
        {
            "schema_version": "0.1",
            "title": "counted",
            "description": description,
            "cloud": "aws",
            "region": fields.pop("region", "eu-west-1"),
            "budget": {"monthly_usd": fields.pop("budget", 5_000)},
            **fields,
        }
    )


def ask_params(description: str, name: str) -> dict[str, Any]:
    reading = read_goal(goal(description))
    ask = reading.get(name)
    assert ask is not None, f"{name} not read in {description!r}: {reading.asks}"
    return dict(ask.params)


def designed(description: str) -> tuple[list[Component], list[Requirement]]:
    g = goal(description)
    reading = read_goal(g)
    design = design_for(g, reading)
    assert design is not None
    return design.components, trace_requirements(g, reading, design.components)


def requirement(requirements: list[Requirement], name: str) -> Requirement:
    return next(r for r in requirements if r.ask.name == name)


@pytest.mark.parametrize(
    ("text", "capability", "count", "names"),
    [
        ("An API that writes to two queues.", "messaging.queue", 2, None),
        ("Store the uploads in 5 buckets.", "store.object_storage", 5, None),
        (
            "Orders go out to a billing queue and a shipping queue.",
            "messaging.queue",
            2,
            "billing,shipping",
        ),
        ("billing and shipping queues, drained by workers", "messaging.queue", 2,
         "billing,shipping"),
        ("Three SQS queues: ingest, resize and notify.", "messaging.queue", 3,
         "ingest,resize,notify"),
        ("A web app with a couple of Redis caches.", "store.redis", 2, None),
        ("Two MySQL databases (orders, users) behind the app.", "store.mysql", 2,
         "orders,users"),
        ("An API made of three services: users, orders and payments.", "compute.service", 3,
         "users,orders,payments"),
        ("Four microservices behind load balancers.", "workload.api", 4, None),
        ("Deux files d'attente pour les commandes.", "messaging.queue", 2, None),
        ("Drei S3-Buckets für die Rohdaten.", "store.object_storage", 3, None),
        ("Tres colas y un servicio que las procesa.", "messaging.queue", 3, None),
        ("Run 3 nightly jobs that export reports.", "workload.batch", 3, None),
        ("A queue for orders and another one for refunds.", "messaging.queue", 2,
         "orders,refunds"),
        ("Two SQS queues, one for invoicing and one for stock.", "messaging.queue", 2,
         "invoicing,stock"),
        ("Set up 3 S3 buckets: logs, backups, and assets.", "store.object_storage", 3,
         "logs,backups,assets"),
        ("Create two buckets - raw and processed.", "store.object_storage", 2, "raw,processed"),
        ("Two Node.js services behind a shared ALB.", "compute.service", 2, None),
        ("A pair of Postgres databases for the app.", "store.postgres", 2, None),
    ],
)  # fmt: skip
def test_counts_and_names_are_read(
    text: str, capability: str, count: int, names: str | None
) -> None:
    params = ask_params(text, capability)
    assert params.get("count") == count
    assert params.get("names") == names


@pytest.mark.parametrize(
    ("text", "capability"),
    [
        ("A 2 TB bucket for the archive.", "store.object_storage"),
        ("A queue, and a worker that drains the queue.", "messaging.queue"),
        ("A private, encrypted bucket for logs.", "store.object_storage"),
        ("One queue with a dead-letter queue.", "messaging.queue"),
        ("Keep 30 days of messages in the queue.", "messaging.queue"),
    ],
)
def test_one_instance_has_no_count(text: str, capability: str) -> None:
    params = ask_params(text, capability)
    assert "count" not in params
    assert "names" not in params


def test_names_are_bounded_slugs() -> None:
    assert slug("Billing") == "billing"
    assert slug("café") == "cafe"
    assert slug("the") is None
    assert slug("private") is None
    assert slug("3") is None
    assert slug("x" * 40) is None
    assert slug('"; rm -rf') is None
    params = ask_params("Queues named alpha, beta, gamma and delta for the api.",
                        "messaging.queue")  # fmt: skip
    assert params["names"] == "alpha,beta,gamma,delta"
    assert params["count"] == 4
    assert ask_params(f"{MAX_COUNT + 40} queues", "messaging.queue")["count"] == MAX_COUNT


def test_fanout_queues_each_get_a_worker() -> None:
    components, requirements = designed(
        "New orders go to an SNS topic; a billing queue and a shipping queue both subscribe, "
        "each drained by a small service."
    )
    queues = [c.name for c in components if c.type == "sqs_queue"]
    workers = {c.name: c for c in components if c.type == "ecs_service"}
    assert queues == ["billing_queue", "shipping_queue"]
    assert sorted(workers) == ["billing_worker", "shipping_worker"]
    assert [g["component"] for g in workers["billing_worker"].params["grants"]] == ["billing_queue"]
    queue = requirement(requirements, "messaging.queue")
    assert queue.status.value == "met"
    assert queue.by == queues
    assert requirement(requirements, "workload.queue_worker").status.value == "met"


def test_counted_services_each_get_a_load_balancer() -> None:
    components, requirements = designed(
        "A public API made of three services: users, orders and payments, with a Postgres "
        "database, served at api.example.com."
    )
    services = [c.name for c in components if c.type == "ecs_service"]
    albs = {c.params["target"]: c for c in components if c.type == "alb"}
    assert services == ["users_api", "orders_api", "payments_api"]
    assert sorted(albs) == sorted(services)
    assert albs["users_api"].params["domain_name"] == "api.example.com"
    assert albs["orders_api"].params["domain_name"] is None
    db = next(c for c in components if c.type == "rds_postgres")
    assert set(db.params["allow_from"]) == set(services)
    assert requirement(requirements, "compute.service").status.value == "met"


@pytest.mark.parametrize(
    ("text", "ctype", "count"),
    [
        ("An API with two queues and 5 buckets.", "sqs_queue", 2),
        ("An API with two queues and 5 buckets.", "s3_bucket", 5),
        ("A web app with two Postgres databases.", "rds_postgres", 2),
        ("Three nightly jobs compact the archive bucket.", "ecs_scheduled_task", 3),
        ("Two queues, three workers drain them.", "ecs_service", 3),
    ],
)
def test_the_design_has_the_count(text: str, ctype: str, count: int) -> None:
    components, requirements = designed(text)
    names = [c.name for c in components if c.type == ctype]
    assert len(names) == count
    assert len(set(names)) == count
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{0,62}", n) for n in names)
    unmet = [r for r in requirements if r.status.value == "unsupported"]
    assert not unmet, unmet


@pytest.mark.parametrize(
    ("text", "capability", "note"),
    [
        ("3 EC2 instances behind a load balancer for our web app.", "compute.vm",
         "3 instances run"),
        ("A web service running six containers.", "compute.container", "6 containers run"),
    ],
)  # fmt: skip
def test_counted_instances_and_containers_are_capacity(
    text: str, capability: str, note: str
) -> None:
    _, requirements = designed(text)
    found = requirement(requirements, capability)
    assert found.status.value == "met"
    assert found.note is not None
    assert note in found.note


def test_a_count_beyond_the_bound_is_not_met_and_says_why() -> None:
    components, requirements = designed("An API that fans out to 24 queues.")
    assert len([c for c in components if c.type == "sqs_queue"]) == MAX_INSTANCES
    queue = requirement(requirements, "messaging.queue")
    assert queue.status.value == "unsupported"
    assert queue.note is not None
    assert "24 queues asked for" in queue.note


def test_counted_static_sites_each_get_a_cdn() -> None:
    components, requirements = designed("Two static marketing sites behind CloudFront.")
    cdns = {c.name: c.params["origin"] for c in components if c.type == "cloudfront_distribution"}
    assert cdns == {"cdn": "site", "cdn_2": "site_2"}
    assert requirement(requirements, "workload.static_site").status.value == "met"


def test_counted_components_render() -> None:
    from nodes.atlas import plan_goal
    from schemas.plan import PlanSpec

    plan = plan_goal(
        goal(
            "A web app with a billing queue and a shipping queue, each drained by a worker, "
            "three buckets and two Postgres databases."
        ),
        goal_id="g-counted",
        plan_id="g-counted-r1",
    )
    assert isinstance(plan, PlanSpec), plan
    main = parse(render_workspace_files(plan)["main.tf"])
    queues = blocks(main, "resource", "aws_sqs_queue")
    assert {"billing_queue", "shipping_queue", "billing_queue_dlq", "shipping_queue_dlq"} <= set(
        queues
    )
    assert len(blocks(main, "resource", "aws_s3_bucket")) >= 3
    assert {"db", "db_2"} <= set(blocks(main, "resource", "aws_db_instance"))
    services = blocks(main, "resource", "aws_ecs_service")
    assert {"web", "billing_worker", "shipping_worker"} <= set(services)
