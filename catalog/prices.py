"""The built-in price table (catalog/data/prices.json), shared by Atlas and Sentinel.

Prices are per SKU and region, with the unit they are quoted in and where they come from.
Every AWS commercial region (botocore's partition 'aws', catalog/data/aws_regions.json) is
priced:

- **published**: the SKU's price transcribed for that region (`source`, `as_of`);
- **same everywhere**: a SKU whose published price is identical in every transcribed region
  (CloudFront, KMS, SQS, ...) costs that in every region;
- **estimated**: otherwise us-east-1's price times the region's multiplier
  (`REGION_MULTIPLIERS`, the typical ratio of that region's on-demand prices to us-east-1's),
  and the plan says so;
- **bound**: a region in no table (GovCloud, China, a region newer than this table) gets a
  stated conservative bound, `UNKNOWN_REGION_MULTIPLIER` x us-east-1, so an unknown price
  never blocks a design by itself and the brake errs on the safe side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from catalog.regions import region_names

#: Typical ratio of a region's on-demand prices (compute, databases, storage) to us-east-1's,
#: read off the AWS pricing pages for EC2/RDS/Fargate (2025); an estimate, stated on the plan.
REGION_MULTIPLIERS: dict[str, float] = {
    "us-east-1": 1.0, "us-east-2": 1.0, "us-west-1": 1.17, "us-west-2": 1.0,
    "ca-central-1": 1.1, "ca-west-1": 1.1, "mx-central-1": 1.15, "sa-east-1": 1.55,
    "eu-west-1": 1.11, "eu-west-2": 1.16, "eu-west-3": 1.17, "eu-central-1": 1.2,
    "eu-central-2": 1.32, "eu-north-1": 1.06, "eu-south-1": 1.17, "eu-south-2": 1.12,
    "il-central-1": 1.19, "me-south-1": 1.21, "me-central-1": 1.21, "af-south-1": 1.37,
    "ap-east-1": 1.38, "ap-east-2": 1.3, "ap-south-1": 1.05, "ap-south-2": 1.05,
    "ap-northeast-1": 1.29, "ap-northeast-2": 1.23, "ap-northeast-3": 1.29,
    "ap-southeast-1": 1.25, "ap-southeast-2": 1.25, "ap-southeast-3": 1.25,
    "ap-southeast-4": 1.25, "ap-southeast-5": 1.2, "ap-southeast-6": 1.3, "ap-southeast-7": 1.2,
}  # fmt: skip
#: The conservative bound for a region without a multiplier (above every known region's).
UNKNOWN_REGION_MULTIPLIER = 1.6
BASE_REGION = "us-east-1"
Basis = Literal["published", "same everywhere", "estimated", "bound"]


class UnpricedError(LookupError):
    """No price for this SKU in this region."""


@dataclass(frozen=True)
class Price:
    sku: str
    region: str
    usd: float
    unit: str
    basis: str
    how: Basis = "published"
    """published, same everywhere, estimated (multiplier) or bound (conservative)."""


@dataclass(frozen=True)
class PriceTable:
    source: str
    as_of: str
    hours_per_month: float
    regions: tuple[str, ...]
    """Regions with transcribed prices."""
    skus: dict[str, dict[str, Any]]
    commercial: tuple[str, ...] = field(default_factory=tuple)

    def price(self, sku: str, region: str) -> Price:
        entry = self.skus.get(sku)
        if entry is None:
            raise UnpricedError(f"no SKU '{sku}' in the price table")
        prices: dict[str, float] = entry["usd"]
        usd = prices.get(region)
        if usd is not None:
            return Price(sku, region, float(usd), entry["unit"], entry["basis"])
        base = prices.get(BASE_REGION)
        if base is None:
            raise UnpricedError(f"no price for {sku} in {region} nor in {BASE_REGION}")
        if len(set(prices.values())) == 1:
            return Price(sku, region, float(base), entry["unit"], entry["basis"],
                         "same everywhere")  # fmt: skip
        how: Basis = "estimated" if region in REGION_MULTIPLIERS else "bound"
        return Price(sku, region, round(float(base) * self.multiplier(region), 6),
                     entry["unit"], entry["basis"], how)  # fmt: skip

    def multiplier(self, region: str) -> float:
        return REGION_MULTIPLIERS.get(region, UNKNOWN_REGION_MULTIPLIER)

    def monthly(self, sku: str, region: str, hours: float | None = None) -> float:
        """An hourly SKU over a month (730 hours unless `hours` says otherwise)."""
        return self.price(sku, region).usd * (self.hours_per_month if hours is None else hours)

    def supports(self, region: str) -> bool:
        """Every region has a price: published, estimated or a conservative bound."""
        return bool(region)

    def published(self, region: str) -> bool:
        return region in self.regions

    def how_priced(self, region: str) -> str:
        """One sentence for the plan: how this region's prices were obtained."""
        if self.published(region):
            return f"{self.source}, as of {self.as_of}"
        m = self.multiplier(region)
        if region in REGION_MULTIPLIERS:
            return (
                f"estimated for {region}: {BASE_REGION}'s published price x {m:g} (the "
                f"region's typical price ratio), prices the same in every region as is; "
                f"{self.source}, as of {self.as_of}"
            )
        return (
            f"{region} has no price data: a conservative bound of {m:g} x {BASE_REGION}'s "
            f"published price (above every known region), so the brake errs on the safe side"
        )


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
        commercial=tuple(sorted(region_names())),
    )
