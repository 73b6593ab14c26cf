"""Which advisory affects which inventory item, and why.

With CPE data (NVD configurations) an entry matches an item whose product is the CPE's and
whose version lies in the range (or equals the CPE's exact version). Without CPE data the
entry's text must name the product and either our exact version or a bound it falls under
("before 16.4", "prior to 1.11.5", "< 8.0.40"). A catalog stack that pins only a release
series (postgres `16`, following AWS's minor upgrades) matches when the range reaches into
that series, and the reason says the running minor version is not known from the state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.shield import Advisory, AffectedRange, InventoryItem, InventoryKind, MatchBasis
from shield.versions import compare, in_range, is_series_only, same_series, series_overlaps


@dataclass(frozen=True)
class Product:
    cpe: frozenset[tuple[str, str]]
    """(vendor, product) pairs of its CPE names; vendor '*' matches any vendor."""
    names: tuple[str, ...]
    """How advisory text names it (case-insensitive, whole words)."""
    series_parts: int = 1
    """How many version parts name a release series (postgres 16: 1; mysql 8.0: 2)."""


PRODUCTS: dict[str, Product] = {
    "postgresql": Product(frozenset({("postgresql", "postgresql")}), ("postgresql", "postgres")),
    "mysql": Product(frozenset({("oracle", "mysql"), ("mysql", "mysql")}), ("mysql",), 2),
    "mariadb": Product(frozenset({("mariadb", "mariadb")}), ("mariadb",), 2),
    "redis": Product(frozenset({("redis", "redis"), ("redislabs", "redis")}), ("redis",), 2),
    "valkey": Product(
        frozenset({("lfprojects", "valkey"), ("valkey-io", "valkey")}), ("valkey",), 2
    ),
    "memcached": Product(frozenset({("memcached", "memcached")}), ("memcached",), 2),
    "nginx": Product(frozenset({("f5", "nginx"), ("nginx", "nginx")}), ("nginx",), 2),
    "kubernetes": Product(frozenset({("kubernetes", "kubernetes")}), ("kubernetes",), 2),
    "python": Product(frozenset({("python", "python")}), ("python", "cpython"), 2),
    "node.js": Product(frozenset({("nodejs", "node.js")}), ("node.js", "nodejs"), 1),
    "terraform": Product(frozenset({("hashicorp", "terraform")}), ("terraform",), 2),
    "terraform-provider-aws": Product(
        frozenset({("hashicorp", "terraform_provider_aws"), ("hashicorp", "aws_provider")}),
        ("terraform-provider-aws", "terraform aws provider", "aws provider for terraform"),
        2,
    ),
}


@dataclass(frozen=True)
class Match:
    basis: MatchBasis
    reason: str
    fixed_in: str | None
    """The first version without the flaw, when the advisory says (a range's exclusive end,
    or the text's 'before X')."""


def product_of(item: InventoryItem) -> Product | None:
    known = PRODUCTS.get(item.product)
    if known is not None:
        return known
    if item.kind is InventoryKind.CONTAINER_IMAGE and item.product:
        return Product(frozenset({("*", item.product)}), (item.product,), 2)
    return None


def match(advisory: Advisory, item: InventoryItem) -> Match | None:
    """How `advisory` affects `item`, or None."""
    if item.kind is InventoryKind.TLS_POLICY and item.version:
        return _match_policy(f"{advisory.title} {advisory.summary}", item)
    product = product_of(item)
    if product is None or not item.version:
        return None
    if advisory.affected:
        return _match_cpe(advisory.affected, item, product)
    return _match_text(f"{advisory.title} {advisory.summary}", item, product)


#: "move listeners to X", "use X instead": X is the recommendation, not the affected one
_RECOMMENDS = re.compile(r"\b(?:to|use|using)\s+(?:the\s+)?(?:policy\s+)?$", re.IGNORECASE)


def _match_policy(text: str, item: InventoryItem) -> Match | None:
    """A TLS policy has no versions: an advisory matches when it names the policy itself
    (`ELBSecurityPolicy-2016-08 still negotiates TLS 1.0`)."""
    policy = item.version or ""
    mentions = re.finditer(rf"(?<![\w-]){re.escape(policy)}(?![\w-])", text)
    if all(_RECOMMENDS.search(text[max(0, m.start() - 40) : m.start()]) for m in mentions):
        return None  # not named, or named only as what to move to
    return Match(
        MatchBasis.TEXT, f"{item.address} uses TLS policy {policy}, which the advisory names", None
    )


def _names_product(r: AffectedRange, product: Product) -> bool:
    return any(v in ("*", r.vendor) and p == r.product for v, p in product.cpe)


def _describe(r: AffectedRange) -> str:
    if r.version:
        return f"version {r.version}"
    low = (
        f"from {r.start_including}"
        if r.start_including
        else f"after {r.start_excluding}"
        if r.start_excluding
        else ""
    )
    high = (
        f"before {r.end_excluding}"
        if r.end_excluding
        else f"up to {r.end_including}"
        if r.end_including
        else ""
    )
    return " ".join(p for p in (low, high) if p) or "every version"


def _match_cpe(ranges: list[AffectedRange], item: InventoryItem, product: Product) -> Match | None:
    version = item.version or ""
    series = is_series_only(version, parts=product.series_parts)
    for r in ranges:
        if not _names_product(r, product):
            continue
        bounds = {
            "start_including": r.start_including,
            "start_excluding": r.start_excluding,
            "end_including": r.end_including,
            "end_excluding": r.end_excluding,
        }
        if r.version:
            hit = same_series(r.version, version) if series else compare(version, r.version) == 0
        elif series:
            hit = series_overlaps(version, **bounds)
        else:
            hit = in_range(version, **bounds)
        if not hit:
            continue
        runs = (
            f"runs {item.product} {version} (a release series: the running minor version is "
            "not in the state, so it may be affected)"
            if series
            else f"runs {item.product} {version}"
        )
        return Match(
            MatchBasis.CPE_RANGE,
            f"{item.address} {runs}; {r.cpe} is affected {_describe(r)}",
            r.end_excluding,
        )
    return None


_NUM = r"v?\d+(?:\.\d+){0,3}"
#: "before 16.4", "prior to PostgreSQL 17.3, 16.7 and 15.11", "< 8.0.40"
_BOUND = re.compile(
    rf"(?:before|prior to|earlier than|below|older than|<)\s*(?:[A-Za-z][\w.-]*\s+)?"
    rf"({_NUM}(?:\s*(?:,|and|or|,\s*and)\s*{_NUM})*)",
    re.IGNORECASE,
)

#: "fixed in Terraform 1.11.5 and 1.12.1", "upgrade to 16.7": versions named as the fix
_FIXED = re.compile(
    rf"(?:fixed in|patched in|resolved in|upgrade to|update to)\s*(?:[A-Za-z][\w.-]*\s+)?"
    rf"({_NUM}(?:\s*(?:,|and|or|,\s*and)\s*{_NUM})*)",
    re.IGNORECASE,
)


def _match_text(text: str, item: InventoryItem, product: Product) -> Match | None:
    version = item.version or ""
    names = "|".join(re.escape(n) for n in product.names)
    mention = re.compile(rf"(?<![\w.-])(?:{names})(?![\w-])", re.IGNORECASE)
    found = mention.search(text)
    if found is None:
        return None
    name = found.group()
    series = is_series_only(version, parts=product.series_parts)
    bounded = False
    for bound in _BOUND.finditer(text):
        for fixed in re.findall(_NUM, bound.group(1)):
            fixed = fixed.lstrip("vV")
            # each bound is one series' fix ("before 17.3, 16.7"): it speaks of that series
            series_of_fix = ".".join(fixed.split(".")[: product.series_parts])
            if not same_series(version, series_of_fix) and not same_series(series_of_fix, version):
                continue
            bounded = True
            if series or compare(version, fixed) < 0:
                return Match(
                    MatchBasis.TEXT,
                    f"{item.address} runs {item.product} {version}; the advisory names {name} "
                    f"and versions before {fixed}",
                    fixed,
                )
    # A bound of our series decides ("16.7 released, before 16.7 affected": 16.7 is the fix);
    # without one, the advisory naming our exact version is the match.
    fixes = {v.lstrip("vV") for m in _FIXED.finditer(text) for v in re.findall(_NUM, m.group(1))}
    if (
        not bounded
        and not series
        and version not in fixes
        and re.search(rf"(?<![\w.]){re.escape(version)}(?![\w]|\.\d)", text)
    ):
        return Match(
            MatchBasis.TEXT,
            f"{item.address} runs {item.product} {version}; the advisory names {name} {version}",
            None,
        )
    return None
