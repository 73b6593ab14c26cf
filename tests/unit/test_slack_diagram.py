"""The gate message's diagram image: the signed URL, the image block, SVG -> PNG, and the
Mermaid config that makes the SVG convertible (labels as <text>, not foreignObject HTML)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crew.gate.slack_message import (
    diagram_signature,
    diagram_signature_ok,
    diagram_url,
    render_message,
)
from schemas.approval import ApprovalRequest
from schemas.plan import PlanSpec
from schemas.run import RunArtifacts, RunDetail
from schemas.states import ConductorState
from tests.slack_support import SIGNING_SECRET
from tests.unit.support import FIXTURES, make_goal
from tools.diagram_png import PNG_SIGNATURE, DiagramRenderError, png_size, svg_to_png
from tools.mermaid import render_svg

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PUBLIC_URL = "https://crew.example.com"
#: What `mmdc` emits for `flowchart LR; logs --> bucket` with htmlLabels off (240 x 120).
FLOWCHART_SVG = (FIXTURES / "mermaid" / "flowchart.svg").read_text(encoding="utf-8")


def _detail(plan: PlanSpec | None) -> RunDetail:
    goal = make_goal()
    request = ApprovalRequest(
        run_id="run-1",
        plan_id="run-1-r1",
        plan_file_digest="d" * 64,
        summary="A private bucket",
        forecast_monthly_usd=1.5,
        budget_monthly_usd=20,
        create=5,
        update=0,
        delete=0,
    )
    return RunDetail(
        run_id="run-1",
        goal_id="g-1",
        revision=1,
        title=goal.title,
        requested_by=None,
        state=ConductorState.WAIT_FOR_APPROVE,
        created_at=T0,
        updated_at=T0,
        goal=goal,
        artifacts=RunArtifacts(plan=plan, approval_request=request),
    )


def _images(blocks: list[dict[str, object]]) -> list[dict[str, object]]:
    return [b for b in blocks if b["type"] == "image"]


def test_the_diagram_url_is_signed_for_its_run_only() -> None:
    url = diagram_url(PUBLIC_URL + "/", SIGNING_SECRET, "20260105T120000-ab12cd34")
    expected = hmac.new(
        SIGNING_SECRET.encode(), b"20260105T120000-ab12cd34", hashlib.sha256
    ).hexdigest()
    assert url == f"{PUBLIC_URL}/slack/diagrams/20260105T120000-ab12cd34.png?sig={expected}"
    assert diagram_signature(SIGNING_SECRET, "20260105T120000-ab12cd34") == expected
    assert diagram_signature_ok(SIGNING_SECRET, "20260105T120000-ab12cd34", expected)
    assert not diagram_signature_ok(SIGNING_SECRET, "20260105T120000-ab12cd35", expected)
    assert not diagram_signature_ok("another-secret", "20260105T120000-ab12cd34", expected)
    assert not diagram_signature_ok(SIGNING_SECRET, "20260105T120000-ab12cd34", "")
    assert not diagram_signature_ok(SIGNING_SECRET, "20260105T120000-ab12cd34", "é" * 64)
    # Slack could not reach a service without a public URL, and nothing signs without a secret
    assert diagram_url(None, SIGNING_SECRET, "run-1") is None
    assert diagram_url(PUBLIC_URL, None, "run-1") is None


def test_the_message_shows_the_rendered_diagram_as_an_image(example_plan: PlanSpec) -> None:
    url = diagram_url(PUBLIC_URL, SIGNING_SECRET, "run-1")
    assert url is not None
    plan = example_plan.model_copy(update={"diagram_svg": FLOWCHART_SVG})
    _, blocks = render_message(_detail(plan), f"{PUBLIC_URL}/v1/runs/run-1", image_url=url)
    images = _images(blocks)
    assert len(images) == 1
    image = images[0]
    sig = hmac.new(SIGNING_SECRET.encode(), b"run-1", hashlib.sha256).hexdigest()
    assert image["image_url"] == f"{PUBLIC_URL}/slack/diagrams/run-1.png?sig={sig}"
    assert plan.plan_id in str(image["alt_text"])
    # before the buttons: the picture is part of what is being approved
    kinds = [b["type"] for b in blocks]
    assert kinds.index("image") < kinds.index("actions")


def test_no_rendered_diagram_no_image(example_plan: PlanSpec) -> None:
    url = diagram_url(PUBLIC_URL, SIGNING_SECRET, "run-1")
    assert example_plan.diagram_svg is None
    _, blocks = render_message(_detail(example_plan), "http://x/v1/runs/run-1", image_url=url)
    assert _images(blocks) == [], "the Mermaid source is never sent as an image"
    assert example_plan.diagram not in json.dumps(blocks)
    _, blocks = render_message(_detail(None), "http://x/v1/runs/run-1", image_url=url)
    assert _images(blocks) == []
    # rendered, but no public URL (the notifier passes no image_url): no image either
    plan = example_plan.model_copy(update={"diagram_svg": FLOWCHART_SVG})
    _, blocks = render_message(_detail(plan), "http://x/v1/runs/run-1")
    assert _images(blocks) == []


def test_an_svg_with_text_labels_converts_to_a_png_of_its_size() -> None:
    png = svg_to_png(FLOWCHART_SVG)
    assert png.data.startswith(PNG_SIGNATURE)
    assert (png.width, png.height) == png_size(png.data) == (480, 240)  # twice 240 x 120
    assert svg_to_png(FLOWCHART_SVG, scale=1).width == 240


def test_a_huge_svg_is_capped_and_a_broken_one_is_a_clear_error() -> None:
    wide = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="9000" height="90">'
        '<rect width="9000" height="90" fill="#eee"/>'
        # an external reference is drawn as nothing, never fetched
        '<image href="http://127.0.0.1:9/x.png" width="10" height="10"/></svg>'
    )
    png = svg_to_png(wide)
    assert max(png.width, png.height) <= 4000
    assert png.width > 10 * png.height - 20
    with pytest.raises(DiagramRenderError, match="cannot convert the diagram SVG to PNG"):
        svg_to_png("<svg><g>")
    with pytest.raises(DiagramRenderError, match="not a PNG"):
        png_size(b"GIF89a")


async def test_mmdc_is_asked_for_text_labels(tmp_path: Path) -> None:
    # a stand-in mmdc (no browser here) that writes the config it was given as the "SVG"
    fake = tmp_path / "mmdc"
    fake.write_text(
        "#!/bin/sh\n"
        'while [ $# -gt 0 ]; do case "$1" in\n'
        '  -o) out="$2"; shift;; -c|--configFile) cfg="$2"; shift;;\n'
        "esac; shift; done\n"
        'cat "$cfg" > "$out"\n'
    )
    fake.chmod(0o755)
    config = json.loads(await render_svg("flowchart LR\n  a --> b", mmdc=fake) or "{}")
    assert config["flowchart"]["htmlLabels"] is False
    assert config["htmlLabels"] is False
