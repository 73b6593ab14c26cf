"""Render a Mermaid diagram to SVG with the Mermaid CLI (`mmdc`), when it is installed.

Optional garnish: every PlanSpec carries the Mermaid source, which GitHub, GitLab and most
viewers draw; the SVG is for places that cannot. Without `mmdc` (settings.mermaid_cli unset)
nothing runs and None comes back; when it fails, ToolError says why and the caller decides.

Labels are drawn as plain SVG `<text>` (Mermaid's `htmlLabels: false`), not HTML inside
`<foreignObject>`: SVG rasterisers (tools/diagram_png.py, for Slack) drop foreignObject, so an
HTML-labelled diagram would turn into boxes without words.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from schemas.errors import ToolError
from tools.process import run_process

RENDER_TIMEOUT_S = 60.0

#: The Mermaid config passed with `--configFile` (`-c`): labels as SVG <text>, not HTML in
#: foreignObject (the root key for Mermaid >= 11, the flowchart one for older releases).
MERMAID_CONFIG: dict[str, object] = {"htmlLabels": False, "flowchart": {"htmlLabels": False}}


async def render_svg(source: str, *, mmdc: Path | None) -> str | None:
    """The SVG for Mermaid `source`, or None when no Mermaid CLI is configured."""
    if mmdc is None:
        return None
    with tempfile.TemporaryDirectory(prefix="crew-mmdc-") as tmp:
        work = Path(tmp)
        await asyncio.to_thread((work / "in.mmd").write_text, source, encoding="utf-8")
        config = json.dumps(MERMAID_CONFIG)
        await asyncio.to_thread((work / "config.json").write_text, config, encoding="utf-8")
        env = {"PATH": f"{mmdc.parent}:/usr/local/bin:/usr/bin:/bin", "HOME": tmp}
        argv = [str(mmdc), "-i", "in.mmd", "-o", "out.svg", "-c", "config.json", "--quiet"]
        result = await run_process(argv, cwd=work, env=env, timeout_s=RENDER_TIMEOUT_S)
        svg = await asyncio.to_thread(_read, work / "out.svg")
    if result.returncode != 0 or svg is None:
        raise ToolError(f"mmdc exited {result.returncode}: {result.stderr[-500:]}")
    return svg


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None
