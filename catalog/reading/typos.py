"""Typo tolerance: words close to the reader's vocabulary are read as that word.

"postgress", "kuberentes", "databse" and "cloudfornt" read as what was meant, by optimal
string alignment distance (1 edit for words of 5-7 letters, 2 from 8) to the words the
reader's rules and the AWS service list use. A word the language knows (`known`, e.g. the
embedding model's WordPiece vocabulary) is never changed: "backed" stays "backed".
The corrected text keeps positions mappable to the original, so every ask's span still
quotes the person's own words.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[a-zà-ÿ]{5,}")
#: Common words near a vocabulary word, for when no language lexicon is given.
_PLAIN = frozenset(
    [
        "backed",
        "cached",
        "caches",
        "queen",
        "queues",
        "serves",
        "served",
        "server",
        "stores",
        "storing",
        "static",
        "statics",
        "states",
        "stated",
        "nights",
        "night",
        "daily",
        "dailies",
        "weekly",
        "weeks",
        "hours",
        "hourly",
        "minutes",
        "months",
        "instance",
        "instances",
        "images",
        "based",
        "basic",
        "cases",
        "cause",
        "users",
        "using",
        "other",
        "others",
        "these",
        "those",
        "there",
        "their",
        "where",
        "which",
        "while",
        "would",
        "could",
        "should",
        "about",
        "after",
        "again",
        "below",
        "above",
    ]
)


def distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (an adjacent swap counts once), capped at limit+1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@dataclass(frozen=True)
class Vocabulary:
    words: frozenset[str]
    by_initial: dict[tuple[str, int], tuple[str, ...]]
    """Words by (first letter, length): a candidate differs by at most 2 letters in length."""

    @classmethod
    def of(cls, words: Iterable[str]) -> Vocabulary:
        kept = frozenset(w for w in words if len(w) >= 5)
        index: dict[tuple[str, int], list[str]] = {}
        for w in sorted(kept):
            index.setdefault((w[0], len(w)), []).append(w)
        return cls(kept, {k: tuple(v) for k, v in index.items()})

    def closest(self, word: str) -> str | None:
        limit = 1 if len(word) < 8 else 2
        n = len(word)
        candidates = [
            c
            for initial in {word[0], word[1]}
            for size in range(n - limit, n + limit + 1)
            for c in self.by_initial.get((initial, size), ())
        ]
        scored = []
        for candidate in candidates:
            d = distance(word, candidate, limit)
            if d <= limit:
                # Ties go to the closer-looking word ("statc" is "static", not "state").
                ratio = difflib.SequenceMatcher(None, word, candidate).ratio()
                scored.append((d, -ratio, candidate))
        return min(scored)[2] if scored else None


@dataclass(frozen=True)
class Corrected:
    text: str
    _starts: tuple[int, ...] = ()
    _shifts: tuple[int, ...] = ()
    """Cumulative (original - corrected) offset after each replaced word."""
    fixes: tuple[tuple[str, str], ...] = ()

    def original(self, pos: int) -> int:
        i = bisect.bisect_right(self._starts, pos)
        return pos + (self._shifts[i - 1] if i else 0)


def _inflected(word: str, vocabulary: frozenset[str]) -> bool:
    """A plural or other regular inflection of a vocabulary word ("services", "payments",
    "buckets") is that word, not a typo of a neighbour."""
    for ending in ("s", "es", "ed", "ing"):
        stem = word[: -len(ending)]
        if word.endswith(ending) and stem in vocabulary and not stem.endswith("s"):
            return True  # ("postgress" is a typo of "postgres", not its plural)
    # "stored", "scheduled", "cached": a verb ending in e, inflected.
    return word.endswith(("d", "r")) and word[:-1] in vocabulary and word[-2] == "e"


def correct(
    lower: str,
    closest: Callable[[str], str | None],
    vocabulary: frozenset[str],
    known: Callable[[str], bool] | None,
) -> Corrected:
    """`lower` with each unknown word close to a vocabulary word replaced by it."""
    pieces: list[str] = []
    starts: list[int] = []
    shifts: list[int] = []
    fixes: list[tuple[str, str]] = []
    at = shift = 0
    for m in _WORD.finditer(lower):
        word = m.group(0)
        if word in vocabulary or word in _PLAIN or (known is not None and known(word)):
            continue
        if _inflected(word, vocabulary):
            continue
        fix = closest(word)
        if fix is None:
            continue
        pieces.append(lower[at : m.start()])
        pieces.append(fix)
        at = m.end()
        shift += len(word) - len(fix)
        starts.append(m.start() - (shift - (len(word) - len(fix))) + len(fix))
        shifts.append(shift)
        fixes.append((word, fix))
    if not fixes:
        return Corrected(lower)
    pieces.append(lower[at:])
    return Corrected("".join(pieces), tuple(starts), tuple(shifts), tuple(fixes))
