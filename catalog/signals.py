"""Plain signals read from a goal's description: hints, never instructions.

The description is untrusted text. Nothing read here becomes code: a signal can only pick a
workload kind or a data store the catalog already has, a schedule from a fixed list, or a
hostname that matches a strict pattern. Requests the catalog cannot express (IAM users,
open SSH, shell provisioners, public buckets) are *recognised* only so that the plan can say
plainly that they were not designed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from schemas.goal import DataStoreKind, WorkloadKind

_KIND_SIGNALS: tuple[tuple[WorkloadKind, str], ...] = (
    (WorkloadKind.STATIC_SITE, r"static (web ?)?site|landing page|single[- ]page app|\bspa\b"),
    (WorkloadKind.QUEUE_WORKER, r"queue worker|background (jobs?|workers?)|\bconsumers?\b"),
    (WorkloadKind.DATA_PIPELINE, r"data pipeline|\betl\b|ingestion|ingest pipeline"),
    (WorkloadKind.BATCH, r"\bbatch\b|cron ?job|nightly|scheduled (job|task)"),
    (WorkloadKind.API, r"\bapis?\b|graphql|http endpoints?"),
    (WorkloadKind.WEB_SERVICE, r"web ?app|web service|website|web application"),
)
_STORE_SIGNALS: tuple[tuple[DataStoreKind, str], ...] = (
    (DataStoreKind.POSTGRES, r"postgres(ql)?\b"),
    (DataStoreKind.MYSQL, r"\bmysql\b|mariadb"),
    (DataStoreKind.REDIS, r"\bredis\b|elasticache|session store|in-memory cache"),
    (DataStoreKind.QUEUE, r"\bsqs\b|\bqueue\b|message queue"),
    (DataStoreKind.OBJECT_STORAGE, r"\bs3\b|\bbuckets?\b|object storage|file uploads?"),
)
_SCHEDULES: tuple[tuple[str, str], ...] = (
    (r"every (\d{1,3}) minutes", "rate({n} minutes)"),
    (r"every (\d{1,2}) hours", "rate({n} hours)"),
    (r"\bhourly\b|every hour", "rate(1 hour)"),
    (r"\bnightly\b|every night", "cron(0 2 * * ? *)"),
    (r"\bweekly\b|every week", "rate(7 days)"),
    (r"\bdaily\b|every day|once a day", "rate(1 day)"),
)
#: What the catalog will never build, with the words that ask for it.
_REFUSED: tuple[tuple[str, str], ...] = (
    (
        "an IAM user or admin/wildcard permissions",
        r"iam users?|admin(istrator)? ?(access|user|rights|role|privileges)|administratoraccess"
        r"|\"\*\"\s*:\s*\"\*\"|\baction\W+\*|wildcard (policy|permissions?)",
    ),
    (
        "SSH access or an open port",
        r"\bssh\b|\bport 22\b|0\.0\.0\.0/0|open (the )?(port|ingress)|\brdp\b|port 3389",
    ),
    (
        "a shell or provisioner script",
        r"provisioners?\b|local-exec|remote-exec|user[_ ]data|shell (script|command)s?"
        r"|\bcurl\b[^\n]*\|\s*(ba)?sh\b",
    ),
    (
        "a public or publicly writable bucket",
        r"public[- ](read|write|bucket)|publicly (readable|writable|writeable|accessible)"
        r"|\bacls?\b|allusers",
    ),
)
_DOMAIN = re.compile(
    r"(?:https?://|\bdomain(?: name)?(?: is| of| at)?:?\s+|\bserved (?:at|on|from)\s+)"
    r"((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})\b"
)
_NOT_TLDS = {"html", "htm", "js", "json", "css", "txt", "md", "py", "tf", "yaml", "yml", "php"}


@dataclass(frozen=True)
class Signals:
    kind: WorkloadKind | None = None
    stores: frozenset[DataStoreKind] = frozenset()
    domain: str | None = None
    schedule: str | None = None
    wants_ec2: bool = False
    refused: tuple[str, ...] = field(default_factory=tuple)
    """Human phrases for out-of-catalog requests found in the description."""


def read_signals(description: str) -> Signals:
    """Hints from the description (lower-cased, first 20,000 characters)."""
    text = description.lower()
    kind = _first_kind(text)
    stores = frozenset(k for k, pattern in _STORE_SIGNALS if re.search(pattern, text))
    return Signals(
        kind=kind,
        stores=stores,
        domain=_domain(text),
        schedule=_schedule(text),
        wants_ec2=bool(re.search(r"\bec2\b|virtual machines?|\bvms?\b|auto ?scaling group", text)),
        refused=tuple(what for what, pattern in _REFUSED if re.search(pattern, text)),
    )


def _first_kind(text: str) -> WorkloadKind | None:
    """The kind named earliest in the text ("an API that runs a nightly job" is an API)."""
    found = [
        (match.start(), rank, kind)
        for rank, (kind, pattern) in enumerate(_KIND_SIGNALS)
        if (match := re.search(pattern, text)) is not None
    ]
    return min(found)[2] if found else None


def _domain(text: str) -> str | None:
    for match in _DOMAIN.finditer(text):
        host = match.group(1)
        if host.rsplit(".", 1)[1] not in _NOT_TLDS and len(host) <= 253:
            return host
    return None


def _schedule(text: str) -> str | None:
    for pattern, expression in _SCHEDULES:
        match = re.search(pattern, text)
        if match is None:
            continue
        if "{n}" not in expression:
            return expression
        n = int(match.group(1))
        if n < 1:
            continue
        unit = expression.split(" ", 1)[1].rstrip(")")
        return f"rate({n} {unit.rstrip('s') if n == 1 else unit})"
    return None
