"""JSON Schema export of the contracts (`crew schema export`), checked in CI.

Each artifact is written under the directory of its contract version: `schemas/v0.1/` for the
0.1 contracts, `schemas/v0.2/` for those that moved on (PlanSpec and DesignBlocked gained
`requirements`). A moved artifact's 0.1 schema stays in `schemas/v0.1/`, frozen: 0.1
documents still validate against it, and the 0.2 model still reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.base import SCHEMA_VERSION, Artifact
from schemas.registry import ARTIFACTS

ROOT = Path(__file__).parent
SCHEMA_DIR = ROOT / f"v{SCHEMA_VERSION}"


def version_of(model: type[Artifact]) -> str:
    """The contract version a model writes (its schema_version default)."""
    default = model.model_fields["schema_version"].default
    return default if isinstance(default, str) else SCHEMA_VERSION


def schema_dir(version: str) -> Path:
    return ROOT / f"v{version}"


def render_schemas() -> dict[str, str]:
    """Relative path ('v0.2/PlanSpec.schema.json') -> file text for every artifact,
    deterministic (sorted keys, newline)."""
    files: dict[str, str] = {}
    for name, model in sorted(ARTIFACTS.items()):
        version = version_of(model)
        schema = model.model_json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://infra-crew.dev/schemas/v{version}/{name}.schema.json",
            **schema,
        }
        files[f"v{version}/{name}.schema.json"] = (
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    return files


def _frozen(root: Path) -> set[str]:
    """Earlier versions' schemas of artifacts that moved on: kept as they are."""
    current = {f"v{version_of(m)}/{n}.schema.json" for n, m in ARTIFACTS.items()}
    return {
        f"{p.parent.name}/{p.name}"
        for p in root.glob("v*/*.schema.json")
        if p.stem.removesuffix(".schema") in ARTIFACTS
        and f"{p.parent.name}/{p.name}" not in current
        and p.parent.name < f"v{version_of(ARTIFACTS[p.stem.removesuffix('.schema')])}"
    }


def export_schemas(root: Path = ROOT) -> list[Path]:
    """Write the schema files, removing stale ones; returns the paths written."""
    files = render_schemas()
    keep = _frozen(root)
    for stale in root.glob("v*/*.schema.json"):
        rel = f"{stale.parent.name}/{stale.name}"
        if rel not in files and rel not in keep:
            stale.unlink()
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(root: Path = ROOT) -> list[str]:
    """Files that differ from the models (missing, changed or extra), as relative paths."""
    files = render_schemas()
    present = {
        f"{p.parent.name}/{p.name}": p.read_text(encoding="utf-8")
        for p in root.glob("v*/*.schema.json")
    }
    keep = _frozen(root)
    changed = [rel for rel, text in files.items() if present.get(rel) != text]
    extra = [rel for rel in present if rel not in files and rel not in keep]
    return sorted(changed + extra)
