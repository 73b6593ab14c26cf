"""The web console in a real browser: Debian's chromium driven by Playwright against the real
app (API + worker) on a real Postgres, with terraform applying to moto.

An approver logs in, submits the object-storage goal through the form, watches the run page
refresh itself to WAIT_FOR_APPROVE, sees the architecture diagram drawn as an SVG, approves and
watches it reach DONE; a viewer sees the same run without buttons; a POST without the CSRF
token is refused. Every request the browser makes is recorded: all go to 127.0.0.1 (no CDN,
no font service). Screenshots of the main pages are kept as test artefacts in
`$CREW_TEST_ARTIFACTS` (default build/test-artifacts/web/).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from api.app import create_app
from crew.settings import Settings
from tests.integration._support import buckets_tagged, serve_app

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
TOKENS = {
    "alice": ("approver", f"crew_{secrets.token_hex(16)}"),
    "vic": ("viewer", f"crew_{secrets.token_hex(16)}"),
}
#: Long enough for design + terraform plan + checkov (about 10 s here), with room to spare.
GATE_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1366, "height": 900}  # a laptop screen


@pytest.fixture
def artifacts_dir() -> Path:
    directory = Path(os.environ.get("CREW_TEST_ARTIFACTS") or ROOT / "build/test-artifacts/web")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright (Python) is not installed: pip install -e '.[dev]'")
    return CHROMIUM


async def accessibility_violations(page: Any) -> list[str]:
    """What axe-core (the engine behind Lighthouse's accessibility audit, WCAG 2.x rules:
    labels, names, contrast, landmarks, ARIA) finds wrong on the page as it is now."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    assert results.response["passes"], f"axe-core checked nothing on {page.url}"
    return [
        f"{page.url}: {v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
    ]


async def log_in(
    page: Any, name: str, screenshot: Path | None = None, audit: list[str] | None = None
) -> None:
    await page.goto("/")
    assert "/login" in page.url  # a page of the console needs a login
    if screenshot is not None:
        await page.screenshot(path=screenshot)
    if audit is not None:
        audit += await accessibility_violations(page)
    await page.get_by_label("API token").fill(TOKENS[name][1])
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_role("heading", name="Runs").wait_for()
    assert await page.get_by_text(f"Signed in as {name}").count() == 1


