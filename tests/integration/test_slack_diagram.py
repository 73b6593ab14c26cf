"""`GET /slack/diagrams/{run_id}.png`: the gate message's diagram image, fetched by Slack
without credentials, on a real Postgres (a run row and its checkpoint; no worker, no
terraform)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest

from api.app import create_app
from crew.container import Services, open_services
from crew.gate.slack_message import diagram_url
from crew.settings import Settings
from graph.state import initial_state
from schemas.plan import PlanSpec
from tests.slack_support import SIGNING_SECRET
from tests.unit.support import ARTIFACT_EXAMPLES, FIXTURES, make_goal
from tools.diagram_png import PNG_SIGNATURE, png_size

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PUBLIC_URL = "https://crew.example.com"
FLOWCHART_SVG = (FIXTURES / "mermaid" / "flowchart.svg").read_text(encoding="utf-8")


@pytest.fixture
async def services(
    database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Services]:
    settings = make_settings(
        database_url=database_url, slack_signing_secret=SIGNING_SECRET, public_url=PUBLIC_URL
    )
    async with open_services(settings, role="test") as opened:
        yield opened


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (routes, error handlers) on the services above; no worker runs."""
    app = create_app(services.settings, run_worker=False)
    app.state.services = services
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def run_with_plan(services: Services, run_id: str, svg: str | None) -> None:
    """A run whose checkpoint holds a PlanSpec, written as Atlas's design step writes it."""
    goal = make_goal(goal_id=f"goal-{run_id}")
    record, _ = await services.runs.create(goal, run_id=run_id, at=T0)
    plan = PlanSpec.model_validate_json((ARTIFACT_EXAMPLES / "PlanSpec.json").read_text())
    state = initial_state(record.run_id, record.goal_id, goal, T0)
    state["plan"] = plan.model_copy(update={"diagram_svg": svg})
    config = {"configurable": {"thread_id": run_id}}
    await services.graph.aupdate_state(config, state, as_node="design")  # type: ignore[arg-type]


def path_of(run_id: str) -> str:
    url = diagram_url(PUBLIC_URL, SIGNING_SECRET, run_id)
    assert url is not None
    return url.removeprefix(PUBLIC_URL)


async def test_slack_fetches_the_diagram_as_a_png(
    services: Services, http: httpx.AsyncClient
) -> None:
    await run_with_plan(services, "run-drawn", FLOWCHART_SVG)
    response = await http.get(path_of("run-drawn"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert "public" in response.headers["cache-control"]
    assert response.content.startswith(PNG_SIGNATURE)
    assert png_size(response.content) == (480, 240)  # the 240 x 120 SVG at twice its size
    from PIL import Image  # CairoSVG's own dependency; a full decode, not just the header

    with Image.open(io.BytesIO(response.content)) as image:
        image.load()
        assert image.size == (480, 240)
        darkest, lightest = image.convert("L").getextrema()
        assert (lightest, darkest < 100) == (255, True), "a white background with ink on it"
    again = await http.get(
        path_of("run-drawn"), headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


async def test_a_wrong_sig_is_403_and_no_diagram_is_404(
    services: Services, http: httpx.AsyncClient
) -> None:
    await run_with_plan(services, "run-drawn", FLOWCHART_SVG)
    await run_with_plan(services, "run-plain", None)
    await run_with_plan(services, "run-broken", "<svg><g>")
    forged = path_of("run-plain").replace("run-plain.png", "run-drawn.png")
    cases = {
        forged: (403, "bad_signature"),  # another run's signature
        "/slack/diagrams/run-drawn.png": (403, "bad_signature"),  # none
        "/slack/diagrams/run-drawn.png?sig=%C3%A9": (403, "bad_signature"),
        path_of("no-such-run"): (404, "run_not_found"),
        path_of("run-plain"): (404, "no_diagram"),  # only the Mermaid source: no image
        path_of("run-broken"): (404, "no_diagram"),  # never a 500
    }
    for path, (code, error) in cases.items():
        response = await http.get(path)
        assert (response.status_code, response.json()["error"]) == (code, error), path
