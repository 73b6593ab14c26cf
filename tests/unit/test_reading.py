"""Atlas's reader (catalog/reading/): paraphrases, units, schedules, typos, languages, service
names and negation read the same. Phrasings here are deliberately not those of the goal
corpus (tests/fixtures/goals/), which the fidelity benchmark scores."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalog.reading import Reading, read_goal
from catalog.reading.quantities import number
from catalog.reading.services import service_index
from catalog.reading.typos import distance
from schemas.goal import GoalStatement
from tests.unit.support import ROOT


def goal(description: str, **fields: Any) -> GoalStatement:
    return GoalStatement.model_validate(
        {
            "schema_version": "0.1",
            "title": fields.pop("title", "a goal"),
            "description": description,
            "cloud": "aws",
            "region": fields.pop("region", "eu-west-1"),
            "budget": {"monthly_usd": fields.pop("budget", 500)},
            **fields,
        }
    )


def read(description: str, **fields: Any) -> Reading:
    return read_goal(goal(description, **fields))


def names(description: str, **fields: Any) -> set[str]:
    return {a.name for a in read(description, **fields).asks}


@pytest.mark.parametrize(
    "text",
    [
        "The shop has to stay up when an availability zone goes dark; HA across AZs please.",
        "Spread it over several availability zones.",
        "It must survive the failure of one zone.",
        "Highly-available checkout backend with a Postgres database",
        "We cannot have a single point of failure anywhere: no single point of failure.",
        "Der Dienst muss hochverfügbar sein.",
        "Le service doit être en haute disponibilité.",
        "Target 99.95% uptime for the api.",
        "Run it in two AZs with failover for the database.",
    ],
)
def test_multi_az_paraphrases(text: str) -> None:
    assert "availability.multi_az" in names(text)


@pytest.mark.parametrize(
    "text",
    [
        "An internal tool; downtime is fine at night, single-AZ is enough.",
        "It doesn't need to be highly available, it's a test rig.",
        "HA is not required for this prototype API.",
    ],
)
def test_single_az_paraphrases_win_over_the_words_they_contain(text: str) -> None:
    found = names(text)
    assert "availability.single_az" in found
    assert "availability.multi_az" not in found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Refresh the cache nightly at 03:00.", "cron(0 3 * * ? *)"),
        ("A report job every day at 3 in the morning.", "cron(0 3 * * ? *)"),
        ("The job runs once a week on Sunday.", "cron(0 2 ? * SUN *)"),
        ("Poll the partner feed every 15 minutes.", "rate(15 minutes)"),
        ("Sync inventory hourly.", "rate(1 hour)"),
        ("Send the digest every weekday at 7am.", "cron(0 7 ? * MON-FRI *)"),
        ("Rebuild the index each Saturday at 11pm.", "cron(0 23 ? * SAT *)"),
        ("Le traitement tourne tous les jours à 2h.", "cron(0 2 * * ? *)"),
        ("Der Export läuft jeden Sonntag um 4 Uhr.", "cron(0 4 ? * SUN *)"),
        ("El proceso se ejecuta cada hora.", "rate(1 hour)"),
        ("Close the books on the first of every month.", "cron(0 2 1 * ? *)"),
        ("Run it every 6 hours.", "rate(6 hours)"),
        ("Schedule: cron(30 4 * * ? *) for the cleanup task.", "cron(30 4 * * ? *)"),
    ],
)
def test_schedules(text: str, expected: str) -> None:
    ask = read(text).get("schedule")
    assert ask is not None
    assert ask.params["expression"] == expected


@pytest.mark.parametrize(
    ("text", "rps"),
    [
        ("Expect 500 requests per second at peak.", 500),
        ("about 2k rps during sales", 2000),
        ("It handles 1,200 req/s.", 1200),
        ("peak of 40 qps", 40),
        ("Wir erwarten 800 Anfragen pro Sekunde.", 800),
        ("Environ 300 requêtes par seconde.", 300),
        ("unas 250 peticiones por segundo", 250),
        ("6000 requests per minute", 100),
        ("roughly 2.6 million requests a day", 100.31),
    ],
)
def test_request_rates(text: str, rps: float) -> None:
    ask = read(text).get("throughput.rps")
    assert ask is not None
    assert ask.params["rps"] == pytest.approx(rps, rel=0.01)


def test_sizes_attach_to_the_store_they_describe() -> None:
    reading = read("A Postgres database of about 200 GB and a bucket holding 2 TB of scans.")
    postgres, bucket = reading.get("store.postgres"), reading.get("store.object_storage")
    assert postgres is not None
    assert postgres.params["size_gb"] == 200
    assert bucket is not None
    assert bucket.params["size_gb"] == 2048


def test_french_octets_and_not_the_word_to() -> None:
    reading = read("Une base PostgreSQL de 500 Go. Grow from 5 to 10 users.")
    postgres = reading.get("store.postgres")
    assert postgres is not None
    assert postgres.params["size_gb"] == 500


@pytest.mark.parametrize(
    ("text", "name", "days"),
    [
        ("Keep the access logs for 90 days.", "retention.logs", 90),
        ("Database backups must be retained for 30 days.", "retention.backups", 30),
        ("Purge queue messages after 4 days.", "retention.messages", 4),
        ("Delete uploaded files after 6 months.", "retention.objects", 180),
        ("Logs aufbewahren für 2 Jahre.", "retention.logs", 730),
        ("Conserver les sauvegardes pendant 14 jours.", "retention.backups", 14),
    ],
)
def test_retention(text: str, name: str, days: int) -> None:
    ask = read(text).get(name)
    assert ask is not None
    assert ask.params["days"] == days


def test_a_deadline_is_not_a_retention() -> None:
    assert not read("We launch in 30 days with a small API.").named("retention.")


@pytest.mark.parametrize(
    "text",
    [
        "A brochure site for the bakery.",
        "Landing page for the spring campaign.",
        "Product manuals as HTML files only.",
        "Un site statique pour notre association.",
        "Una página estática con la carta del restaurante.",
        "Our docs site, generated with mkdocs.",
    ],
)
def test_static_site_paraphrases(text: str) -> None:
    found = names(text)
    assert "workload.static_site" in found
    assert "workload.web_service" not in found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Index the documents with Amazon Kendra.", "aws.kendra"),
        ("Orchestrate the steps with Step Functions.", "workflow.orchestration"),
        ("Three Lambda functions behind the scenes.", "compute.serverless"),
        ("Sessions go in DynamoDB.", "store.nosql"),
        ("Stream the events through MSK.", "messaging.stream"),
        ("Use AWS Batch for the renders.", "aws.batch"),
        ("Send the receipts with SES.", "messaging.email"),
        ("Users sign in through Cognito.", "identity.user_auth"),
        ("Query the lake with Athena.", "analytics.warehouse"),
        ("Track assets with AWS IoT Core.", "aws.iot"),
        ("Amazon Managed Grafana for the dashboards.", "aws.grafana"),
    ],
)
def test_aws_services_by_name(text: str, expected: str) -> None:
    assert expected in names(text)


def test_common_words_are_not_services() -> None:
    found = names("A batch job that runs nightly and glues the exports together; backups daily.")
    assert not any(n.startswith("aws.") for n in found)


def test_every_botocore_service_is_indexed() -> None:
    index = service_index()
    data = json.loads((ROOT / "catalog/data/aws_services.json").read_text())
    assert len(index.services) == len(data["services"]) > 300
    assert {"lambda", "dynamodb", "sns", "kinesis", "kendra"} <= set(index.services)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("An api with a postgress database.", "store.postgres"),
        ("A small databse for the orders.", "store.relational"),
        ("Deploy on kuberentes.", "compute.kubernetes"),
        ("A static webiste for the club.", "workload.static_site"),
        ("Put a Redsi cache in front.", "store.redis"),
        ("serverles functions", "compute.serverless"),
        ("Make it highly avialable.", "availability.multi_az"),
    ],
)
def test_typos(text: str, expected: str) -> None:
    assert expected in names(text)


def test_typo_spans_quote_the_original_words() -> None:
    text = "An API with a postgress database and a Redsi cache."
    reading = read(text)
    for ask in reading.asks:
        if ask.source.from_text:
            assert text[ask.source.start : ask.source.end] == ask.source.text
    assert ("postgress", "postgres") in reading.fixes


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("An API, no database needed.", "store.relational"),
        ("A web app without a cache.", "store.redis"),
        ("We don't need Redis for this one.", "store.redis"),
        ("A landing page; no SSH access please.", "refused.open_port"),
        ("The bucket must not be publicly readable.", "refused.public_bucket"),
    ],
)
def test_negation(text: str, absent: str) -> None:
    assert absent not in names(text)


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("Serve it at docs.example.com behind a CDN.", "docs.example.com"),
        ("A shop on https://www.ma-boutique.fr", "www.ma-boutique.fr"),
    ],
)
def test_domains(text: str, host: str) -> None:
    ask = read(text).get("domain")
    assert ask is not None
    assert ask.params["host"] == host


def test_file_names_emails_and_frameworks_are_not_domains() -> None:
    reading = read("A Next.js front end; mail ops@example.com; upload index.html and app.js.")
    assert reading.get("domain") is None


def test_text_that_conflicts_with_a_field_notes_it_and_the_field_wins() -> None:
    reading = read(
        "About 900 requests per second, single AZ is fine.",
        workload={"kind": "api", "expected_rps": 200, "availability": "multi_az"},
    )
    rps = reading.get("throughput.rps")
    assert rps is not None
    assert rps.params["rps"] == 200
    assert rps.source.field
    assert rps.note
    assert "900" in rps.note
    assert "field" in rps.note
    multi = reading.get("availability.multi_az")
    assert multi is not None
    assert multi.note
    assert "single" in multi.note.lower()
    assert reading.get("availability.single_az") is None


def test_region_named_in_words() -> None:
    reading = read("Host it in Frankfurt close to our users.", region="eu-west-1")
    region = reading.get("region")
    assert region is not None
    assert region.params["region"] == "eu-west-1"
    assert region.note
    assert "eu-central-1" in region.note


def test_structured_fields_are_asks() -> None:
    reading = read(
        "Anything.",
        environment="prod",
        workload={"kind": "api", "data_stores": [{"kind": "postgres", "size_gb": 50}]},
        constraints={"compliance": ["backups"], "required_tags": {"team": "x"}},
    )
    fields = {a.name: a.source.field for a in reading.asks}
    assert fields["workload.api"] == "workload.kind"
    assert fields["store.postgres"] == "workload.data_stores[0]"
    assert fields["environment"] == "environment"
    assert fields["compliance.backups"] == "constraints.compliance"
    assert fields["tags"] == "constraints.required_tags"
    assert fields["budget"] == "budget.monthly_usd"


def test_spans_are_exact() -> None:
    text = "Nightly at 02:30 a container job compacts 3 TB in the archive bucket, HA please."
    for ask in read(text).asks:
        if ask.source.from_text:
            assert text[ask.source.start : ask.source.end] == ask.source.text


def test_numbers() -> None:
    assert number("1,500") == 1500
    assert number("1,5") == 1.5
    assert number("three") == 3
    assert number("2", "k") == 2000


def test_distance() -> None:
    assert distance("postgres", "postgers", 2) == 1
    assert distance("redis", "cache", 1) == 2
