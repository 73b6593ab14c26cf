"""The pre-plan guard: parse a workspace and refuse anything outside Forge's allow-list.

`terraform init` downloads providers and modules and `terraform plan` runs provider code and
data sources, so a tampered workspace could run a program before any human looks at it (an
`external` data source, a `local-exec` provisioner, an unknown provider, a module from a URL).
Every terraform command therefore starts with `check_workspace`: the configuration files are
parsed (python-hcl2, the parser checkov uses) and every provider, resource, data source and
top-level block must be one the renderer emits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lark.exceptions import LarkError

from schemas.errors import CrewError
from tools.render.allowlist import (
    BACKENDS,
    DATA_SOURCE_TYPES,
    PROVIDER_SOURCES,
    PROVIDERS,
    RESOURCE_TYPES,
)

#: Top-level blocks a rendered workspace may have; `module`, `check`, `import`, `moved`,
#: `removed` and anything newer are refused.
TOP_LEVEL = frozenset({"terraform", "provider", "resource", "data", "variable", "output", "locals"})
_TERRAFORM_SETTINGS = frozenset({"required_version", "required_providers", "backend"})
#: Meta-blocks that run programs on the machine running terraform.
_EXECUTING = frozenset({"provisioner", "connection"})
_PROVIDER_FUNCTION = re.compile(r"provider::([A-Za-z0-9_-]+)::")


class WorkspaceRefusedError(CrewError):
    """The workspace holds something the allow-list does not; nothing was run."""

    def __init__(self, filename: str, line: int | None, block: str, reason: str) -> None:
        where = f"{filename}:{line}" if line else filename
        super().__init__(f"refused {block} ({where}): {reason}")
        self.filename = filename
        self.line = line
        self.block = block
        self.reason = reason


@dataclass(frozen=True)
class GuardResult:
    files: tuple[str, ...]
    digest: str
    """sha256 over the configuration files that were checked (name and content)."""


def check_workspace(directory: Path, passed: MutableMapping[str, str] | None = None) -> GuardResult:
    """Raise WorkspaceRefusedError unless every configuration file in `directory` is allowed.

    `passed` (directory -> digest of the configuration last found clean) skips parsing a
    workspace again when its files have not changed since (parsing is the slow part); the
    terraform runner keeps one for its own commands."""
    if passed is None:
        passed = {}
    files = sorted(p for p in directory.iterdir() if p.is_file() and _is_config(p.name))
    digest = hashlib.sha256()
    texts: dict[str, str] = {}
    for path in files:
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        texts[path.name] = raw.decode("utf-8", errors="replace")
    result = GuardResult(files=tuple(texts), digest=digest.hexdigest())
    if passed.get(str(directory)) == result.digest:
        return result
    for name, text in texts.items():
        if name.endswith(".json"):
            raise WorkspaceRefusedError(
                name, None, "file", "JSON configuration is never rendered by Forge"
            )
        try:
            doc = _parse_hcl(text)
        except (LarkError, ValueError, KeyError, TypeError) as exc:
            raise WorkspaceRefusedError(
                name, None, "file", f"cannot be parsed, so it cannot be checked: {exc}"
            ) from exc
        _check_document(name, doc)
    passed[str(directory)] = result.digest
    return result


def _is_config(name: str) -> bool:
    return name.endswith((".tf", ".tf.json"))


def _line(body: Any) -> int | None:
    return body.get("__start_line__") if isinstance(body, Mapping) else None


def _check_document(name: str, doc: Mapping[str, Any]) -> None:
    for key, blocks in doc.items():
        if key not in TOP_LEVEL:
            first = blocks[0] if isinstance(blocks, list) and blocks else {}
            label = next(iter(first), "") if isinstance(first, Mapping) else ""
            raise WorkspaceRefusedError(
                name,
                _line(first.get(label)) if isinstance(first, Mapping) and label else None,
                f'{key} "{label}"'.replace(' ""', ""),
                f"`{key}` blocks are not allowed (allowed: {', '.join(sorted(TOP_LEVEL))})",
            )
    for block in doc.get("terraform", []):
        _check_terraform(name, block)
    for block in doc.get("provider", []):
        for provider, body in block.items():
            if provider not in PROVIDERS:
                raise WorkspaceRefusedError(
                    name, _line(body), f'provider "{provider}"', "only the aws provider is allowed"
                )
    for kind, allowed in (("resource", RESOURCE_TYPES), ("data", DATA_SOURCE_TYPES)):
        for block in doc.get(kind, []):
            for rtype, named in block.items():
                for label, body in named.items():
                    address = f'{kind} "{rtype}" "{label}"'
                    if rtype not in allowed:
                        what = "resource type" if kind == "resource" else "data source"
                        raise WorkspaceRefusedError(
                            name, _line(body), address, f"{what} {rtype} is not on the allow-list"
                        )
                    for key in _meta_blocks(body):
                        if key in _EXECUTING:
                            raise WorkspaceRefusedError(
                                name, _line(body), address, f"`{key}` blocks run programs"
                            )
    for text in _strings(doc):
        for match in _PROVIDER_FUNCTION.finditer(text):
            if match.group(1) not in PROVIDERS:
                raise WorkspaceRefusedError(
                    name, None, f"provider function {match.group(0)}", "unknown provider"
                )


def _check_terraform(name: str, block: Mapping[str, Any]) -> None:
    for key, value in block.items():
        if key.startswith("__"):
            continue
        if key not in _TERRAFORM_SETTINGS:
            raise WorkspaceRefusedError(
                name, _line(block), f"terraform.{key}", "not an allowed terraform setting"
            )
        if key == "backend":
            for backend in value:
                for backend_type in backend:
                    if backend_type not in BACKENDS:
                        raise WorkspaceRefusedError(
                            name,
                            _line(block),
                            f'backend "{backend_type}"',
                            f"only the {' and '.join(sorted(BACKENDS))} backends are allowed",
                        )
        if key == "required_providers":
            for providers in value:
                for local_name, spec in providers.items():
                    spec = spec[0] if isinstance(spec, list) and spec else spec
                    source = spec.get("source") if isinstance(spec, Mapping) else None
                    source = source[0] if isinstance(source, list) and source else source
                    if local_name not in PROVIDERS or source not in PROVIDER_SOURCES:
                        raise WorkspaceRefusedError(
                            name,
                            _line(block),
                            f"required provider {local_name} ({source})",
                            "only hashicorp/aws is allowed",
                        )


def _meta_blocks(body: Any) -> Iterator[str]:
    """Names of a resource's direct blocks, and the labels of its `dynamic` blocks (terraform
    allows `provisioner` and `connection` only directly in a resource)."""
    if not isinstance(body, Mapping):
        return
    for key, inner in body.items():
        yield key
        if key == "dynamic":
            for dynamic in inner if isinstance(inner, list) else [inner]:
                if isinstance(dynamic, Mapping):
                    yield from dynamic.keys()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _parse_hcl(text: str) -> Any:
    """python-hcl2's parse, imported on first use: it builds its grammar when imported (a
    noticeable part of a CLI's start-up), and only a workspace check needs it."""
    from hcl2.api import loads

    return loads(text)


def warm_up() -> None:
    """Import the HCL parser now (a long-lived worker calls this at start, so its first
    build does not pay for the grammar; a CLI process never does)."""
    _parse_hcl("")