async def test_goal_to_done_through_the_console(
    chromium: Path,
    database_url: str,
    make_settings: Callable[..., Settings],
    aws_env: dict[str, str],
    terraform_bin: Path,
    moto_endpoint: str,
    artifacts_dir: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    settings = make_settings(
        database_url=database_url,
        api_tokens=[f"{name}:{role}:{token}" for name, (role, token) in TOKENS.items()],
        terraform_bin=terraform_bin,
    )
    goal_id = f"web-{secrets.token_hex(4)}"
    requested: list[str] = []
    problems: list[str] = []
    inaccessible: list[str] = []

    async with serve_app(create_app(settings)) as api, async_playwright() as pw:
        base = str(api.base_url)
        browser = await pw.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:

            async def context() -> Any:
                ctx = await browser.new_context(base_url=base, viewport=VIEWPORT)
                ctx.on("request", lambda r: requested.append(r.url))
                return ctx

            def watch(page: Any) -> None:
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on(
                    "console",
                    lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
                )

            approver = await context()
            page = await approver.new_page()
            watch(page)
            await log_in(page, "alice", screenshot=artifacts_dir / "login.png", audit=inaccessible)

            # -- the goal, through the form ---------------------------------------------
            await page.get_by_role("link", name="New goal").first.click()
            await page.get_by_label("Title").fill("Log archive bucket")
            await page.get_by_label("Description").fill(
                "A private, encrypted bucket where our services ship their logs for 90 days."
            )
            await page.get_by_label("AWS region").fill("eu-west-1")
            await page.get_by_label("Monthly budget, USD").fill("20")
            await page.get_by_label("Store 1: kind").select_option("object_storage")
            await page.get_by_label("Store 1: size, GB").fill("100")
            await page.get_by_label("Required tags").fill("team=platform\ncost-center=cc-1234")
            await page.get_by_label("Goal id").fill(goal_id)
            await page.screenshot(path=artifacts_dir / "new-goal.png", full_page=True)
            inaccessible += await accessibility_violations(page)
            await page.get_by_role("button", name="Submit goal").click()
            await page.wait_for_url(re.compile(r"/runs/[^/?]+\?notice=submitted$"))
            run_id = urlparse(page.url).path.rsplit("/", 1)[1]

            # -- the page follows the run to the gate by itself ------------------------------
            state = page.locator("#run-state")
            await expect(state).to_have_attribute(
                "data-state", "WAIT_FOR_APPROVE", timeout=GATE_TIMEOUT_MS
            )
            diagram = page.locator("#diagram figure svg")
            await expect(diagram).to_be_visible()
            assert "S3 bucket" in (await diagram.text_content() or "")
            await expect(page.locator("#terraform .counts")).to_contain_text("to create")
            await expect(page.locator("#sentinel")).to_contain_text("PASS")
            await expect(page.locator("#cost tfoot")).to_contain_text("Total per month")
            await expect(page.locator("#terraform pre.hcl").first).to_contain_text("resource")
            await expect(page.locator("#timeline")).to_contain_text("approval.requested")
            await page.screenshot(path=artifacts_dir / "run-at-gate.png", full_page=True)
            inaccessible += await accessibility_violations(page)

            # -- a POST without the session's CSRF token is refused, and changes nothing ------
            forged = await page.request.post(f"/runs/{run_id}/approve", form={"reason": "x"})
            assert forged.status == 403
            assert "Form refused" in await forged.text()

            # -- a viewer sees the run, but no buttons --------------------------------------
            viewer = await context()
            vpage = await viewer.new_page()
            watch(vpage)
            await log_in(vpage, "vic")
            assert await vpage.get_by_role("link", name="New goal").count() == 0
            await vpage.goto(f"/runs/{run_id}")
            await expect(vpage.locator("#run-state")).to_have_attribute(
                "data-state", "WAIT_FOR_APPROVE"
            )
            await expect(vpage.locator("#no-decide")).to_contain_text("viewer role")
            assert await vpage.get_by_role("button", name=re.compile("Approve|Reject")).count() == 0
            await vpage.screenshot(path=artifacts_dir / "run-viewer.png")
            await viewer.close()

            # -- approve, then the page follows the apply to DONE ---------------------------
            # ... with the keyboard only: the reason, Tab to the button, Enter.
            await page.get_by_label("Reason").fill("looks right")
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.id") == "approve"
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("status").first).to_contain_text("Approved")
            await expect(state).to_have_attribute("data-state", "DONE", timeout=GATE_TIMEOUT_MS)
            await expect(page.locator("#gate")).to_contain_text("Approved by alice via rest")
            await expect(page.get_by_role("button", name="Roll back")).to_be_visible()
            await page.screenshot(path=artifacts_dir / "run-done.png", full_page=True)

            # -- the list and the audit -----------------------------------------------------
            await page.goto("/")
            row = page.locator(f'tr[data-run-id="{run_id}"]')
            await expect(row).to_contain_text("DONE")
            await expect(row).to_contain_text("of $20.00")
            await page.screenshot(path=artifacts_dir / "runs.png", full_page=True)
            inaccessible += await accessibility_violations(page)
            await page.goto(f"/audit?run_id={run_id}")
            table = page.locator("table.audit")
            await expect(table).to_contain_text("apply.done")
            await expect(table).to_contain_text("alice")
            await page.screenshot(path=artifacts_dir / "audit.png", full_page=True)
            inaccessible += await accessibility_violations(page)
            async with page.expect_download() as download:
                await page.get_by_role("link", name="CSV").click()
            saved = await (await download.value).path()
            exported = await asyncio.to_thread(Path(saved).read_text)
            assert exported.startswith("at,run_id,seq,event")
            assert "apply.done" in exported
        finally:
            await browser.close()

        # The console went through the gate's one path: REST sees alice's decision, once.
        auth = {"Authorization": f"Bearer {TOKENS['alice'][1]}"}
        detail = (await api.get(f"/v1/runs/{run_id}", headers=auth)).json()
        assert detail["state"] == "DONE"
        assert detail["decision"]["actor"] == "alice"
        assert detail["decision"]["reason"] == "looks right"
        assert detail["artifacts"]["apply_result"]["ok"] is True
        again = await api.post(f"/v1/runs/{run_id}/approve", headers=auth)
        assert again.status_code == 409
        assert "already approved by alice" in again.json()["message"]
        assert buckets_tagged(moto_endpoint, "crew-goal", goal_id)

    hosts = {urlparse(url).hostname for url in requested if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}, sorted(set(requested))
    assert not problems, problems
    # login, new goal, a run at the gate, the runs list and the audit: no axe-core violation
    assert not inaccessible, inaccessible
