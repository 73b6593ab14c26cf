"""Atlas's reading of a goal: every requirement becomes a typed `Ask` (catalog/asks.py).

`read_goal` reads the structured fields (each one an ask) and the description, with
- rules for what has a unit or a fixed form (catalog/reading/quantities.py): request rates,
  sizes, retention, schedules, domains, regions, environment, budget, in several languages;
- the described capability set (catalog/reading/capabilities.py): patterns per capability,
  and, when a `MeaningMatcher` is given, a match by meaning of each clause against example
  phrasings (the sentence-embedding model lives behind that interface in tools/);
- botocore's list of AWS services (catalog/reading/services.py): any service named is read,
  even one the catalog cannot build;
- typo tolerance (catalog/reading/typos.py).

Pure: no I/O beyond package data, no settings; the matcher is injected. The description is
untrusted: reading it only ever selects capability names and bounded parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from catalog.asks import Ask, AskKind, AskSource, ParamValue, field_source, text_source
from catalog.reading import quantities as q
from catalog.reading.capabilities import (
    BY_NAME,
    CAPABILITIES,
    COMPILED,
    IMPLICIT_SERVICES,
    REFUSALS,
    SERVICE_TO_CAPABILITY,
)
from catalog.reading.counts import (
    COUNTABLE,
    combine,
    counted,
    is_plural,
    noun_end,
    service_mentions,
)
from catalog.reading.services import service_index
from catalog.reading.typos import Corrected, Vocabulary, correct
from schemas.goal import Availability, GoalStatement

MAX_TEXT = 20_000
MAX_CLAUSES = 48


class MeaningMatcher(Protocol):
    """Reads clauses by meaning (tools/ask_matcher.py: a sentence-embedding model)."""

    def match(self, clauses: Sequence[str]) -> list[list[tuple[str, float]]]:
        """For each clause, the capability names (catalog/reading/capabilities.py) it
        expresses, with their similarity, best first; empty when it states none."""
        ...


@dataclass(frozen=True)
class ReadingAids:
    """What a process injects: a matcher by meaning and the words its language knows."""

    meaning: MeaningMatcher | None = None
    known_word: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class Reading:
    asks: tuple[Ask, ...]
    fixes: tuple[tuple[str, str], ...] = ()
    """Typos read as another word: (as written, as read)."""

    def get(self, name: str) -> Ask | None:
        return next((a for a in self.asks if a.name == name), None)

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.asks)

    def named(self, prefix: str) -> list[Ask]:
        return [a for a in self.asks if a.name.startswith(prefix)]


@dataclass
class _Hit:
    name: str
    start: int
    end: int
    params: dict[str, ParamValue] = field(default_factory=dict)
    score: float = 1.0
    title: str | None = None
    kind: AskKind | None = None
    note: str | None = None


_NEGATION = re.compile(
    r"(?:\b(?:no|not|without|don'?t|do not|doesn'?t|does not|never|nor|avoid|instead of|"
    r"rather than|no need for|sans|pas de|pas d'|ohne|kein\w*|nicht|sin|sem|senza|nessun\w*)\b)"
    r"(?:\W+\w+){0,3}\W*$"
)
_CLAUSE_BREAK = re.compile(r"[.;!?\n,:()]|\bbut\b|\baber\b|\bmais\b|\bpero\b")
_SENTENCE = re.compile(r"[^.!?;\n]+(?:[.!?;\n]|$)")
_CLAUSE = re.compile(r"[^.!?;\n,:()]+")


def read_goal(goal: GoalStatement, aids: ReadingAids | None = None) -> Reading:
    """Every ask of `goal`: structured fields first, then the description (and title).

    The clauses of the description and the title that rules left unread go to the matcher
    by meaning together, in one call (one batch through the model per goal)."""
    aids = aids or ReadingAids()
    text = goal.description[:MAX_TEXT]
    body, title = _rule_pass(text, aids), _rule_pass(goal.title, aids)
    if aids.meaning is not None:
        clauses = [*_open_clauses(body), *_open_clauses(title)][:MAX_CLAUSES]
        if clauses:
            results = aids.meaning.match([c.text for c in clauses])
            for clause, matches in zip(clauses, results, strict=True):
                clause.owner.hits += _meaning_hits(clause, matches)
    hits, title_hits = _finish_pass(body), _finish_pass(title)
    asks = _merge(goal, text, hits, title_hits)
    return Reading(tuple(asks), body.corrected.fixes + title.corrected.fixes)


# -- the text --------------------------------------------------------------------------------


@dataclass
class _Pass:
    """One text being read: its typo-corrected form and the hits so far."""

    corrected: Corrected
    hits: list[_Hit]

    @property
    def text(self) -> str:
        return self.corrected.text


@dataclass(frozen=True)
class _Clause:
    owner: _Pass
    start: int
    end: int
    text: str


def _rule_pass(original: str, aids: ReadingAids) -> _Pass:
    lower = "".join(c.lower() if len(c.lower()) == 1 else c for c in original)
    corrected = correct(lower, _closest, _vocabulary().words, aids.known_word)
    text = corrected.text
    hits = [*_pattern_hits(text), *_refusals(text), *_services(text, lower, original, corrected)]
    hits += _quantities(text, original if len(original) == len(text) else text)
    return _Pass(corrected, hits)


def _finish_pass(p: _Pass) -> list[_Hit]:
    text = p.text
    hits = [h for h in _resolve(p.hits) if not _negated(text, h)]
    hits += _counts(text, hits)
    for h in hits:
        h.start, h.end = p.corrected.original(h.start), p.corrected.original(h.end)
    return hits


def _pattern_hits(text: str) -> Iterator[_Hit]:
    for cap, pattern in COMPILED:
        for m in pattern.finditer(text):
            if m.end() > m.start():
                yield _Hit(cap.name, m.start(), m.end())


def _refusals(text: str) -> Iterator[_Hit]:
    for name, title, pattern in REFUSALS:
        for m in re.finditer(pattern, text):
            yield _Hit(name, m.start(), m.end(), title=title, kind=AskKind.CAPABILITY)


def _services(text: str, lower: str, original: str, corrected: object) -> Iterator[_Hit]:
    del lower, corrected
    # Service names are read in the corrected text (typos fixed), case checked on the original
    # only when the lengths agree (no word was replaced before the name).
    reference = original if len(original) == len(text) else text
    for service, start, end in service_index().find(text, reference):
        capability = SERVICE_TO_CAPABILITY.get(service.key)
        if capability is not None:
            yield _Hit(capability, start, end, params={"service": service.id})
        elif service.key in IMPLICIT_SERVICES:
            continue
        else:
            yield _Hit(
                f"aws.{service.key}",
                start,
                end,
                params={"service": service.id},
                title=service.full_name,
                kind=AskKind.CAPABILITY,
            )


def _quantities(text: str, cased: str) -> list[_Hit]:
    """`cased`: the text as written when no typo fix moved it (French Go/To need the case)."""
    hits: list[_Hit] = []
    for f in q.request_rates(text):
        hits.append(_Hit("throughput.rps", f.start, f.end, {"rps": f.value}))
    for f in q.sizes(cased):
        if not _inside_rate(hits, f):
            hits.append(_Hit("size", f.start, f.end, {"size_gb": f.value}))
    for f in q.domains(text):
        hits.append(_Hit("domain", f.start, f.end, {"host": f.value}))
    for f in q.region_codes(text):
        hits.append(_Hit("region", f.start, f.end, {"region": f.value}))
    for f in q.environments(text):
        hits.append(_Hit("environment", f.start, f.end, {"environment": f.value}))
    for f in q.budgets(text):
        hits.append(_Hit("budget", f.start, f.end, {"monthly_usd": f.value}))
    literal = q.literal_schedule(text)
    if literal is not None:
        hits.append(_Hit("schedule", literal.start, literal.end, {"expression": literal.value}))
    for m in _SENTENCE.finditer(text):
        sentence = m.group(0)
        for f in q.retentions(sentence, m.start()):
            hits.append(_Hit(f.name, f.start, f.end, {"days": f.value}))
        if literal is None:
            for f in q.schedules(sentence, m.start()):
                hits.append(_Hit("schedule", f.start, f.end, {"expression": f.value}))
    hits += _region_names(text)
    return hits


def _inside_rate(hits: list[_Hit], f: q.Found) -> bool:
    return any(h.start <= f.start < h.end for h in hits)


def _region_names(text: str) -> Iterator[_Hit]:
    for name, code in _region_words().items():
        for m in re.finditer(rf"\b(in|near|from|en|in der|em|à|a) {re.escape(name)}\b", text):
            yield _Hit("region", m.start() + len(m.group(1)) + 1, m.end(), {"region": code})


def _open_clauses(p: _Pass) -> list[_Clause]:
    """Clauses of three words or more that rules did not already mostly read."""
    text = p.text
    return [
        _Clause(p, m.start(), m.end(), text[m.start() : m.end()].strip())
        for m in _CLAUSE.finditer(text)
        if len(m.group(0).split()) >= 3 and not _covered(p.hits, m.start(), m.end())
    ]


def _meaning_hits(clause: _Clause, matches: list[tuple[str, float]]) -> list[_Hit]:
    text, start, end = clause.owner.text, clause.start, clause.end
    ruled = {h.name for h in clause.owner.hits if start <= h.start < end and h.score == 1.0}
    kinds_ruled = any(n.startswith("workload.") for n in ruled)
    found: list[_Hit] = []
    for name, score in matches:
        if name in ruled or (name.startswith("workload.") and kinds_ruled):
            continue
        if name not in BY_NAME:
            continue
        lead = len(text[start:end]) - len(text[start:end].lstrip())
        found.append(_Hit(name, start + lead, end, score=round(score, 3)))
    return found


def _counts(text: str, hits: list[_Hit]) -> list[_Hit]:
    """Counts and instance names on the mentions of countable capabilities (in place), and
    a `compute.service` hit for "three services" that names no kind."""
    covered = [(h.start, h.end) for h in hits if h.score == 1.0]
    for h in hits:
        if h.name in COUNTABLE and h.score == 1.0:
            end = noun_end(text, h.start, h.end)
            if end is not None:
                # A word another capability read never names an instance ("private"); one
                # of the same capability may ("the archive bucket", "the uploads bucket").
                others = [(o.start, o.end) for o in hits if o.score == 1.0 and o.name != h.name]
                _set_count(h, text, others, end)
    found: list[_Hit] = []
    for start, end in service_mentions(text):
        if any(o.start <= start < o.end for o in hits if o.score == 1.0):
            continue
        h = _Hit("compute.service", start, end)
        _set_count(h, text, covered, end)
        if "count" in h.params or "," in str(h.params.get("names", "")):
            found.append(h)
    return found


def _set_count(h: _Hit, text: str, covered: list[tuple[int, int]], end: int) -> None:
    """`end`: where the counted noun ends ("nightly" is counted as "nightly jobs")."""
    c = counted(text, h.start, end, covered, plural=is_plural(text[h.start : end]))
    if c.count is not None and c.count >= 2:
        h.params["count"] = c.count
    if c.names:
        h.params["names"] = ",".join(c.names)


def _covered(hits: list[_Hit], start: int, end: int) -> bool:
    """Whether rules already read most of a clause (its meaning adds little, and reading it
    again costs the model's time)."""
    marked: set[int] = set()
    for h in hits:
        marked.update(range(max(start, h.start), min(end, h.end)))
    return len(marked) * 2 >= max(1, end - start)


def _resolve(hits: list[_Hit]) -> list[_Hit]:
    """A match inside a longer match of another name yields to it ("static website" is not
    also a "website"; "NoSQL database" is not a relational one)."""
    capability_hits = [h for h in hits if h.score == 1.0 and not h.name.startswith("aws.")]
    kept: list[_Hit] = []
    stored = [h for h in capability_hits if h.name == "store.object_storage"]
    for h in hits:
        if h.name in ("schedule", "workload.batch") and any(
            o.start <= h.start and h.end <= o.end and o.end - o.start > h.end - h.start
            for o in stored
        ):
            continue  # "keep our nightly dumps": the schedule describes what is stored
        if h.name in _QUANTITY_NAMES:
            kept.append(h)
            continue
        if not h.name.startswith("aws.") and h.name not in _GENERIC:
            kept.append(h)
            continue
        longer = [
            o for o in (capability_hits if h.name.startswith("aws.") else hits)
            if o is not h and o.name != h.name and o.name not in _QUANTITY_NAMES
            and o.score == 1.0
            and o.start <= h.start and h.end <= o.end and (o.end - o.start) > (h.end - h.start)
        ]  # fmt: skip
        same_span_capability = h.name.startswith("aws.") and any(
            o.start <= h.start and h.end <= o.end for o in capability_hits
        )
        if not longer and not same_span_capability:
            kept.append(h)
    return kept


#: Names whose words also appear inside more specific phrases ("NoSQL database", "static
#: website", "AWS Batch", "doesn't need to be highly available"): they yield to those.
_GENERIC = {
    "store.relational", "workload.web_service", "workload.api", "store.redis",
    "compute.container", "workload.batch", "availability.multi_az", "privacy.private",
    "encryption.at_rest", "observability.monitoring",
}  # fmt: skip
_QUANTITY_NAMES = {
    "throughput.rps", "size", "domain", "region", "environment", "budget", "schedule",
    "retention.logs", "retention.backups", "retention.objects", "retention.messages",
}  # fmt: skip
_POSITIVE_NEGATIONS = {"availability.single_az", "privacy.private", "availability.multi_az"}


def _negated(text: str, h: _Hit) -> bool:
    if h.name in _POSITIVE_NEGATIONS or h.name in _QUANTITY_NAMES:
        return False
    before = text[max(0, h.start - 60) : h.start]
    breaks = list(_CLAUSE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    return bool(_NEGATION.search(before))


# -- asks -------------------------------------------------------------------------------------

_STORE_NAMES = ("store.postgres", "store.mysql", "store.relational", "store.redis",
                "store.object_storage")  # fmt: skip


def _merge(goal: GoalStatement, text: str, hits: list[_Hit], title_hits: list[_Hit]) -> list[Ask]:
    asks: dict[str, Ask] = {}
    for ask in _field_asks(goal):
        asks.setdefault(ask.name, ask)
    _attach_sizes(hits)
    for h in sorted(hits, key=lambda h: h.start):
        _add(asks, _text_ask(text, h), goal)
    if "store.relational" in asks and ("store.postgres" in asks or "store.mysql" in asks):
        # "a PostgreSQL database" names the engine (and "two databases, both Postgres" the
        # count of that engine's databases).
        relational = asks.pop("store.relational")
        engine = "store.postgres" if "store.postgres" in asks else "store.mysql"
        _add(asks, _counts_only(asks[engine], relational), goal)
    schedule = asks.get("schedule")
    if schedule is not None and not any(n.startswith("workload.") for n in asks):
        # Something runs on a schedule and no workload is named: a scheduled job.
        _add(asks, Ask(AskKind.CAPABILITY, "workload.batch", BY_NAME["workload.batch"].title,
                       schedule.source), goal)  # fmt: skip
    for h in title_hits:
        if h.name in _QUANTITY_NAMES or h.name in asks:
            continue
        h.params.pop("count", None)
        h.params.pop("names", None)
        _add(asks, _ask(h, AskSource(text=goal.title[h.start : h.end], field="title")), goal)
    return [_settle_count(a) for a in asks.values()]


def _counts_only(target: Ask, other: Ask) -> Ask:
    """`target` with `other`'s count and names (the rest of `other` is not carried over)."""
    params = {k: v for k, v in other.params.items() if k in ("count", "names")}
    return replace(target, params=params) if params else target


def _settle_count(ask: Ask) -> Ask:
    """count = the larger of the number read and the names given; both dropped below two
    (one instance is what the planner designs anyway)."""
    if ask.name not in COUNTABLE or ("count" not in ask.params and "names" not in ask.params):
        return ask
    params = dict(ask.params)
    names = [n for n in str(params.pop("names", "")).split(",") if n]
    count = max(int(params.pop("count", 0) or 0), len(names))
    if count >= 2:
        params["count"] = count
        if len(names) >= 2:
            params["names"] = ",".join(names)
    return replace(ask, params=params)


def _attach_sizes(hits: list[_Hit]) -> None:
    """A size belongs to the nearest data store named before it in the text (or after it)."""
    stores = [h for h in hits if h.name in _STORE_NAMES]
    for h in [h for h in hits if h.name == "size"]:
        if not stores:
            continue
        nearest = min(
            stores, key=lambda s: abs(s.start - h.start) + (0 if s.start < h.start else 40)
        )
        if abs(nearest.start - h.start) < 160 and "size_gb" not in nearest.params:
            nearest.params["size_gb"] = h.params["size_gb"]
            hits.remove(h)


def _text_ask(text: str, h: _Hit) -> Ask:
    return _ask(h, text_source(text, h.start, h.end))


def _ask(h: _Hit, source: AskSource) -> Ask:
    cap = BY_NAME.get(h.name)
    if cap is not None:
        kind, title = cap.kind, cap.title
    else:
        kind = h.kind or (AskKind.CAPABILITY if h.name == "domain" else AskKind.QUALITY)
        title = h.title or _TITLES.get(h.name, h.name)
    return Ask(kind, h.name, title, source, dict(h.params), h.score, h.note)


_TITLES = {
    "throughput.rps": "throughput", "size": "data size", "domain": "custom domain",
    "region": "region", "environment": "environment", "budget": "monthly budget",
    "schedule": "schedule", "retention.logs": "log retention",
    "retention.backups": "backup retention", "retention.objects": "data retention",
    "retention.messages": "message retention", "tags": "required tags",
    "allowed_regions": "allowed regions",
}  # fmt: skip
_CONFLICTING = {"throughput.rps": "rps", "environment": "environment", "region": "region",
                "budget": "monthly_usd"}  # fmt: skip


def _add(asks: dict[str, Ask], ask: Ask, goal: GoalStatement) -> None:
    current = asks.get(ask.name)
    if ask.name.startswith("availability.") and ask.name != "availability.multi_region":
        other = "availability.single_az" if ask.name.endswith("multi_az") else (
            "availability.multi_az")  # fmt: skip
        rival = asks.get(other)
        if rival is not None and not rival.source.from_text:
            asks[other] = rival.with_note(
                f"The description says '{ask.source.text}' ({ask.title}); the field wins."
            )
            return
    if current is None:
        asks[ask.name] = ask
        return
    key = _CONFLICTING.get(ask.name)
    if key is not None and not current.source.from_text:
        theirs, ours = ask.params.get(key), current.params.get(key)
        if theirs is not None and theirs != ours and not _close(theirs, ours):
            asks[ask.name] = current.with_note(
                f"The description says {theirs} ('{ask.source.text}'); the field ({ours}) wins."
            )
        return
    if ask.name in COUNTABLE and ("count" in ask.params or "names" in ask.params):
        current = _with_counts(current, ask)
        asks[ask.name] = current
    missing = {k: v for k, v in ask.params.items() if k not in current.params}
    if missing:
        asks[ask.name] = current.with_params(**missing)


def _with_counts(current: Ask, ask: Ask) -> Ask:
    """Two mentions of one capability: the larger count, the union of the names ("a billing
    queue and a shipping queue")."""

    def parts(a: Ask) -> tuple[int | None, tuple[str, ...]]:
        count = a.params.get("count")
        names = tuple(n for n in str(a.params.get("names", "")).split(",") if n)
        return (int(count) if isinstance(count, int | float) else None), names

    count, names = combine(*parts(current), *parts(ask))
    params: dict[str, ParamValue] = {}
    if count is not None:
        params["count"] = count
    if names:
        params["names"] = ",".join(names)
    return current.with_params(**params)


def _close(a: ParamValue, b: ParamValue | None) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 0.05 * max(abs(float(b)), 1.0)
    return False


def _field_asks(goal: GoalStatement) -> Iterator[Ask]:
    yield Ask(AskKind.QUALITY, "region", "region", field_source("region", goal.region),
              {"region": goal.region})  # fmt: skip
    yield Ask(AskKind.QUALITY, "budget", "monthly budget",
              field_source("budget.monthly_usd", goal.budget.monthly_usd),
              {"monthly_usd": goal.budget.monthly_usd})  # fmt: skip
    if "environment" in goal.model_fields_set:
        yield Ask(AskKind.QUALITY, "environment", "environment",
                  field_source("environment", goal.environment.value),
                  {"environment": goal.environment.value})  # fmt: skip
    w = goal.workload
    if w is not None:
        if w.kind is not None:
            name = f"workload.{w.kind.value}"
            yield Ask(AskKind.CAPABILITY, name, BY_NAME[name].title,
                      field_source("workload.kind", w.kind.value))  # fmt: skip
        if w.expected_rps:
            yield Ask(AskKind.QUALITY, "throughput.rps", "throughput",
                      field_source("workload.expected_rps", w.expected_rps),
                      {"rps": w.expected_rps})  # fmt: skip
        if w.availability is not None:
            name = ("availability.multi_az" if w.availability is Availability.MULTI_AZ
                    else "availability.single_az")  # fmt: skip
            yield Ask(AskKind.QUALITY, name, BY_NAME[name].title,
                      field_source("workload.availability", w.availability.value))  # fmt: skip
        for i, store in enumerate(w.data_stores):
            name = _STORE_OF[store.kind.value]
            params: dict[str, ParamValue] = {"size_gb": store.size_gb} if store.size_gb else {}
            yield Ask(
                AskKind.CAPABILITY,
                name,
                BY_NAME[name].title,
                field_source(f"workload.data_stores[{i}]", store.kind.value),
                params,
            )
    c = goal.constraints
    if c is not None:
        for item in c.compliance:
            yield Ask(AskKind.QUALITY, f"compliance.{item.value}", item.value.replace("_", " "),
                      field_source("constraints.compliance", item.value))  # fmt: skip
        if c.required_tags:
            yield Ask(AskKind.QUALITY, "tags", "required tags",
                      field_source("constraints.required_tags", ", ".join(sorted(c.required_tags))),
                      {"count": len(c.required_tags)})  # fmt: skip
        if c.allowed_regions:
            yield Ask(
                AskKind.QUALITY,
                "allowed_regions",
                "allowed regions",
                field_source("constraints.allowed_regions", ", ".join(c.allowed_regions)),
            )


_STORE_OF = {
    "postgres": "store.postgres", "mysql": "store.mysql", "redis": "store.redis",
    "object_storage": "store.object_storage", "queue": "messaging.queue",
}  # fmt: skip


@lru_cache(maxsize=1)
def _vocabulary() -> Vocabulary:
    words: set[str] = set()
    patterns = [p for cap in CAPABILITIES for p in cap.patterns] + [p for *_, p in REFUSALS]
    for pattern in patterns:
        plain = re.sub(r"\\[a-zA-Z]", " ", pattern)  # \b, \w, \s: not letters of a word
        words.update(re.findall(r"(?<![a-z\]])[a-z]{5,}(?![a-z\[(?{])", plain))
        for stem in re.findall(r"(?<![a-z\]])([a-z]{4,})(?:s|es)\?", plain):
            words.update((stem, stem + "s", stem + "es"))  # "consumers?": both forms
    for key in service_index().names:
        words.update(w for w in key.split() if w.isalpha() and len(w) >= 6)
    words.update(
        [
            "database",
            "databases",
            "postgres",
            "postgresql",
            "kubernetes",
            "serverless",
            "availability",
            "available",
            "redundant",
            "requests",
            "second",
            "minute",
            "minutes",
            "terabytes",
            "gigabytes",
            "retention",
            "encrypted",
            "encryption",
            "scheduled",
            "schedule",
            "nightly",
            "weekly",
            "monthly",
            "hourly",
            "every",
            "sunday",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "backups",
            "snapshots",
            "cloudfront",
            "elasticache",
            "dynamodb",
            "container",
            "containers",
            "website",
            "static",
            "landing",
            "queue",
            "queues",
            "bucket",
            "buckets",
            "production",
            "staging",
            "private",
            "storage",
            "analytics",
            "pipeline",
            "function",
            "functions",
            "email",
            "emails",
            "consumer",
            "consumers",
        ]
    )
    return Vocabulary.of(words)


@lru_cache(maxsize=8192)
def _closest(word: str) -> str | None:
    return _vocabulary().closest(word)


@lru_cache(maxsize=1)
def _region_words() -> dict[str, str]:
    from catalog.regions import region_names

    words: dict[str, str] = {}
    for code, description in region_names().items():
        inner = re.search(r"\(([^)]+)\)", description)
        if inner:
            place = inner.group(1).lower().removeprefix("n. ")
            if place not in ("central", "northern", "southern"):
                words[place] = code
    return words


__all__ = ["MeaningMatcher", "Reading", "ReadingAids", "read_goal"]
