"""Reading `terraform show -json` output: the resources a plan leaves, their values, the provider.

Only what Sentinel needs, in one place: the managed resources that will exist after apply
(created, updated, replaced or unchanged) and those it removes, with `before`/`after` values,
plus the AWS provider's region and default tags, resolved through variables when the
configuration refers to them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PlannedResource:
    address: str
    type: str
    name: str
    actions: tuple[str, ...]
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    after_unknown: Mapping[str, Any] = field(default_factory=dict)

    @property
    def action(self) -> str:
        a = self.actions
        if "create" in a and "delete" in a:
            return "replace"
        return a[0] if len(a) == 1 else "+".join(a)

    @property
    def remains(self) -> bool:
        """It exists after apply (anything but a plain delete)."""
        return self.actions != ("delete",)

    @property
    def existed(self) -> bool:
        """It exists before apply (anything but a plain create)."""
        return self.actions != ("create",)


def planned_resources(plan: Mapping[str, Any]) -> Iterator[PlannedResource]:
    """Managed resources in `resource_changes` (data sources are read, not created)."""
    for rc in plan.get("resource_changes") or []:
        if rc.get("mode", "managed") != "managed":
            continue
        change = rc.get("change") or {}
        yield PlannedResource(
            address=str(rc["address"]),
            type=str(rc["type"]),
            name=str(rc.get("name") or rc["address"].rsplit(".", 1)[-1]),
            actions=tuple(change.get("actions") or ("no-op",)),
            before=change.get("before"),
            after=change.get("after"),
            after_unknown=change.get("after_unknown") or {},
        )


def _resolve(expr: Mapping[str, Any] | None, variables: Mapping[str, Any]) -> Any:
    """An expression's value: a constant, or a `var.x` reference resolved from the plan."""
    if not expr:
        return None
    if "constant_value" in expr:
        return expr["constant_value"]
    for ref in expr.get("references") or []:
        if ref.startswith("var."):
            var = variables.get(ref.split(".", 1)[1]) or {}
            if "value" in var:
                return var["value"]
    return None


def _aws_providers(plan: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    config = (plan.get("configuration") or {}).get("provider_config") or {}
    return [p for p in config.values() if p.get("name") == "aws"]


def provider_regions(plan: Mapping[str, Any]) -> tuple[list[str], bool]:
    """The AWS provider regions the plan configures, and whether any could not be resolved."""
    variables = plan.get("variables") or {}
    regions: list[str] = []
    unresolved = False
    for provider in _aws_providers(plan):
        value = _resolve((provider.get("expressions") or {}).get("region"), variables)
        if isinstance(value, str) and value:
            regions.append(value)
        else:
            unresolved = True
    return sorted(set(regions)), unresolved


def provider_default_tags(plan: Mapping[str, Any]) -> dict[str, str]:
    variables = plan.get("variables") or {}
    tags: dict[str, str] = {}
    for provider in _aws_providers(plan):
        for block in (provider.get("expressions") or {}).get("default_tags") or []:
            value = _resolve(block.get("tags"), variables)
            if isinstance(value, dict):
                tags.update({str(k): str(v) for k, v in value.items()})
    return tags


def is_taggable(resource: PlannedResource) -> bool:
    after = resource.after or {}
    return "tags_all" in after or "tags" in after or "tags_all" in resource.after_unknown


def effective_tags(resource: PlannedResource, default_tags: Mapping[str, str]) -> dict[str, str]:
    """`tags_all` when the plan knows it, else the resource's tags over the provider's."""
    after = resource.after or {}
    tags_all = after.get("tags_all")
    if isinstance(tags_all, dict) and tags_all:
        return {str(k): str(v) for k, v in tags_all.items()}
    own = after.get("tags") if isinstance(after.get("tags"), dict) else {}
    return {**default_tags, **{str(k): str(v) for k, v in (own or {}).items()}}
