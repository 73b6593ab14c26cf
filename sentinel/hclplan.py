"""A stand-in plan read from .tf files, for `crew validate DIR` when there is no plan JSON.

Without `terraform plan` (it needs credentials and initialised providers), the org policy and
the cost forecast still get the resources and their literal values: every resource block is
taken as a create, with the attributes written as literals; expressions (`var.x`,
`aws_vpc.main.id`) are unknown, so prices that depend on them are reported "not priced".
The report says the forecast came from HCL, not from a plan.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from schemas.inputs import InputError, Problem

_REF = re.compile(r"\b((?:aws|null|terraform)_[a-z0-9_]+\.[A-Za-z0-9_-]+)")
_MAPS = frozenset({"tags", "tags_all"})


def _value(key: str, raw: Any) -> Any:
    """bc-python-hcl2 wraps attributes and blocks in lists: unwrap literals, keep blocks."""
    if isinstance(raw, list) and len(raw) == 1 and not isinstance(raw[0], dict):
        raw = raw[0]
    if isinstance(raw, str) and "${" in raw:
        return None
    if isinstance(raw, list) and raw and all(isinstance(b, dict) for b in raw):
        if key in _MAPS:
            return {k: v for b in raw for k, v in b.items() if isinstance(v, str)}
        return [_values(b) for b in raw]
    return raw


def _values(body: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, raw in body.items()
        if not k.startswith("__") and (v := _value(k, raw)) is not None
    }


def _references(body: Any, prefix: str = "") -> dict[str, dict[str, list[str]]]:
    found: dict[str, dict[str, list[str]]] = {}
    if isinstance(body, dict):
        for key, value in body.items():
            for k, v in _references(value, f"{prefix}{key}.").items():
                found[k] = v
    elif isinstance(body, list):
        for item in body:
            found.update(_references(item, prefix))
    elif isinstance(body, str) and prefix:
        refs = sorted(set(_REF.findall(body)))
        if refs:
            found[prefix.rstrip(".")] = {"references": refs}
    return found


def plan_from_hcl(directory: Path) -> dict[str, Any]:
    """A `terraform show -json`-shaped document of the literal content of `directory`."""
    from hcl2.api import loads

    changes: list[dict[str, Any]] = []
    config: list[dict[str, Any]] = []
    providers: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                doc = loads(path.read_text(encoding="utf-8"))
        except Exception as exc:  # the parser raises lark errors of many kinds
            raise InputError(
                [Problem(field=path.name, problem=f"not valid HCL: {exc}", fix="fix the file")],
                "Terraform directory",
            ) from exc
        for block in doc.get("resource") or []:
            for rtype, named in block.items():
                for name, body in named.items():
                    address = f"{rtype}.{name}"
                    change = {"actions": ["create"], "before": None, "after": _values(body)}
                    changes.append(
                        {"address": address, "mode": "managed", "type": rtype, "name": name}
                        | {"change": change}
                    )
                    config.append({"address": address, "expressions": _references(body)})
        for block in doc.get("provider") or []:
            body = block.get("aws")
            if isinstance(body, dict):
                values = _values(body)
                expressions: dict[str, Any] = {}
                if isinstance(values.get("region"), str):
                    expressions["region"] = {"constant_value": values["region"]}
                expressions["default_tags"] = [
                    {"tags": {"constant_value": b.get("tags") or {}}}
                    for b in values.get("default_tags") or []
                ]
                providers[f"aws{len(providers) or ''}"] = {
                    "name": "aws",
                    "expressions": expressions,
                }
    return {
        "format_version": "hcl",
        "resource_changes": changes,
        "configuration": {"provider_config": providers, "root_module": {"resources": config}},
    }
