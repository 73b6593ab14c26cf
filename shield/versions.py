"""Version numbers as advisories use them: dotted numbers, compared numerically.

`16.2` < `16.10`; `8.0.40` < `8.4`; a suffix (`1.11.4-rc1`, `7.1.0p1`) orders after its
number's parts only through the numeric parts (enough for ranges drawn on release numbers).
"""

from __future__ import annotations

import re

_PART = re.compile(r"\d+")
VERSION = re.compile(r"\bv?(\d+(?:\.\d+){0,3})\b")


def version_key(version: str) -> tuple[int, ...]:
    """Numeric parts of a version: '16.2' -> (16, 2); 'v1.11.4' -> (1, 11, 4)."""
    head = version.strip().lstrip("vV").split("-", 1)[0].split("+", 1)[0]
    parts: list[int] = []
    for piece in head.split("."):
        match = _PART.match(piece)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    width = max(len(a), len(b))
    pa, pb = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return (pa > pb) - (pa < pb)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older, the same as, or newer than `b` (missing parts are 0)."""
    return _cmp(version_key(a), version_key(b))


def same_series(version: str, series: str) -> bool:
    """Whether `version` is in `series` ('16.2' is in '16'; '8.0.40' is in '8.0')."""
    v, s = version_key(version), version_key(series)
    return bool(s) and v[: len(s)] == s


def is_series_only(version: str, *, parts: int) -> bool:
    """Whether `version` names only a release series (`16` for postgres: parts=1; `8.0` for
    mysql: parts=2), as a catalog stack does when it follows AWS's automatic minor upgrades."""
    return 0 < len(version_key(version)) <= parts


def in_range(
    version: str,
    *,
    start_including: str | None = None,
    start_excluding: str | None = None,
    end_including: str | None = None,
    end_excluding: str | None = None,
) -> bool:
    """Whether `version` lies in the range (a missing bound is no limit on that side)."""
    if start_including is not None and compare(version, start_including) < 0:
        return False
    if start_excluding is not None and compare(version, start_excluding) <= 0:
        return False
    if end_including is not None and compare(version, end_including) > 0:
        return False
    return not (end_excluding is not None and compare(version, end_excluding) >= 0)


def series_overlaps(
    series: str,
    *,
    start_including: str | None = None,
    start_excluding: str | None = None,
    end_including: str | None = None,
    end_excluding: str | None = None,
) -> bool:
    """Whether some version of `series` (e.g. every 16.x for '16') lies in the range."""
    key = version_key(series)
    if not key:
        return False
    low = ".".join(map(str, key))
    high = ".".join(map(str, (*key[:-1], key[-1] + 1)))  # the next series, excluded
    lowest_bad = start_including or start_excluding
    if end_excluding is not None and compare(end_excluding, low) <= 0:
        return False
    if end_including is not None and compare(end_including, low) < 0:
        return False
    return not (lowest_bad is not None and compare(lowest_bad, high) >= 0)
