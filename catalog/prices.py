"""The built-in price table (catalog/data/prices.json), shared by Atlas and Sentinel.

Prices are per SKU and region, with the unit they are quoted in and where they come from. A
region outside the table is not priced: callers say so instead of guessing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


class UnpricedError(LookupError):
    """No price for this SKU in this region."""


@dataclass(frozen=True)
class Price:
    sku: str
    region: str
    usd: float
    unit: str
    basis: str


@dataclass(frozen=True)
class PriceTable:
    source: str
    as_of: str
    hours_per_month: float
    regions: tuple[str, ...]
    skus: dict[str, dict[str, Any]]

    def price(self, sku: str, region: str) -> Price:
        entry = self.skus.get(sku)
        if entry is None:
            raise UnpricedError(f"no SKU '{sku}' in the price table")
        usd = entry["usd"].get(region)
        if usd is None:
            raise UnpricedError(
                f"no price for {sku} in {region}; priced regions: {', '.join(self.regions)}"
            )
        return Price(
            sku=sku, region=region, usd=float(usd), unit=entry["unit"], basis=entry["basis"]
        )

    def monthly(self, sku: str, region: str, hours: float | None = None) -> float:
        """An hourly SKU over a month (730 hours unless `hours` says otherwise)."""
        return self.price(sku, region).usd * (self.hours_per_month if hours is None else hours)

    def supports(self, region: str) -> bool:
        return region in self.regions


@lru_cache(maxsize=1)
def load_prices() -> PriceTable:
    raw = json.loads(
        resources.files("catalog").joinpath("data/prices.json").read_text(encoding="utf-8")
    )
    return PriceTable(
        source=raw["source"],
        as_of=raw["as_of"],
        hours_per_month=float(raw["hours_per_month"]),
        regions=tuple(raw["regions"]),
        skus=raw["skus"],
    )
