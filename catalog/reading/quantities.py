"""Rules for what has a unit: numbers, request rates, sizes, durations, schedules, domains,
regions, environments and budgets, in English and (for numbers, units and schedules) French,
German, Spanish, Portuguese and Italian.

Each reader returns `Found` values: a typed parameter and the span of the description it was
read from. Every value is bounded and converted to one unit (rps, GB, days, an EventBridge
expression built here), so nothing of the text itself travels further.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from catalog.asks import ParamValue


@dataclass(frozen=True)
class Found:
    name: str
    value: ParamValue
    start: int
    end: int
    extra: tuple[tuple[str, ParamValue], ...] = ()


_WORD_NUMBERS = {
    "one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100, "a hundred": 100,
    "a thousand": 1000, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5,
    "dix": 10, "trente": 30, "ein": 1, "eine": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5,
    "zehn": 10, "dreißig": 30, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5,
    "diez": 10, "treinta": 30, "dois": 2, "duas": 2, "três": 3, "trinta": 30, "due": 2,
    "tre": 3, "dieci": 10, "trenta": 30,
}  # fmt: skip
_MULTIPLIERS = {
    "k": 1e3, "thousand": 1e3, "mil": 1e3, "mille": 1e3, "tausend": 1e3, "m": 1e6,
    "million": 1e6, "millions": 1e6, "mio": 1e6, "millionen": 1e6, "millones": 1e6,
    "milhões": 1e6, "milioni": 1e6, "b": 1e9, "billion": 1e9,
}  # fmt: skip
_NUM = (
    r"(?P<num>\d{1,3}(?:[,\u202f\u00a0 ]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|"
    + "|".join(sorted((re.escape(w) for w in _WORD_NUMBERS if " " in w or len(w) > 2),
                      key=len, reverse=True))
    + r")\s?(?P<mult>k|m\b|thousand|million(?:s|en|es)?|mio|mil(?:le|hões|ioni)?|tausend|b\b|"
    r"billion)?"
)  # fmt: skip


def number(text: str, mult: str | None = None) -> float:
    """'1,500' -> 1500, '1,5' -> 1.5, '2.5' -> 2.5, 'three' -> 3; times k/million/..."""
    word = _WORD_NUMBERS.get(text.lower())
    if word is not None:
        value = float(word)
    elif re.fullmatch(r"\d{1,3}(?:[,\u202f\u00a0 ]\d{3})+(?:\.\d+)?", text):
        value = float(re.sub(r"[,\u202f\u00a0 ]", "", text))
    else:
        value = float(text.replace(",", "."))
    return value * _MULTIPLIERS.get((mult or "").lower(), 1.0)


# -- request rates ---------------------------------------------------------------------------

_PER_SECOND = (
    r"(?:rps|qps|tps|req(?:uest)?s?\s?/\s?s(?:ec(?:ond)?)?|(?:requests?|queries|hits|calls|"
    r"transactions|messages|events|req)\s(?:per|a|an|/|each)\s?sec(?:ond)?|"
    r"requ[eê]tes?\s(?:par|/)\s?s(?:econde)?|anfragen\s(?:pro|/)\s?s(?:ekunde)?|"
    r"(?:peticiones|solicitudes|consultas)\s(?:por|/)\s?s(?:egundo)?|"
    r"requisi[cç][oõ]es\s(?:por|/)\s?s(?:egundo)?|richieste\s(?:al|per|/)\s?s(?:econdo)?)"
)
_PER_OTHER = (
    r"(?:requests?|queries|hits|calls|visits|page ?views|messages|events|orders|jobs|"
    r"requ[eê]tes?|anfragen|peticiones|solicitudes|requisi[cç][oõ]es)\s(?:per|a|an|each|/|par|"
    r"pro|por|al)\s?(?P<per>min(?:ute)?|hour|day|month|minute|heure|stunde|tag|d[ií]a|hora|"
    r"jour|mois|monat|mes)"
)
_PER_SECONDS = {"min": 60, "minute": 60, "hour": 3600, "heure": 3600, "stunde": 3600,
                "hora": 3600, "day": 86_400, "jour": 86_400, "tag": 86_400, "día": 86_400,
                "dia": 86_400, "month": 2_628_000, "mois": 2_628_000, "monat": 2_628_000,
                "mes": 2_628_000}  # fmt: skip
_RPS = re.compile(rf"{_NUM}\s?(?:{_PER_SECOND}|{_PER_OTHER})", re.IGNORECASE)
#: Traffic averages this share of its peak (catalog/cost.py AVERAGE_TO_PEAK).
_AVERAGE_TO_PEAK = 0.3


def request_rates(text: str) -> Iterator[Found]:
    """Peak requests per second; a per-minute rate is divided, a per-day or per-month total
    is averaged and turned into a peak (average / 0.3)."""
    for m in _RPS.finditer(text):
        value = number(m.group("num"), m.group("mult"))
        per = (m.group("per") or "").lower()
        if per:
            seconds = _PER_SECONDS.get(per, 60)
            value = value / seconds if seconds <= 60 else value / seconds / _AVERAGE_TO_PEAK
        if 0 < value <= 10_000_000:
            yield Found("rps", round(value, 2), m.start(), m.end())


# -- sizes and durations ---------------------------------------------------------------------

_SIZE = re.compile(
    rf"{_NUM}\s?(?P<unit>[tpgm]i?b\b|terabytes?|gigabytes?|megabytes?|petabytes?|[TGMP]o\b)",
    re.IGNORECASE,
)
_GB = {"t": 1024.0, "g": 1.0, "m": 1 / 1024, "p": 1024.0 * 1024}


def sizes(text: str) -> Iterator[Found]:
    for m in _SIZE.finditer(text):
        unit = m.group("unit")
        if unit[-1] == "o" and not unit[0].isupper():
            continue  # "to"/"go" are words; French octets are written Go/To
        gb = number(m.group("num"), m.group("mult")) * _GB[unit[0].lower()]
        if 0 < gb <= 5_000_000:
            yield Found("size_gb", round(gb, 3), m.start(), m.end())


_DAYS = {
    "day": 1, "days": 1, "d": 1, "jour": 1, "jours": 1, "tag": 1, "tage": 1, "tagen": 1,
    "día": 1, "días": 1, "dia": 1, "dias": 1, "giorno": 1, "giorni": 1, "week": 7, "weeks": 7,
    "semaine": 7, "semaines": 7, "woche": 7, "wochen": 7, "semana": 7, "semanas": 7,
    "settimana": 7, "settimane": 7, "month": 30, "months": 30, "mois": 30, "monat": 30,
    "monate": 30, "monaten": 30, "mes": 30, "meses": 30, "mese": 30, "mesi": 30, "year": 365,
    "years": 365, "an": 365, "ans": 365, "année": 365, "années": 365, "jahr": 365,
    "jahre": 365, "jahren": 365, "año": 365, "años": 365, "ano": 365, "anos": 365,
    "anno": 365, "anni": 365,
}  # fmt: skip
_DURATION = re.compile(
    rf"{_NUM}[\s-]?(?P<unit>{'|'.join(sorted(_DAYS, key=len, reverse=True))})\b", re.IGNORECASE
)
_RETAIN = re.compile(
    r"keep|kept|retain|retention|retained|store|stored|for|delete|deleted|expire|expiry|purge|"
    r"archive|hold|conserv|aufbewahr|behalten|speicher|guardar|mantener|conservar|manter|"
    r"lifecycle|after|durante|pendant|während|per\b|history|rollback|restore|point",
    re.IGNORECASE,
)
_LOG_CUE = re.compile(r"\blogs?\b|logging|journaux|protokolle|registros|\blog-", re.IGNORECASE)
_BACKUP_CUE = re.compile(
    r"backups?|snapshots?|sauvegardes?|sicherung|copias? de seguridad|respaldos?|c[oó]pias?|"
    r"point[- ]in[- ]time|restore|backed up",
    re.IGNORECASE,
)
_BUCKET_CUE = re.compile(r"\bbuckets?\b|\bs3\b|object storage|\barchive", re.IGNORECASE)
_LOG_GROUP_CUE = re.compile(r"cloudwatch|log groups?", re.IGNORECASE)
_MESSAGE_CUE = re.compile(r"\bmessages?\b|\bmensajes\b|nachrichten", re.IGNORECASE)


def retentions(sentence: str, offset: int) -> Iterator[Found]:
    """'keep logs for 90 days' -> retention of logs, 90 days; the target (logs, backups,
    messages, else stored objects) comes from the words of the same sentence."""
    if not _RETAIN.search(sentence):
        return
    for m in _DURATION.finditer(sentence):
        if re.search(r"every\s*$|each\s*$|in\s*$|within\s*$", sentence[: m.start()], re.I):
            continue  # "every 3 days" is a schedule, "in 30 days" a deadline
        days = round(number(m.group("num"), m.group("mult")) * _DAYS[m.group("unit").lower()])
        if not 0 < days <= 36_500:
            continue
        target = _target(sentence, m.start())
        yield Found(f"retention.{target}", days, offset + m.start(), offset + m.end())


def _target(sentence: str, at: int) -> str:
    """What a duration at `at` retains: the cue named last before it in its clause ("backups
    kept 30 days, logs 1 year"), else in the whole sentence."""
    start = max((b.end() for b in re.finditer(r"[,;]| and ", sentence[:at])), default=0)
    for scope in (sentence[start:at], sentence):
        cues = [
            (m.start(), name)
            for name, cue in (("backups", _BACKUP_CUE), ("logs", _LOG_CUE),
                              ("messages", _MESSAGE_CUE), ("objects", _BUCKET_CUE))
            for m in cue.finditer(scope)
        ]  # fmt: skip
        if cues:
            names = {n for _, n in cues}
            if "objects" in names and "logs" in names and not (_LOG_GROUP_CUE.search(sentence)):
                return "objects"  # "logs shipped to a bucket for 90 days": the bucket's objects
            if "backups" in names:
                return "backups"
            return max(cues)[1]
    return "objects"


# -- schedules -------------------------------------------------------------------------------

_DOW = {
    "sunday": "SUN", "monday": "MON", "tuesday": "TUE", "wednesday": "WED", "thursday": "THU",
    "friday": "FRI", "saturday": "SAT", "dimanche": "SUN", "lundi": "MON", "mardi": "TUE",
    "mercredi": "WED", "jeudi": "THU", "vendredi": "FRI", "samedi": "SAT", "sonntag": "SUN",
    "montag": "MON", "dienstag": "TUE", "mittwoch": "WED", "donnerstag": "THU",
    "freitag": "FRI", "samstag": "SAT", "domingo": "SUN", "lunes": "MON", "martes": "TUE",
    "miércoles": "WED", "jueves": "THU", "viernes": "FRI", "sábado": "SAT",
    "segunda": "MON", "terça": "TUE", "quarta": "WED", "quinta": "THU", "sexta": "FRI",
    "domenica": "SUN", "lunedì": "MON", "venerdì": "FRI", "sabato": "SAT",
}  # fmt: skip
_EVERY = r"(?:every|each|once an?|once per|per|chaque|tous les|toutes les|jede[nrs]?|cada|todos os|todas as|todos los|todas las|ogni)"  # noqa: E501
_SCHEDULE_WORDS: tuple[tuple[str, str], ...] = (
    (
        r"every\s+(?:(?P<n>\d{1,4})\s+)?min(?:ute)?s?\b|alle (?P<n2>\d{1,4}) minuten|toutes les "
        r"(?P<n3>\d{1,4}) minutes|cada (?P<n4>\d{1,4}) minutos|ogni (?P<n5>\d{1,4}) minuti",
        "minutes",
    ),
    (
        r"every\s+(?:(?P<n>\d{1,3})\s+)?hours?\b|\bhourly\b|alle (?P<n2>\d{1,3}) stunden|"
        r"toutes les (?P<n3>\d{1,3}) heures|cada (?P<n4>\d{1,3}) horas|stündlich|toutes les heures"
        r"|chaque heure|cada hora|de hora em hora|ogni ora|once an hour",
        "hours",
    ),
    (
        r"every\s+(?P<n>\d{1,3})\s+days\b|alle (?P<n2>\d{1,3}) tage|tous les (?P<n3>\d{1,3}) jours"
        r"|cada (?P<n4>\d{1,3}) d[ií]as",
        "ndays",
    ),
    (
        r"\bmonthly\b|every month|once a month|each month|first (day )?of (each|every|the) month|"
        r"monatlich|chaque mois|tous les mois|cada mes|todo mês|mensual(mente)?|mensal(mente)?",
        "monthly",
    ),
    (
        r"\bweekly\b|every week|once a week|each week|wöchentlich|chaque semaine|toutes les "
        r"semaines|cada semana|semanal(mente)?|toda semana|ogni settimana|settimanale",
        "weekly",
    ),
    (
        r"\bnightly\b|every night|each night|at night|overnight|jede nacht|nächtlich|chaque nuit|"
        r"toutes les nuits|cada noche|todas las noches|todas as noites|ogni notte|in the night",
        "nightly",
    ),
    (
        r"(every|each) (morning|evening)|chaque (matin|soir)|jeden (morgen|abend)|cada "
        r"(mañana|noche)",
        "daily_part",
    ),
    (
        r"\bdaily\b|every day|once a day|each day|per day|täglich|jeden tag|tous les jours|chaque "
        r"jour|quotidien(nement)?|cada d[ií]a|todos los d[ií]as|diariamente|todos os dias|ogni "
        r"giorno|giornalmente|twice a day",
        "daily",
    ),
)
_TIME = re.compile(
    r"(?:at|à|a las|às|um|alle|@)\s?(?P<h>\d{1,2})(?:[:h.](?P<m>\d{2}))?\s?(?P<ampm>a\.?m\.?|"
    r"p\.?m\.?|h\b|uhr|o'?clock)?|(?P<h2>\d{1,2})(?::(?P<m2>\d{2}))?\s?(?P<ampm2>a\.?m\.?|"
    r"p\.?m\.?)|(?P<h3>\d{1,2})(?::(?P<m3>\d{2}))? in the (?P<part>morning|evening|afternoon|"
    r"night)|(?P<noon>\bnoon\b|midday|mittag|midi\b|mediod[ií]a)|(?P<midnight>midnight|"
    r"mitternacht|minuit|medianoche|meia-noite)",
    re.IGNORECASE,
)
_LITERAL = re.compile(
    r"(?P<expr>rate\(\d{1,4} (?:MINUTE|MINUTES|HOUR|HOURS|DAY|DAYS)\)|cron\([0-9*?/,\- A-Z#L]"
    r"{9,80}\))"
)


_DOW_RE = re.compile(rf"\b({'|'.join(_DOW)})s?\b")
_SCHEDULE_COMPILED = tuple((re.compile(p), kind) for p, kind in _SCHEDULE_WORDS)


def _time_of_day(text: str) -> tuple[int, int] | None:
    for m in _TIME.finditer(text):
        if m.group("noon"):
            return 12, 0
        if m.group("midnight"):
            return 0, 0
        h = m.group("h") or m.group("h2") or m.group("h3")
        minute = m.group("m") or m.group("m2") or m.group("m3") or "0"
        if h is None:
            continue
        hour, mins = int(h), int(minute)
        ampm = (m.group("ampm") or m.group("ampm2") or "").lower().replace(".", "")
        part = (m.group("part") or "").lower()
        if m.group("h") and not ampm and not (m.group("m")) and hour > 24:
            continue
        if (
            ampm.startswith("p")
            or part in ("evening", "afternoon")
            or (part == "night" and hour < 12 and hour >= 6)
        ):
            hour = hour % 12 + 12
        elif ampm.startswith("a") and hour == 12:
            hour = 0
        if 0 <= hour <= 23 and 0 <= mins <= 59:
            return hour, mins
    return None


def literal_schedule(text: str) -> Found | None:
    """An EventBridge expression written out in the text (checked against the catalog's
    pattern, upper-cased day names)."""
    m = _LITERAL.search(text.upper().replace("RATE(", "rate(").replace("CRON(", "cron("))
    if m is None:
        return None
    expr = m.group("expr")
    if expr.startswith("rate("):
        expr = expr.lower()
    return Found("schedule", expr, m.start(), m.end())


def schedules(sentence: str, offset: int) -> Iterator[Found]:
    """At most one schedule per sentence, as an EventBridge expression (UTC)."""
    lower = sentence.lower()
    days = sorted({_DOW[m.group(1)] for m in _DOW_RE.finditer(lower)},
                  key=list(_DOW.values()).index)  # fmt: skip
    if re.search(
        r"weekdays?|business days|working days|werktag|jours ouvr|d[ií]as (h[aá]biles|"
        r"laborables)|(monday|mon) (to|through|-) (friday|fri)",
        lower,
    ):
        days = ["MON-FRI"]
    elif re.search(r"weekends?|wochenende|fin de semana|fins de semana", lower):
        days = ["SAT", "SUN"]
    for pattern, kind in _SCHEDULE_COMPILED:
        m = pattern.search(lower)
        if m is None:
            continue
        n_text = next((g for g in m.groups() if g and g.isdigit()), None)
        n = int(n_text) if n_text else 1
        if kind == "minutes":
            expr = f"rate({n} minute{'s' if n > 1 else ''})"
        elif kind == "hours":
            expr = f"rate({n} hour{'s' if n > 1 else ''})"
        elif kind == "ndays":
            expr = f"rate({n} day{'s' if n > 1 else ''})"
        elif kind == "daily_part":
            evening = re.search(r"evening|soir|abend|noche", lower)
            at: tuple[int, int] = _time_of_day(sentence) or ((18, 0) if evening else (6, 0))
            expr = _calendar("daily", days, at, False)
        else:
            expr = _calendar(kind, days, _time_of_day(sentence), "twice" in lower)
        yield Found("schedule", expr, offset + m.start(), offset + m.end())
        return
    if days and re.search(rf"{_EVERY}|\bon\s|\bsundays|\bmondays|\bnights?\b|\bam\b|\ble\b|"
                          r"\bjeden\b|\bel\b|\bos\b|\blos\b", lower):  # fmt: skip
        when = _time_of_day(sentence)
        first_day = _DOW_RE.search(lower)
        first = first_day.start() if first_day and days != ["MON-FRI"] else 0
        expr = _calendar("weekly", days, when, False)
        yield Found("schedule", expr, offset + max(first, 0), offset + len(sentence.rstrip()))


def _calendar(kind: str, days: list[str], at: tuple[int, int] | None, twice: bool) -> str:
    hour, minute = at if at else ((2, 0) if kind in ("nightly", "weekly", "monthly") else (0, 0))
    if kind == "daily" and at is None and not twice:
        return "rate(1 day)"
    hours = f"{hour},{(hour + 12) % 24}" if twice else str(hour)
    if kind == "monthly":
        return f"cron({minute} {hours} 1 * ? *)"
    if kind == "weekly" or days:
        dow = ",".join(days) if days else "SUN"
        return f"cron({minute} {hours} ? * {dow} *)"
    return f"cron({minute} {hours} * * ? *)"


# -- domains, regions, environment, budget ---------------------------------------------------

_HOST = re.compile(r"(?<![@\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}))\b")
_GTLDS = {
    "com", "org", "net", "io", "dev", "app", "ai", "co", "cloud", "tech", "shop", "store",
    "site", "online", "xyz", "info", "biz", "edu", "gov", "me", "tv", "page", "blog", "news",
    "health", "bank", "finance", "games", "email", "systems", "tools", "ly", "gg",
}  # fmt: skip
_NOT_TLDS = {"js", "py", "md", "tf", "rb", "go", "ts", "cs", "rs", "db", "sh", "so", "ai"}


def domains(text: str) -> Iterator[Found]:
    lower = text.lower()
    for m in _HOST.finditer(lower):
        host, tld = m.group(1), m.group(2)
        if lower[: m.start()].endswith("/") and not lower[: m.start()].endswith("://"):
            continue  # a path (evil.example/x.sh), not a host
        if tld in _GTLDS or (len(tld) == 2 and tld not in _NOT_TLDS - {"ai"}):
            label = host.split(".")[0]
            if len(host) <= 253 and not label.isdigit() and host not in ("e.g", "i.e"):
                if re.search(r"(node|next|vue|react|express|d3|three|chart)\.js", host):
                    continue
                yield Found("domain", host, m.start(), m.end())


_REGION_CODE = re.compile(r"\b(?:us|eu|ap|ca|sa|me|af|il|mx|cn)-(?:gov-)?[a-z]+-\d\b")


def region_codes(text: str) -> Iterator[Found]:
    for m in _REGION_CODE.finditer(text.lower()):
        yield Found("region", m.group(0), m.start(), m.end())


_ENVIRONMENTS: tuple[tuple[str, str], ...] = (
    ("prod", r"\bproduction\b|\bprod\b|\blive (traffic|customers|system)|en production|"
             r"produktion|producci[oó]n|produ[cç][aã]o|produzione|business[- ]critical|"
             r"mission[- ]critical"),
    ("staging", r"\bstaging\b|pre-?prod(uction)?\b|\buat\b"),
    ("dev", r"\bdev(elopment)? (env(ironment)?|stage|account|only)|for development|\bsandbox\b|"
            r"\bprototype\b|proof[- ]of[- ]concept|\bpoc\b|\bdemo\b|just for testing|"
            r"\bexperiment(al)?\b|\bhackathon\b|entorno de desarrollo|entwicklungsumgebung|"
            r"environnement de d[eé]veloppement|\bmvp\b"),
)  # fmt: skip


def environments(text: str) -> Iterator[Found]:
    lower = text.lower()
    for env, pattern in _ENVIRONMENTS:
        m = re.search(pattern, lower)
        if m:
            yield Found("environment", env, m.start(), m.end())


_MONEY = re.compile(
    r"(?:(?:\$|usd\s?|us\$)\s?(?P<a>\d[\d,.]*)\s?(?P<am>k)?|(?P<b>\d[\d,.]*)\s?(?P<bm>k)?\s?"
    r"(?:usd|dollars?|\$|€|eur(?:os?)?))\s?(?:/|per|a|an|each|par|pro|al|por|monthly|im|au)?\s?"
    r"(?:month|mo\b|mois|monat|mes|mês|mese)?",
    re.IGNORECASE,
)


def budgets(text: str) -> Iterator[Found]:
    for m in _MONEY.finditer(text):
        raw = m.group("a") or m.group("b")
        if not raw or not re.search(r"month|mo\b|mois|monat|mes|mês|mese|budget|under|below|"
                                    r"max|less than|at most|cap", text[m.start(): m.end() + 40],
                                    re.I):  # fmt: skip
            continue
        try:
            value = number(raw.rstrip(".,"), "k" if (m.group("am") or m.group("bm")) else None)
        except ValueError:
            continue
        if 0 < value <= 10_000_000:
            yield Found("budget", round(value, 2), m.start(), m.end())
