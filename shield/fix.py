"""The Plan fix an advisory allows: what the catalog can change to leave the vulnerable
version, and the PlanSpec of the stack's next revision with that change made.

Only what the catalog expresses is offered: an RDS engine bumped within its major version
(`engine_version` 16 -> 16.4, a minor pin the catalog accepts). Anything else (a major
upgrade, an image whose fixed tag no advisory names, the crew's own tools) has no button:
a human decides.
"""

from __future__ import annotations

from pydantic import ValidationError

from catalog import CATALOG
from schemas.plan import PlanSpec
from schemas.shield import FixOffer, InventoryItem, InventoryKind
from shield.versions import compare, same_series, version_key

_ENGINE_TYPES = {"rds_postgres": 1, "rds_mysql": 2}
"""Catalog types whose engine version can be pinned, and how many parts name the major."""


def fix_offer(item: InventoryItem, plan: PlanSpec | None, fixed_in: str | None) -> FixOffer | None:
    """The catalog change that moves `item` to `fixed_in`, when the catalog can make it."""
    if plan is None or fixed_in is None or item.kind is not InventoryKind.DATABASE:
        return None
    component = next((c for c in plan.components if c.name == item.component), None)
    if component is None or component.type not in _ENGINE_TYPES:
        return None
    major_parts = _ENGINE_TYPES[component.type]
    current = str(component.params.get("engine_version") or _default_version(component.type))
    major = ".".join(map(str, version_key(current)[:major_parts]))
    if not same_series(fixed_in, major) or len(version_key(fixed_in)) <= major_parts:
        return None  # a fix in another major version is an upgrade a human plans
    if item.version and not same_series(item.version, major):
        return None
    if len(version_key(current)) > major_parts and compare(current, fixed_in) >= 0:
        return None  # the plan already asks for the fixed version or newer
    offer = FixOffer(
        component=component.name,
        param="engine_version",
        current=current,
        proposed=fixed_in,
    )
    try:
        propose_fix(plan, offer)
    except (ValidationError, ValueError):
        return None  # the catalog does not accept that version
    return offer


def _default_version(catalog_type: str) -> str:
    field = CATALOG[catalog_type].params.model_fields["engine_version"]
    return str(field.default)


def propose_fix(plan: PlanSpec, offer: FixOffer) -> PlanSpec:
    """The next revision's PlanSpec: `plan` with the offer's parameter changed, checked by the
    catalog's parameter model (raises ValidationError when it does not accept it)."""
    components = []
    for component in plan.components:
        if component.name == offer.component:
            params = {**component.params, offer.param: offer.proposed}
            CATALOG[component.type].params.model_validate(params)
            component = component.model_copy(update={"params": params})
        components.append(component)
    return plan.model_copy(
        update={
            "revision": plan.revision + 1,
            "components": components,
            "assumptions": [
                *plan.assumptions[:99],
                f"Security fix: {offer.component}.{offer.param} {offer.current} -> "
                f"{offer.proposed}",
            ][-100:],
        }
    )


def describe_fix(offer: FixOffer) -> list[str]:
    return [
        f"{offer.component}: {offer.param} {offer.current} -> {offer.proposed}",
    ]
