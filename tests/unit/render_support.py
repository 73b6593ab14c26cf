"""Reading rendered Terraform back (python-hcl2) for structural assertions in unit tests."""

from __future__ import annotations

from typing import Any

from hcl2.api import loads

from schemas.plan import PlanSpec
from tools.render import render_workspace_files


def parse(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = loads(text)
    return doc


def blocks(doc: dict[str, Any], kind: str, rtype: str) -> dict[str, dict[str, Any]]:
    """label -> body of every `kind "rtype" "label"` block (kind: resource or data)."""
    found: dict[str, dict[str, Any]] = {}
    for block in doc.get(kind, []):
        for label, body in block.get(rtype, {}).items():
            found[label] = body
    return found


def value(body: dict[str, Any], name: str) -> Any:
    """An attribute's value (python-hcl2 wraps each in a one-element list)."""
    raw = body[name]
    return raw[0] if isinstance(raw, list) and len(raw) == 1 else raw


def nested(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The bodies of a nested block type."""
    items: list[dict[str, Any]] = body.get(name, [])
    return items


def types_in(doc: dict[str, Any], kind: str) -> set[str]:
    return {rtype for block in doc.get(kind, []) for rtype in block}


def main_of(plan: PlanSpec) -> dict[str, Any]:
    return parse(render_workspace_files(plan)["main.tf"])
