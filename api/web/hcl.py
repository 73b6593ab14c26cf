"""The Terraform a run planned, for the run page: the workspace's files as Forge wrote them.

The files are read from the run's workspace when this process can see it (the embedded
default, or workers sharing a volume). When the workspace is on another host, they are
rendered again from the PlanSpec: Forge's renderer is deterministic (same PlanSpec, same
bytes, tests/fixtures/golden), and the page says which of the two it shows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from crew.settings import Settings
from schemas.run import RunDetail
from tools.render import FILES, RenderError, render_workspace_files

#: Longest file shown (a rendered workspace is a few KB; this only bounds a surprise).
MAX_CHARS = 200_000


@dataclass(frozen=True)
class HclView:
    files: list[tuple[str, str]]
    """(file name, text) in Forge's file order."""
    source: str
    """Where the text comes from, in words."""


def _read(workspace: Path, root: Path) -> list[tuple[str, str]] | None:
    try:
        directory = workspace.resolve()
        directory.relative_to(root.resolve())  # only workspaces under CREW_DATA_DIR
    except (OSError, ValueError):
        return None
    if not directory.is_dir():
        return None
    files = []
    for name in FILES:
        path = directory / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            files.append((name, text[:MAX_CHARS]))
    return files or None


async def workspace_hcl(settings: Settings, detail: RunDetail) -> HclView | None:
    """The run's Terraform, or None before Atlas has designed it."""
    build, plan = detail.artifacts.build, detail.artifacts.plan
    if build is not None:
        files = await asyncio.to_thread(_read, Path(build.workspace), settings.workspaces_dir)
        if files is not None:
            return HclView(files, f"the run's workspace ({build.workspace})")
    if plan is None:
        return None
    try:
        rendered = render_workspace_files(plan, backend=settings.tf_backend)
    except RenderError as exc:
        return HclView([], f"the PlanSpec could not be rendered: {exc}")
    where = "not built yet" if build is None else "the workspace is on another host"
    return HclView(
        [(name, rendered[name]) for name in FILES if name in rendered],
        f"rendered again from the PlanSpec ({where}; Forge renders byte-identical files)",
    )
