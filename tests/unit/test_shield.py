"""Shield-Lite's pure parts: feeds parsed (RSS 2.0, Atom, NVD CVE API 2.0), versions compared,
a stack's inventory read from a real applied state, matching and its reasons, the catalog fix,
the Slack message, feed locations and back-off."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from crew.settings import Settings
from crew.shield_message import PLAN_FIX_ACTION, render_advisory
from fixtures.plans import c, plan_of
from schemas.plan import PlanSpec
from schemas.shield import (
    Advisory,
    AdvisorySeverity,
    FeedFormat,
    InventoryItem,
    InventoryKind,
    MatchBasis,
    ShieldMatch,
)
from shield.feeds import MAX_SUMMARY, FeedParseError, parse_feed, plain_text
from shield.fix import fix_offer, propose_fix
from shield.inventory import split_image, stack_inventory
from shield.locations import check_feed_location
from shield.matching import match
from shield.versions import compare, in_range, series_overlaps
from tests.unit.support import FIXTURES
from tools.feeds import backoff_s
from tools.state import read_provider_versions

SHIELD = FIXTURES / "shield"
T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)


def fixture_bytes(name: str) -> bytes:
    return (SHIELD / name).read_bytes()


def nvd() -> dict[str, Advisory]:
    kind, advisories = parse_feed(fixture_bytes("nvd-cves.json"), "https://feeds.test/nvd.json")
    assert kind is FeedFormat.NVD
    return {a.advisory_id: a for a in advisories}


def applied_state() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SHIELD / "state-rds.json").read_text())
    return doc


def applied_plan() -> PlanSpec:
    return PlanSpec.model_validate_json((SHIELD / "plan-rds.json").read_text())


def item(product: str, version: str, kind: InventoryKind = InventoryKind.DATABASE) -> InventoryItem:
    return InventoryItem(kind=kind, product=product, version=version, address="aws_x.y")


# -- feeds --------------------------------------------------------------------------------


def test_nvd_entries_carry_severity_ranges_and_links_and_rejected_ones_are_dropped() -> None:
    by_id = nvd()
    assert sorted(by_id) == ["CVE-2024-10979", "CVE-2024-7348", "CVE-2025-21605"]
    pl_perl = by_id["CVE-2024-10979"]
    assert pl_perl.severity is AdvisorySeverity.HIGH
    assert pl_perl.cvss == 8.8
    assert pl_perl.url == "https://www.postgresql.org/support/security/CVE-2024-10979/"
    assert pl_perl.summary.startswith("Incorrect control of environment variables")
    assert pl_perl.published == datetime(2024, 11, 14, 13, 15, 18, 870000, tzinfo=UTC)
    sixteen = [r for r in pl_perl.affected if r.start_including == "16.0"]
    assert [(r.vendor, r.product, r.end_excluding) for r in sixteen] == [
        ("postgresql", "postgresql", "16.5")
    ]


def test_rss_entries_are_plain_text_with_the_cve_they_name() -> None:
    kind, advisories = parse_feed(fixture_bytes("postgres-news.rss"), "https://feeds.test/a.rss")
    assert kind is FeedFormat.RSS
    release, news = advisories
    assert release.advisory_id == "CVE-2025-1094"
    assert "<" not in release.title
    assert "<" not in release.summary
    assert "alert(1)" not in release.summary  # a script's text is not text
    assert release.cvss == 8.1
    assert release.severity is AdvisorySeverity.HIGH
    assert release.url
    assert release.url.startswith("https://www.postgresql.org/about/news/")
    assert news.advisory_id == "news-3001"  # no CVE: the guid
    assert news.severity is AdvisorySeverity.UNKNOWN


def test_atom_entries_use_the_entry_id_and_a_named_severity() -> None:
    kind, advisories = parse_feed(fixture_bytes("hashicorp-security.atom"), "https://f.test/x")
    assert kind is FeedFormat.ATOM
    terraform = advisories[0]
    assert terraform.advisory_id == "tag:discuss.hashicorp.com,2005:Topic/77120"
    assert terraform.title == "HCSEC-2025-13: Terraform <i>module download</i> may follow symlinks"
    assert terraform.severity is AdvisorySeverity.MEDIUM


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\x01 not a feed at all",
        b"<html><body>Hello</body></html>",
        b'{"resultsPerPage": 0}',
        b"{not json",
    ],
)
def test_malformed_feeds_are_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(FeedParseError):
        parse_feed(body, "https://feeds.test/bad")


def test_a_huge_entry_is_cut_to_the_contract_bounds() -> None:
    doc = json.loads(fixture_bytes("nvd-cves.json"))
    doc["vulnerabilities"][0]["cve"]["descriptions"][0]["value"] = "PostgreSQL " * 100_000
    (advisory, *_) = parse_feed(json.dumps(doc).encode(), "f")[1]
    assert len(advisory.summary) == MAX_SUMMARY
    assert len(advisory.title) <= 300


def test_plain_text_decodes_entities_and_drops_tags() -> None:
    assert plain_text("<p>a &amp; <b>b</b>\n\n c</p>", 100) == "a & b c"


# -- versions -----------------------------------------------------------------------------


def test_versions_compare_numerically_and_ranges_hold_their_bounds() -> None:
    assert compare("16.10", "16.2") == 1
    assert compare("16", "16.0") == 0
    assert compare("v1.11.4", "1.11.5") == -1
    assert in_range("16.2", start_including="16.0", end_excluding="16.5")
    assert not in_range("16.5", start_including="16.0", end_excluding="16.5")
    assert in_range("16.5", end_including="16.5")
    assert not in_range("15.9", start_excluding="15.9")
    assert series_overlaps("16", start_including="16.0", end_excluding="16.5")
    assert not series_overlaps("16", start_including="17.0", end_excluding="17.1")
    assert not series_overlaps("16", start_including="12.0", end_excluding="12.21")


# -- inventory (a real state: VPC + RDS PostgreSQL 16.2 applied on moto) --------------------


def test_inventory_of_an_applied_stack_names_its_engine_and_the_crews_tools() -> None:
    providers = read_provider_versions(SHIELD / "workspace")  # its .terraform.lock.hcl
    items = stack_inventory(applied_state(), applied_plan(), provider_versions=providers)
    by_product = {i.product: i for i in items}
    db = by_product["postgresql"]
    assert (db.kind, db.version, db.address, db.component) == (
        InventoryKind.DATABASE,
        "16.2",
        "aws_db_instance.orders",
        "orders",
    )
    assert by_product["terraform"].version == applied_state()["terraform_version"]
    assert by_product["terraform-provider-aws"].version == "5.100.0"


def test_inventory_reads_images_runtimes_kubernetes_and_tls_policies() -> None:
    def res(rtype: str, name: str, **attrs: Any) -> dict[str, Any]:
        return {
            "mode": "managed",
            "type": rtype,
            "name": name,
            "instances": [{"schema_version": 0, "attributes": attrs}],
        }

    doc = {
        "resources": [
            res(
                "aws_ecs_task_definition",
                "api",
                container_definitions=json.dumps(
                    [{"name": "api", "image": "public.ecr.aws/nginx/nginx:1.27.3"}]
                ),
            ),
            res("aws_lambda_function", "fn", runtime="python3.12"),
            res("aws_eks_cluster", "k8s", version="1.30"),
            res(
                "aws_cloudfront_distribution",
                "cdn",
                viewer_certificate=[{"minimum_protocol_version": "TLSv1.2_2021"}],
            ),
            res("aws_lb_listener", "https", ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06"),
            res("aws_elasticache_replication_group", "cache", engine="redis", engine_version="7.1"),
        ]
    }
    got = {(i.kind, i.product, i.version) for i in stack_inventory(doc, None)}
    assert got == {
        (InventoryKind.CONTAINER_IMAGE, "nginx", "1.27.3"),
        (InventoryKind.RUNTIME, "python", "3.12"),
        (InventoryKind.KUBERNETES, "kubernetes", "1.30"),
        (InventoryKind.TLS_POLICY, "cloudfront-tls", "TLSv1.2_2021"),
        (InventoryKind.TLS_POLICY, "elb-tls", "ELBSecurityPolicy-TLS13-1-2-2021-06"),
        (InventoryKind.DATABASE, "redis", "7.1"),
    }
    assert split_image("nginx@sha256:" + "a" * 64) == ("nginx", None)
    assert split_image("localhost:5000/team/app:2.1") == ("app", "2.1")


# -- matching -----------------------------------------------------------------------------


def test_a_cpe_range_matches_the_running_version_with_its_reason_and_fix_version() -> None:
    advisory = nvd()["CVE-2024-10979"]
    found = match(advisory, item("postgresql", "16.2"))
    assert found is not None
    assert found.basis is MatchBasis.CPE_RANGE
    assert found.fixed_in == "16.5"
    assert "runs postgresql 16.2" in found.reason
    assert "from 16.0 before 16.5" in found.reason
    assert match(advisory, item("postgresql", "16.5")) is None
    assert match(advisory, item("mysql", "16.2")) is None
    assert match(nvd()["CVE-2024-7348"], item("postgresql", "16.2")) is None  # only 13.x in CPE


def test_a_release_series_matches_when_the_range_reaches_into_it_and_says_so() -> None:
    found = match(nvd()["CVE-2024-10979"], item("postgresql", "16"))
    assert found is not None
    assert "release series" in found.reason
    redis = match(nvd()["CVE-2025-21605"], item("redis", "7.1"))
    assert redis is not None
    assert redis.fixed_in == "7.2.8"


def test_text_matches_need_the_product_and_a_bound_of_our_series() -> None:
    _, (release, _) = parse_feed(fixture_bytes("postgres-news.rss"), "f")
    found = match(release, item("postgresql", "16.2"))
    assert found is not None
    assert (found.basis, found.fixed_in) == (MatchBasis.TEXT, "16.7")
    assert match(release, item("postgresql", "16.7")) is None
    assert match(release, item("postgresql", "15.12")) is None
    assert match(release, item("mysql", "8.0.36")) is None
    _, (hcsec, vault) = parse_feed(fixture_bytes("hashicorp-security.atom"), "f")
    tf = match(hcsec, item("terraform", "1.11.4", InventoryKind.TOOL))
    assert tf is not None
    assert tf.fixed_in == "1.11.5"
    assert match(hcsec, item("terraform", "1.12.1", InventoryKind.TOOL)) is None
    assert match(vault, item("terraform", "1.11.4", InventoryKind.TOOL)) is None


# -- the fix ------------------------------------------------------------------------------


def test_the_catalog_fixes_an_engine_within_its_major_version_only() -> None:
    plan = applied_plan()
    db = InventoryItem(
        kind=InventoryKind.DATABASE,
        product="postgresql",
        version="16.2",
        address="aws_db_instance.orders",
        component="orders",
    )
    offer = fix_offer(db, plan, "16.5")
    assert offer is not None
    assert (offer.component, offer.current, offer.proposed) == ("orders", "16.2", "16.5")
    proposed = propose_fix(plan, offer)
    assert proposed.revision == plan.revision + 1
    (orders,) = [c for c in proposed.components if c.name == "orders"]
    assert orders.params["engine_version"] == "16.5"
    assert fix_offer(db, plan, "17.1") is None  # a major upgrade is a human's plan
    assert fix_offer(db, plan, None) is None
    tool = item("terraform", "1.11.4", InventoryKind.TOOL)
    assert fix_offer(tool, plan, "1.11.5") is None


def test_a_major_only_catalog_version_is_pinned_to_the_fixed_minor() -> None:
    plan = plan_of([c("vpc", "net"), c("rds_postgres", "db")])
    db = InventoryItem(
        kind=InventoryKind.DATABASE,
        product="postgresql",
        version="16",
        address="aws_db_instance.db",
        component="db",
    )
    offer = fix_offer(db, plan, "16.5")
    assert offer is not None
    assert (offer.current, offer.proposed) == ("16", "16.5")
    with pytest.raises(ValidationError):
        propose_fix(plan, offer.model_copy(update={"proposed": "16.5; drop table"}))


# -- Slack, locations, back-off, settings ---------------------------------------------------


def shield_match(**changes: Any) -> ShieldMatch:
    advisory = nvd()["CVE-2024-10979"].model_copy(
        update={"title": "<!channel> <https://evil.test|click> & more"}
    )
    values: dict[str, Any] = {
        "stack_id": "orders-api.eu-west-1.0123abcd",
        "run_id": "r1",
        "advisory": advisory,
        "item": item("postgresql", "16.2"),
        "basis": MatchBasis.CPE_RANGE,
        "reason": "aws_x.y runs postgresql 16.2",
        "fix": None,
        "first_seen": T0,
        **changes,
    }
    return ShieldMatch(**values)


def test_the_slack_message_escapes_feed_text_and_offers_plan_fix_only_with_a_fix() -> None:
    from schemas.shield import FixOffer

    text, blocks = render_advisory(shield_match(), "http://crew.test")
    dumped = json.dumps(blocks)
    assert "<!channel>" not in dumped
    assert "&lt;!channel&gt;" in dumped
    assert "CVE-2024-10979" in text
    assert "orders-api.eu-west-1.0123abcd" in text
    assert PLAN_FIX_ACTION not in dumped
    fix = FixOffer(component="db", param="engine_version", current="16.2", proposed="16.5")
    _, blocks = render_advisory(shield_match(fix=fix), "http://crew.test")
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    plan_fix = actions["elements"][0]
    assert plan_fix["action_id"] == PLAN_FIX_ACTION
    assert plan_fix["url"] == (
        "http://crew.test/stacks/orders-api.eu-west-1.0123abcd/advisories/CVE-2024-10979#fix"
    )


@pytest.mark.parametrize(
    "feed",
    ["ftp://feeds.test/x", "file:///etc/passwd", "relative/path.json", "https://", "gopher:x"],
)
def test_only_http_urls_and_absolute_paths_are_feeds(feed: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        check_feed_location(feed)
    with pytest.raises(ValidationError, match="not an http"):
        Settings(shield_feeds=feed)


def test_feeds_setting_is_a_comma_separated_list() -> None:
    settings = Settings(shield_feeds="https://a.test/x.rss, /srv/nvd.json,https://a.test/x.rss")
    assert settings.shield_feeds == ["https://a.test/x.rss", "/srv/nvd.json"]


def test_a_failing_feed_backs_off_doubling_up_to_six_hours() -> None:
    assert [backoff_s(n, 600) for n in range(5)] == [0, 600, 1200, 2400, 4800]
    assert backoff_s(30, 3600) == 6 * 3600


# -- fetching (httpx with a swapped transport: no network) ------------------------------------


async def _fetch(handler: Any, feed: str = "https://feeds.test/a.rss", **kw: Any) -> Any:
    import httpx

    from tools.feeds import fetch_feed

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await fetch_feed(
            client,
            feed,
            etag=kw.get("etag"),
            last_modified=kw.get("last_modified"),
            max_bytes=kw.get("max_bytes", 10_000),
        )


async def test_a_fetch_sends_its_validators_and_reads_a_304_as_nothing_new() -> None:
    import httpx

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(304)

    got = await _fetch(handler, etag='"v1"', last_modified="Thu, 13 Feb 2025 13:00:00 GMT")
    assert got.status == "not_modified"
    assert got.etag == '"v1"'
    assert seen[0].headers["If-None-Match"] == '"v1"'
    assert seen[0].headers["If-Modified-Since"] == "Thu, 13 Feb 2025 13:00:00 GMT"


async def test_redirects_are_followed_only_to_http_and_a_big_body_is_refused() -> None:
    import httpx

    from schemas.errors import FeedError

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/a.rss":
            return httpx.Response(301, headers={"Location": "/b.rss"})
        if request.url.path == "/b.rss":
            return httpx.Response(200, content=b"<rss/>", headers={"ETag": '"b"'})
        if request.url.path == "/loop":
            return httpx.Response(302, headers={"Location": "/loop"})
        if request.url.path == "/big":
            return httpx.Response(200, content=b"x" * 20_000)
        return httpx.Response(307, headers={"Location": "ftp://feeds.test/x"})

    got = await _fetch(handler)
    assert (got.status, got.body, got.etag) == ("fetched", b"<rss/>", '"b"')
    with pytest.raises(FeedError, match="only http"):
        await _fetch(handler, "https://feeds.test/elsewhere")
    with pytest.raises(FeedError, match="redirected more than"):
        await _fetch(handler, "https://feeds.test/loop")
    with pytest.raises(FeedError, match=r"larger than|more than the"):
        await _fetch(handler, "https://feeds.test/big")


async def test_timeouts_and_errors_become_feed_errors_and_files_are_read(tmp_path: Any) -> None:
    import httpx

    from schemas.errors import FeedError

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    with pytest.raises(FeedError, match="timed out"):
        await _fetch(slow)
    with pytest.raises(FeedError, match="HTTP 500"):
        await _fetch(lambda request: httpx.Response(500))
    path = tmp_path / "nvd.json"
    path.write_bytes(fixture_bytes("nvd-cves.json"))
    first = await _fetch(slow, str(path), max_bytes=100_000)
    assert first.status == "fetched"
    assert first.last_modified
    again = await _fetch(slow, str(path), last_modified=first.last_modified, max_bytes=100_000)
    assert again.status == "not_modified"
    with pytest.raises(FeedError, match="could not be read"):
        await _fetch(slow, str(tmp_path / "missing.json"))


def test_the_cli_prints_feeds_matches_and_their_reasons_escaped() -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from cli.render import out
    from cli.shield import _print_poll
    from schemas.shield import FeedOutcome, FeedStatus, FixOffer, ShieldPollReport

    fix = FixOffer(component="db", param="engine_version", current="16.2", proposed="16.5")
    report = ShieldPollReport(
        polled_at=T0,
        trigger="cli:alice",
        feeds=[
            FeedStatus(feed="https://feeds.test/nvd.json", outcome=FeedOutcome.FETCHED, entries=3),
            FeedStatus(
                feed="https://feeds.test/down", outcome=FeedOutcome.FAILED, error="HTTP [503]"
            ),
        ],
        stacks=1,
        matched=[shield_match(fix=fix)],
        known=0,
    )
    with out.capture() as captured:
        _print_poll(report)
    text = captured.get()
    assert "CVE-2024-10979" in text
    assert "db -> 16.5" in text
    assert "HTTP [503]" in text  # rich markup in feed text is printed, not interpreted
    assert "aws_x.y runs postgresql 16.2" in text
    helped = CliRunner().invoke(app, ["shield", "--help"], env={"COLUMNS": "200"}, color=False)
    assert helped.exit_code == 0
    assert all(command in helped.stdout for command in ("poll", "list", "plan-fix"))


def test_a_tls_policy_matches_an_advisory_that_names_it() -> None:
    advisory = Advisory(
        advisory_id="AWS-2026-004",
        title="ELBSecurityPolicy-2016-08 still negotiates TLS 1.0 and 1.1",
        summary="Move listeners to ELBSecurityPolicy-TLS13-1-2-2021-06.",
        feed="f",
    )
    old = item("elb-tls", "ELBSecurityPolicy-2016-08", InventoryKind.TLS_POLICY)
    found = match(advisory, old)
    assert found is not None
    assert "uses TLS policy ELBSecurityPolicy-2016-08" in found.reason
    new = item("elb-tls", "ELBSecurityPolicy-TLS13-1-2-2021-06", InventoryKind.TLS_POLICY)
    assert match(advisory, new) is None  # named only as what to move to
    newer = item("elb-tls", "ELBSecurityPolicy-TLS13-1-3-2021-06", InventoryKind.TLS_POLICY)
    assert match(advisory, newer) is None
