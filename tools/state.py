"""Read a stack's current Terraform state: its resources and outputs, for the stack view.

A local state is read from its file (no terraform process for a page view); any other backend
through `terraform state pull` in a workspace already initialised for that stack. The state is
parsed into typed values here; sensitive outputs never leave this module in clear.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tools.backend import STATE_FILE, StateBackend
from tools.stack import StackKey

SENSITIVE = "<sensitive>"


class StatePuller(Protocol):
    async def state_pull(self, workdir: Path) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StateResource:
    address: str
    type: str
    name: str


@dataclass(frozen=True)
class StackState:
    resources: list[StateResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def parse_state(doc: dict[str, Any]) -> StackState:
    """Managed resources (data sources left out) and outputs of a state document (v4)."""
    resources: list[StateResource] = []
    for item in doc.get("resources") or []:
        if not isinstance(item, dict) or item.get("mode") != "managed":
            continue
        rtype, name = str(item.get("type", "")), str(item.get("name", ""))
        prefix = f"{item['module']}." if item.get("module") else ""
        instances = item.get("instances") or [{}]
        for instance in instances:
            key = instance.get("index_key") if isinstance(instance, dict) else None
            suffix = "" if key is None else f"[{json.dumps(key)}]"
            resources.append(StateResource(f"{prefix}{rtype}.{name}{suffix}", rtype, name))
    outputs = {
        name: (SENSITIVE if out.get("sensitive") else out.get("value"))
        for name, out in (doc.get("outputs") or {}).items()
        if isinstance(out, dict)
    }
    return StackState(resources=resources, outputs=outputs)


async def read_stack_state(
    backend: StateBackend, stack: StackKey, terraform: StatePuller, workspace: Path | None
) -> StackState:
    """The stack's state now; an empty state when there is none yet.

    Raises OSError or ValueError for a local state that cannot be read, and the runner's
    ToolError when `terraform state pull` fails.
    """
    return parse_state(await read_state_document(backend, stack, terraform, workspace))


async def read_state_document(
    backend: StateBackend, stack: StackKey, terraform: StatePuller, workspace: Path | None
) -> dict[str, Any]:
    """The stack's raw state document (v4), for readers that need resource attributes (the
    Shield-Lite inventory: engine versions, images); `{}` when there is no state yet. Raises
    as `read_stack_state` does. Sensitive values are in it: callers keep only what they name."""
    if backend.kind == "local" and backend.local_dir is not None:
        path = backend.local_dir / stack.id / STATE_FILE
        return await asyncio.to_thread(_read_json, path)
    if workspace is None:
        raise FileNotFoundError("no initialised workspace of this stack to read its state from")
    return await terraform.state_pull(workspace)


_LOCKED_PROVIDER = re.compile(r'provider\s+"([^"]+)"\s*\{[^}]*?\bversion\s*=\s*"([^"]+)"', re.S)


def read_provider_versions(workspace: Path) -> dict[str, str]:
    """Provider source -> version as the workspace's `.terraform.lock.hcl` pins them (what
    terraform really ran); empty when the workspace or its lock file is gone."""
    try:
        text = (workspace / ".terraform.lock.hcl").read_text(encoding="utf-8")
    except OSError:
        return {}
    return {source: version for source, version in _LOCKED_PROVIDER.findall(text)[:50]}


def _read_json(path: Path) -> dict[str, Any]:
    """A state file's document; empty when the stack has no state yet."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text) if text.strip() else {}
    return doc
