"""The component catalog (allow-list) shared by Atlas, Forge and Sentinel.

`catalog.components.CATALOG` maps each catalog type to its entry; `parse_params` turns a
PlanSpec component's raw `params` into the entry's validated parameter model.
"""

from __future__ import annotations

from catalog.components import CATALOG, CatalogEntry, Params
from schemas.plan import Component


class UnknownComponentTypeError(ValueError):
    """A component names a type that is not in the catalog."""


def entry_for(component: Component) -> CatalogEntry:
    entry = CATALOG.get(component.type)
    if entry is None:
        raise UnknownComponentTypeError(
            f"component '{component.name}' has type '{component.type}', which is not in the "
            f"catalog ({', '.join(sorted(CATALOG))})"
        )
    return entry


def parse_params(component: Component) -> Params:
    """The component's parameters validated against its catalog entry (defaults filled in)."""
    return entry_for(component).params.model_validate(component.params)


__all__ = [
    "CATALOG",
    "CatalogEntry",
    "Params",
    "UnknownComponentTypeError",
    "entry_for",
    "parse_params",
]
