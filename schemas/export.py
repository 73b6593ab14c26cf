"""JSON Schema export of the contracts (`crew schema export`), checked in CI."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.base import SCHEMA_VERSION
from schemas.registry import ARTIFACTS

SCHEMA_DIR = Path(__file__).parent / f"v{SCHEMA_VERSION}"


def render_schemas() -> dict[str, str]:
    """File name -> file text for every artifact, deterministic (sorted keys, newline)."""
    files: dict[str, str] = {}
    for name, model in sorted(ARTIFACTS.items()):
        schema = model.model_json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://infra-crew.dev/schemas/v{SCHEMA_VERSION}/{name}.schema.json",
            **schema,
        }
        files[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def export_schemas(target: Path = SCHEMA_DIR) -> list[Path]:
    """Write the schema files, removing stale ones; returns the paths written."""
    target.mkdir(parents=True, exist_ok=True)
    files = render_schemas()
    for stale in target.glob("*.schema.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = target / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(target: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that differ from the models (missing, changed or extra)."""
    files = render_schemas()
    present = {p.name: p.read_text(encoding="utf-8") for p in target.glob("*.schema.json")}
    changed = [name for name, text in files.items() if present.get(name) != text]
    extra = [name for name in present if name not in files]
    return sorted(changed + extra)
