"""Workspace files: write a rendered PlanSpec to a directory, and the file helpers around it.

The templates live in `tools/render/`; this module puts their output on disk (removing
configuration files a previous render left behind, so the directory holds exactly what the
PlanSpec says), fingerprints plan files and keeps the plan JSON Sentinel reads.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from schemas.plan import PlanSpec
from tools.render import FILES, RESOURCE_TYPES, Backend, RenderError, render_workspace_files

#: Kept state documents of a revision (pre-apply, post-failure): what rollback restores from.
SNAPSHOT_DIR = "snapshots"

PLAN_FILE = "crew.tfplan"
PLAN_JSON = "plan.json"

#: Resource types the renderer may emit; anything else in a plan is a finding.
RENDERED_RESOURCE_TYPES = RESOURCE_TYPES
#: The name the interim renderer used for a plan the templates refuse.
UnsupportedComponentError = RenderError


def write_workspace(plan: PlanSpec, directory: Path, *, backend: Backend = "local") -> list[Path]:
    """Render `plan` into `directory`; returns the files written. Raises RenderError (nothing
    is written) when the templates refuse the plan."""
    files = render_workspace_files(plan, backend=backend)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in foreign_config_files(directory):
        stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def foreign_config_files(directory: Path) -> list[Path]:
    """Terraform configuration files in `directory` that Forge does not write."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith((".tf", ".tf.json")) and p.name not in FILES
    )


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_plan_json(directory: Path, doc: dict[str, Any]) -> Path:
    path = directory / PLAN_JSON
    path.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
    return path


def load_plan_json(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((directory / PLAN_JSON).read_text(encoding="utf-8"))
    return doc


__all__ = [
    "PLAN_FILE",
    "PLAN_JSON",
    "RENDERED_RESOURCE_TYPES",
    "UnsupportedComponentError",
    "file_digest",
    "foreign_config_files",
    "load_plan_json",
    "render_workspace_files",
    "save_plan_json",
    "write_workspace",
]


def save_snapshot(workspace: Path, name: str, state: dict[str, Any]) -> Path:
    """Keep a state document in the workspace (written atomically: a crash leaves the old)."""
    directory = workspace / SNAPSHOT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    partial.replace(path)
    return path


def load_snapshot(workspace: Path, name: str) -> dict[str, Any] | None:
    path = workspace / SNAPSHOT_DIR / name
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc
