"""Counts and named instances: "two queues", "5 buckets", "a billing queue and a shipping
queue", "three services: users, orders and payments".

A countable capability read in the text gets two parameters on its ask: `count` (how many
instances were asked for, 2..MAX_COUNT, only when more than one) and `names` (the instances'
qualifiers, comma-separated slugs, only when at least two distinct ones were named). Both are
bounded: a count is a number read by rule, a name is a lower-case ASCII word of at most
NAME_MAX letters and digits, not a filler word, at most MAX_COUNT of them. The planner turns
them into component names with a fixed suffix ("billing" -> `billing_queue`), so nothing of
the text reaches the design but a short slug in a Terraform-safe pattern.

Pure functions over the lower-cased, typo-corrected text and the reader's hits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: The largest count read (a larger number is read as this; the trace says what was built).
MAX_COUNT = 50
NAME_MAX = 20

#: Capabilities whose instances can be counted, with the nouns that count them.
COUNTABLE: frozenset[str] = frozenset(
    {
        "messaging.queue", "store.object_storage", "store.postgres", "store.mysql",
        "store.relational", "store.redis", "workload.batch", "workload.queue_worker",
        "workload.api", "workload.web_service", "workload.static_site", "compute.service",
        "compute.container", "compute.vm", "store.nosql", "compute.serverless",
        "messaging.pubsub", "messaging.stream",
    }
)  # fmt: skip

#: The last word of a mention that can be counted: a noun for one instance ("queue",
#: "buckets", "databases", "files d'attente"), not a word for what it holds ("uploads",
#: "archive") or a service name ("SQS"), which would count things twice.
_INSTANCE_NOUN = re.compile(
    r"(?:^|[\s-])(?:queues?|buckets?|databases?|dbs?|caches?|clusters?|instances?|"
    r"(?:micro-?)?services?|workers?|consumers?|jobs?|tasks?|(?:web)?sites?|pages?|apis?|"
    r"apps?|applications?|tables?|functions?|lambdas?|topics?|streams?|containers?|vms?|"
    r"machines?|servers?|nodes?|d'attente|warteschlangen?|colas?|filas?|coda|code|"
    r"datenbank(?:en)?|donn[ée]es|datos|dados|dati|compartiments?|cubos?|dienste?|"
    r"servi[cç]os?|servicios?|servizi|trabajos?|t[aâ]ches?|tareas?|tarefas?|"
    r"conteneurs?|contenedor(?:es)?|backends?|frontends?|endpoints?|portals?|shops?|"
    r"stores?|dashboards?)$"
)


def noun_end(text: str, start: int, end: int) -> int | None:
    """Where the counted noun of the mention text[start:end] ends: the mention itself when it
    ends in a noun for one instance (see _INSTANCE_NOUN), else the noun right after it
    ("nightly jobs", "SQS queues"); None when neither (the mention is not counted)."""
    if _INSTANCE_NOUN.search(text[start:end].strip()) is not None:
        return end
    after = re.match(r"[\s-]+([\w']+)", text[end : end + 40])
    if after is not None and _INSTANCE_NOUN.search(after.group(1)) is not None:
        return end + after.end()
    return None


#: Nouns that name a long-running service without saying which kind ("three services").
SERVICE_NOUNS = re.compile(
    r"\b(?:micro-?)?services?\b|\bdienste?\b|\bservi[cç]os?\b|\bservicios?\b|\bservizi\b"
)

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7,
    "huit": 8, "neuf": 9, "dix": 10,
    "ein": 1, "eine": 1, "einen": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "funf": 5,
    "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10,
    "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10,
    "um": 1, "uma": 1, "dois": 2, "duas": 2, "três": 3, "quatro": 4, "sete": 7, "oito": 8,
    "nove": 9, "dez": 10,
    "due": 2, "tre": 3, "cinque": 5, "sei": 6, "sette": 7, "otto": 8, "dieci": 10,
}  # fmt: skip
_CONJUNCTIONS = {"and", "&", "or", "et", "und", "y", "e", "ou", "oder", "o"}
#: Words that stop the look-back: the noun phrase ends before them.
_STOPS = {
    "and", "or", "with", "for", "of", "to", "in", "on", "at", "by", "from", "per", "each",
    "every", "is", "are", "be", "has", "have", "had", "that", "which", "who", "then", "as",
    "into", "onto", "behind", "plus", "also", "both", "all", "any", "some", "many", "several",
    "few", "multiple", "et", "und", "y", "e", "ou", "oder", "o", "avec", "mit", "con", "com",
    "pour", "für", "para", "de", "du", "des", "der", "die", "das", "den", "dem",
}  # fmt: skip
_ARTICLES = {
    "a", "an", "the", "this", "our", "my", "its", "their", "your", "another", "le", "la", "les",
    "el", "los", "las", "o", "os", "as", "il", "lo", "gli", "uno", "un", "une", "ein", "eine",
    "einen", "unsere", "notre", "nuestra", "nuestro", "nossa", "nosso",
}  # fmt: skip
#: Adjectives and fillers that describe an instance without naming it.
_FILLERS = {
    "small", "large", "big", "tiny", "new", "separate", "dedicated", "single", "main", "extra",
    "additional", "other", "same", "different", "own", "existing", "shared", "simple", "basic",
    "standard", "fifo", "managed", "private", "public", "internal", "external", "encrypted",
    "versioned", "durable", "secure", "dead", "letter", "dead-letter", "message", "messages",
    "aws", "amazon", "s3", "sqs", "rds", "ecs", "ec2", "fargate", "docker", "containerized",
    "container", "postgres", "postgresql", "mysql", "mariadb", "redis", "sql", "relational",
    "nosql", "storage", "object", "backend", "frontend", "web", "http", "rest", "json", "api",
    "first", "second", "third", "fourth", "fifth", "last", "next", "more", "less", "only",
    "distinct", "independent", "isolated", "individual", "long-running", "stateless", "cheap",
    "highly", "available", "regional", "global", "primary", "replica", "read", "hot", "cold",
    "good", "nice", "fast", "slow", "quick", "little", "micro", "mini", "kleine", "kleiner",
    "petite", "petit", "pequeña", "pequeño", "pequena", "pequeno", "piccola", "piccolo", "nouvelle",
    "nouveau", "neue", "neuer", "nueva", "nuevo", "nova", "novo", "nuova", "nuovo", "them",
    "it", "these", "those", "such", "we", "they", "you", "i", "need", "needs", "want", "wants",
    "use", "uses", "using", "run", "runs", "running", "get", "gets", "add", "adds", "create",
    "creates", "set", "setup", "up", "some", "also", "just", "exactly", "least",
    "most", "about", "around", "roughly", "approx", "approximately", "like",
}  # fmt: skip
#: Nouns after a count that make it a size, not a number of instances ("2 TB bucket").
_UNITS = re.compile(
    r"^(?:[kmgtp]i?b|gigs?|gigabytes?|terabytes?|megabytes?|petabytes?|rps|qps|%|ms|"
    r"seconds?|minutes?|hours?|days?|weeks?|months?|years?|x|vcpus?|cpus?|gb/s|mb/s|"
    r"dollars?|usd|eur|euros?|\$|€|k|m|million|thousand)$"
)
_WORD = re.compile(r"[\w$€%'-]+")
_CONJ = r"(?:and|or|et|und|y|e|ou|oder|o)"
_SEP = r"(?:\s*,\s*(?:" + _CONJ + r"\s+)?|\s*&\s*|\s+" + _CONJ + r"\s+)"
_AFTER_LIST = re.compile(
    r"^\s*(?:\(|:|-|–|—|named|called|for|nomm[eé]e?s|genannt|llamad[oa]s|chamad[oa]s|"
    r"chiamat[ie])\s*(?P<list>[\w'-]+(?:" + _SEP + r"[\w'-]+){1," + str(MAX_COUNT - 1) + "})"
)
_LIST_SPLIT = re.compile(_SEP)


@dataclass(frozen=True)
class Counted:
    """What the words around one mention of a capability say about its instances."""

    count: int | None
    names: tuple[str, ...]


def slug(word: str) -> str | None:
    """A qualifier as a name part: ASCII letters and digits, starting with a letter, at most
    NAME_MAX long; None for a filler, a number, or anything else."""
    folded = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()
    if not re.fullmatch(r"[a-z0-9'-]+", folded):
        return None  # not a word
    folded = re.sub(r"[^a-z0-9]", "", folded)
    if (
        not re.fullmatch(r"[a-z][a-z0-9]{1," + str(NAME_MAX - 1) + "}", folded)
        or word in _FILLERS
        or folded in _FILLERS
        or word in _STOPS
        or word in _ARTICLES
        or _count_of(word) is not None
    ):
        return None
    return folded


def _count_of(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    value = _NUMBER_WORDS.get(word)
    if value is not None:
        return value
    return None


def counted(
    text: str, start: int, end: int, covered: Iterable[tuple[int, int]], *, plural: bool
) -> Counted:
    """The count and qualifiers of the mention text[start:end] of a countable capability.

    Looks back at most five words within the clause, stopping at an article, a preposition
    or a number: "two small queues" (count 2), "a billing queue" (name billing), "billing and
    shipping queues" (names billing, shipping); and forward for a list after a plural noun:
    "three queues: billing, shipping and returns". `covered`: spans other readings took
    ("private", "sqs", "2 TB"): such a word never names an instance, and a number inside one
    is a quantity, not a count."""
    spans = [(s, e) for s, e in covered if e <= start or s >= end]
    before = re.split(r"[;!?\n:(),]|\.(?=\s|$)", text[max(0, start - 80) : start])[-1]
    offset = start - len(before)
    words = [(m.group(0), offset + m.start()) for m in _WORD.finditer(before)][-5:]
    count: int | None = None
    names: list[str] = []
    content = False  # a describing word was passed: a farther word names nothing
    for i in range(len(words) - 1, -1, -1):
        word, at = words[i]
        inside = any(s <= at < e for s, e in spans)
        number = _count_of(word)
        if number is not None and not inside:
            count = number
            break
        if inside:
            if number is not None:
                break
            continue
        if word in _ARTICLES or _UNITS.match(word):
            break
        if word in _CONJUNCTIONS:
            if plural and names and i > 0:
                other = slug(words[i - 1][0])
                if other is not None:
                    names.insert(0, other)
            break
        if word in _STOPS:
            if word == "of" and i > 0 and words[i - 1][0] in ("couple", "pair"):
                count = 2  # "a couple of queues"
            break
        name = slug(word)
        if name is not None and not content:
            names.append(name)
        content = content or name is not None
    if plural or (count or 0) >= 2:
        after = _AFTER_LIST.match(text[end : end + 200])
        if after is not None:
            listed: list[str] = []
            for word in _LIST_SPLIT.split(after.group("list").strip()):
                if not word:
                    continue  # "logs, backups, and assets"
                name = slug(word)
                if name is None:
                    break  # ", with a database": the list ended
                listed.append(name)
            if len(listed) >= 2:
                names = listed
    each = _one_for_each(text[end : end + 200])
    if len(each) >= 2 and (count is None or count == len(each)):
        names = each
    return Counted(min(count, MAX_COUNT) if count is not None else None, tuple(names))


_ONE_FOR = re.compile(
    r"(?:^|\b(?:one|another(?: one)?|the other(?: one)?|a second(?: one)?|a third(?: one)?))"
    r"\s+for\s+(?:the\s+|our\s+)?([\w'-]+)"
)


def _one_for_each(after: str) -> list[str]:
    """ "a queue for orders and another one for refunds", "two queues, one for invoicing and
    one for stock": the names after each "one for"."""
    sentence = re.split(r"[.;!?\n]", after)[0]
    if not re.match(r"\s*(?:,\s*)?(?:one|for)\b", sentence):
        return []  # the "one for" must follow the noun ("two queues, one for ...")
    names: list[str] = []
    for m in _ONE_FOR.finditer(" " + sentence if not sentence.startswith(" ") else sentence):
        name = slug(m.group(1))
        if name is None:
            break
        names.append(name)
    leading = re.match(r"\s+for\s+(?:the\s+|our\s+)?([\w'-]+)", sentence)
    if leading is not None and names and re.search(r"\b(another|the other|a second)\b", sentence):
        first = slug(leading.group(1))
        if first is not None and first not in names:
            names.insert(0, first)
    return list(dict.fromkeys(names))


def is_plural(mention: str) -> bool:
    """Whether a mention as written is plural (enough to tell "queues" from "queue"; "files
    d'attente" is plural by its first word)."""
    return any(
        w.endswith(("s", "en", "i", "x")) and not w.endswith(("ss", "us"))
        for w in mention.split()
        if "'" not in w
    )


def service_mentions(text: str) -> Iterator[tuple[int, int]]:
    """Spans of nouns that name a service of no particular kind ("three services")."""
    for m in SERVICE_NOUNS.finditer(text):
        yield m.start(), m.end()


def combine(
    count_a: int | None, names_a: tuple[str, ...], count_b: int | None, names_b: tuple[str, ...]
) -> tuple[int | None, tuple[str, ...]]:
    """Two mentions of one capability: the larger count, the union of names."""
    names = tuple(dict.fromkeys((*names_a, *names_b)))[:MAX_COUNT]
    counts = [c for c in (count_a, count_b) if c is not None]
    return (max(counts) if counts else None), names


__all__ = [
    "COUNTABLE",
    "MAX_COUNT",
    "NAME_MAX",
    "Counted",
    "combine",
    "counted",
    "is_plural",
    "noun_end",
    "service_mentions",
    "slug",
]
