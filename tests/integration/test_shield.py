"""Shield-Lite end to end: a loopback HTTP server serves advisory feeds (RSS, Atom, NVD JSON,
one redirecting to file://, one down); a deployed stack (a real state recorded from a terraform
apply on moto: VPC + RDS PostgreSQL 16.2) is matched; the match becomes an OpsEvent on the gate
log and the outbox, a Slack message (FakeSlack through slack_sdk) with a Plan fix button, a
console entry and a metric; the second poll is answered 304 and announces nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest

from api.app import create_app
from crew.container import Services, open_services
from crew.settings import Settings
from memory.runs import Projection, write_projection
from nodes.forge.common import revision_dir
from schemas.audit import AuditRecord
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec
from schemas.states import ConductorState
from tests.conftest import example_goal
from tests.integration._support import serve_app
from tests.slack_support import BOT_TOKEN, CHANNEL, SIGNING_SECRET, FakeSlack
from tests.unit.support import FIXTURES, venv_tool
from tools.backend import STATE_FILE
from tools.stack import StackKey

pytestmark = pytest.mark.integration

SHIELD = FIXTURES / "shield"
RUN_ID = "20261207T120000-5d1e1d01"
LAST_MODIFIED = "Thu, 13 Feb 2025 13:00:00 GMT"
HCSEC = "tag:discuss.hashicorp.com,2005:Topic/77120"


@dataclass
class FeedServer:
    """Advisory feeds on a loopback port, answering conditional GETs as a CDN would."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def start(self) -> FeedServer:
        feeds = {
            "/pg.rss": ("application/rss+xml", (SHIELD / "postgres-news.rss").read_bytes()),
            "/hcsec.atom": (
                "application/atom+xml",
                (SHIELD / "hashicorp-security.atom").read_bytes(),
            ),
            "/nvd.json": ("application/json", (SHIELD / "nvd-cves.json").read_bytes()),
        }
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers.items())))
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "file:///etc/passwd")
                    self.end_headers()
                    return
                if self.path not in feeds:
                    self.send_response(503)
                    self.end_headers()
                    return
                kind, body = feeds[self.path]
                etag = f'"{self.path.strip("/")}-1"'
                if (
                    self.headers.get("If-None-Match") == etag
                    or self.headers.get("If-Modified-Since") == LAST_MODIFIED
                ):
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if self.path != "/nvd.json":  # the NVD file answers with Last-Modified only
                    self.send_header("ETag", etag)
                self.send_header("Last-Modified", LAST_MODIFIED)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def cli_env(settings: Settings) -> dict[str, str]:
    """The CLI on the same database, data dir and feeds as the app under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREW_", "AWS_"))}
    assert settings.database_url is not None
    env.update(
        CREW_DATABASE_URL=settings.database_url.get_secret_value(),
        CREW_DATA_DIR=str(settings.data_dir),
        CREW_SHIELD_FEEDS=",".join(settings.shield_feeds),
        COLUMNS="200",
    )
    return env


def crew(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_tool("crew", "the project's CLI: make install"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def seed_deployed_stack(services: Services, plan: PlanSpec) -> str:
    """A run that applied `plan`: its row, audit rows and projection as a worker leaves them,
    the stack's state (recorded from a real apply on moto) and its workspace's lock file."""
    now = datetime.now(UTC)
    goal = GoalStatement.model_validate(example_goal(goal_id=plan.goal_id, region=plan.region))
    await services.runs.create(goal, run_id=RUN_ID, at=now)
    stack = StackKey.of(plan)
    records = [
        AuditRecord(
            run_id=RUN_ID,
            seq=1,
            at=now,
            actor="atlas",
            event=EventType.PLAN_PENDING,
            from_state=ConductorState.PENDING,
            to_state=ConductorState.IN_PROGRESS,
            artifact_type="PlanSpec",
            artifact=plan.model_dump(mode="json"),
        ),
        AuditRecord(
            run_id=RUN_ID,
            seq=2,
            at=now,
            actor="forge",
            event=EventType.APPLY_DONE,
            from_state=ConductorState.APPLYING,
            to_state=ConductorState.DONE,
        ),
    ]
    projection = Projection(
        state=ConductorState.DONE,
        last_seq=2,
        summary={"plan_id": plan.plan_id, "stack_id": stack.id, "outcome": "applied"},
        records_after=lambda seq: [r for r in records if r.seq > seq],
    )
    async with services.pool.connection() as conn, conn.transaction():
        await write_projection(conn.cursor(), RUN_ID, projection, None)
    settings = services.settings
    state_dir = settings.tf_state_dir / stack.id
    state_dir.mkdir(parents=True)
    (state_dir / STATE_FILE).write_bytes((SHIELD / "state-rds.json").read_bytes())
    workspace = revision_dir(settings.workspaces_dir, RUN_ID, 1)
    workspace.mkdir(parents=True)
    lock = (SHIELD / "workspace" / ".terraform.lock.hcl").read_bytes()
    (workspace / ".terraform.lock.hcl").write_bytes(lock)
    return stack.id


async def test_advisories_are_matched_forwarded_once_and_shown(
    database_url: str,
    make_settings: Callable[..., Settings],
    feeds: FeedServer,
    slack: FakeSlack,
) -> None:
    feed_urls = [feeds.url(p) for p in ("/pg.rss", "/hcsec.atom", "/nvd.json", "/moved", "/down")]
    settings = make_settings(
        database_url=database_url,
        shield_feeds=",".join(feed_urls),
        shield_interval_s=0,  # polled on demand here
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_channel=CHANNEL,
        slack_api_url=slack.api_url,
        public_url="http://crew.test",
    )
    plan = PlanSpec.model_validate_json((SHIELD / "plan-rds.json").read_text())
    async with open_services(settings, role="test") as services:
        stack_id = await seed_deployed_stack(services, plan)

    app = create_app(settings, run_worker=False)
    async with serve_app(app) as api:
        services = app.state.services
        first = await api.post("/v1/shield/poll")
        assert first.status_code == 200, first.text
        report = first.json()
        outcomes = {f["feed"]: f["outcome"] for f in report["feeds"]}
        assert [outcomes[u] for u in feed_urls] == [
            "fetched",
            "fetched",
            "fetched",
            "failed",
            "failed",
        ]
        moved = next(f for f in report["feeds"] if f["feed"].endswith("/moved"))
        assert "only http(s) is followed" in moved["error"]
        assert report["stacks"] == 1
        matched = {m["advisory"]["advisory_id"]: m for m in report["matched"]}
        assert set(matched) == {
            "CVE-2024-10979",  # NVD: CPE range 16.0 <= v < 16.5
            "CVE-2025-1094",  # RSS: "before PostgreSQL ... 16.7"
            HCSEC,  # Atom: terraform prior to 1.11.5
        }
        nvd = matched["CVE-2024-10979"]
        assert nvd["item"]["address"] == "aws_db_instance.orders"
        assert nvd["item"]["version"] == "16.2"
        assert nvd["basis"] == "cpe_range"
        assert nvd["fix"] == {
            "component": "orders",
            "param": "engine_version",
            "current": "16.2",
            "proposed": "16.5",
        }
        assert matched[HCSEC]["fix"] is None
        assert matched["CVE-2025-1094"]["fix"]["proposed"] == "16.7"  # "before ... 16.7"

        # the event and its audit row (gate log), once per (stack, advisory)
        entries = [e for e in await services.gate.entries(RUN_ID) if e.kind == "shield.advisory"]
        assert len(entries) == 3
        assert any("CVE-2024-10979 (high) affects stack" in e.detail for e in entries)
        async with services.pool.connection() as conn:
            events = await (
                await conn.execute(
                    "SELECT body FROM crew_events WHERE type = 'shield.advisory' ORDER BY pk"
                )
            ).fetchall()
        assert len(events) == 3
        assert {e["body"]["payload_type"] for e in events} == {"ShieldMatch"}

        # Slack: one message per match, the fixable one with a Plan fix button
        posts = slack.calls_to("/api/chat.postMessage")
        assert len(posts) == 3
        assert all(p.body["channel"] == CHANNEL for p in posts)
        (fixable,) = [p for p in posts if "CVE-2024-10979" in p.body["text"]]
        buttons = next(b for b in fixable.body["blocks"] if b["type"] == "actions")["elements"]
        assert buttons[0]["text"]["text"] == "Plan fix"
        assert buttons[0]["url"] == (
            f"http://crew.test/stacks/{stack_id}/advisories/CVE-2024-10979#fix"
        )
        assert all("<b>" not in json.dumps(p.body["blocks"]) for p in posts)

        # the second poll, from the CLI this time: 304s, nothing announced twice
        polled = await asyncio.to_thread(crew, cli_env(settings), "shield", "poll", "--json")
        assert polled.returncode == 0, polled.stderr  # failing feeds back off: skipped
        again = json.loads(polled.stdout)
        assert {f["outcome"] for f in again["feeds"][:3]} == {"not_modified"}
        assert {f["outcome"] for f in again["feeds"][3:]} == {"skipped"}  # backing off
        assert again["matched"] == []
        assert again["known"] == 3
        conditional = [h for p, h in feeds.requests if p == "/pg.rss"][-1]
        assert conditional["If-None-Match"] == '"pg.rss-1"'
        nvd_again = [h for p, h in feeds.requests if p == "/nvd.json"][-1]
        assert nvd_again["If-Modified-Since"] == LAST_MODIFIED
        assert len(slack.calls_to("/api/chat.postMessage")) == 3
        assert (
            len([e for e in await services.gate.entries(RUN_ID) if e.kind == "shield.advisory"])
            == 3
        )

        # REST: the list, the Plan fix, and the errors
        listed = (await api.get("/v1/advisories", params={"stack_id": stack_id})).json()
        assert len(listed) == 3
        assert all(a["slack_posted"] for a in listed)
        fix = await api.post(f"/v1/advisories/{stack_id}/CVE-2024-10979/plan-fix")
        assert fix.status_code == 200, fix.text
        proposal = fix.json()
        (orders,) = [c for c in proposal["plan"]["components"] if c["name"] == "orders"]
        assert orders["params"]["engine_version"] == "16.5"
        assert proposal["plan"]["revision"] == plan.revision + 1
        no_fix = await api.post(f"/v1/advisories/{stack_id}/{quote(HCSEC, safe='')}/plan-fix")
        assert no_fix.status_code == 409, no_fix.text
        assert "a human plans this change" in no_fix.json()["message"]
        unknown = await api.post(f"/v1/advisories/{stack_id}/CVE-2000-0001/plan-fix")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "advisory_not_found"
        assert (await api.get("/v1/advisories", params={"stack_id": "nope"})).status_code == 404

        # the console: overall, per stack, one advisory with its Plan fix
        overall = await api.get("/advisories")
        assert overall.status_code == 200
        assert "CVE-2024-10979" in overall.text
        assert "CVE-2025-1094" in overall.text
        assert "only http(s) is followed" in overall.text  # the failing feed is reported
        assert "<b>CVE-2025-1094</b>" not in overall.text
        stack_page = await api.get(f"/stacks/{stack_id}")
        assert 'id="stack-advisories"' in stack_page.text
        assert "CVE-2024-10979" in stack_page.text
        one = await api.get(f"/stacks/{stack_id}/advisories/CVE-2024-10979")
        assert one.status_code == 200
        assert "orders: engine_version 16.2 -&gt; 16.5" in one.text
        hcsec = await api.get(f"/stacks/{stack_id}/advisories/{quote(HCSEC, safe='')}")
        assert hcsec.status_code == 200
        assert "a human plans this change" in hcsec.text

        metrics = (await api.get("/metrics")).text
        assert f'crew_shield_advisories{{severity="high",stack_id="{stack_id}"}} 2.0' in metrics
        assert "crew_shield_feed_failures_total 2.0" in metrics  # /moved and /down

        # AWS upgrades the minor version (what `engine_version_actual` then says): the next
        # poll resolves what 16.5 fixed and keeps what it does not (16.7 fixes CVE-2025-1094)
        state_file = settings.tf_state_dir / stack_id / STATE_FILE
        state = json.loads(state_file.read_text())
        (db,) = [r for r in state["resources"] if r["type"] == "aws_db_instance"]
        db["instances"][0]["attributes"]["engine_version_actual"] = "16.5"
        state_file.write_text(json.dumps(state))
        third = (await api.post("/v1/shield/poll")).json()
        assert (third["matched"], third["known"]) == ([], 2)
        still = {
            a["match"]["advisory"]["advisory_id"] for a in (await api.get("/v1/advisories")).json()
        }
        assert still == {"CVE-2025-1094", HCSEC}
        metrics = (await api.get("/metrics")).text
        assert f'crew_shield_advisories{{severity="high",stack_id="{stack_id}"}} 1.0' in metrics
