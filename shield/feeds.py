"""Advisory feeds read into `Advisory` values: RSS 2.0 and Atom (through feedparser) and the
NVD CVE API 2.0 JSON format.

Pure: the caller hands the body it fetched (tools/feeds.py). Feed text is untrusted: HTML in a
title or summary is reduced to plain text here (and escaped again wherever it is shown), every
field is cut to the contract's bounds, and at most `MAX_ENTRIES` entries are read from a feed.
A body that is none of the three formats raises `FeedParseError`.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from time import struct_time
from typing import Any

import feedparser

from schemas.shield import (
    MAX_SUMMARY,
    MAX_TITLE,
    Advisory,
    AdvisorySeverity,
    AffectedRange,
    FeedFormat,
)

MAX_ENTRIES = 2_000
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)
_SEVERITY = re.compile(
    r"\b(?:severity|cvss[^:]*rating)\s*[:=]?\s*(critical|high|medium|low)\b", re.I
)
_CVSS = re.compile(
    r"\bCVSS\s*(?:v?3(?:\.\d)?|v?4(?:\.0)?)?(?:\s+base)?(?:\s+score)?\s*[:=]?\s*(\d{1,2}\.\d)\b",
    re.I,
)
_SPACE = re.compile(r"\s+")


class FeedParseError(ValueError):
    """The body is not an RSS 2.0, Atom or NVD CVE API 2.0 document."""


class _Text(HTMLParser):
    """The text of markup; what is inside <script> and <style> is not text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def plain_text(markup: str, limit: int) -> str:
    """Feed markup as plain text (tags dropped, entities decoded, whitespace folded), cut to
    `limit` characters."""
    parser = _Text()
    parser.feed(markup[: limit * 4])
    parser.close()
    text = _SPACE.sub(" ", "".join(parser.parts)).strip()
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def detect_format(body: bytes) -> FeedFormat:
    """NVD JSON (an object with `vulnerabilities`), else Atom or RSS by the root element."""
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        return FeedFormat.NVD
    return FeedFormat.ATOM if b"<feed" in body[:4096] else FeedFormat.RSS


def parse_feed(body: bytes, feed: str) -> tuple[FeedFormat, list[Advisory]]:
    """The advisories in a fetched body, and the format it was in."""
    kind = detect_format(body)
    if kind is FeedFormat.NVD:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FeedParseError(f"not JSON: {exc}") from exc
        return kind, parse_nvd(doc, feed)
    return kind, parse_syndication(body, feed)


# -- NVD CVE API 2.0 ------------------------------------------------------------------------


def parse_nvd(doc: object, feed: str) -> list[Advisory]:
    """`{"format": "NVD_CVE", "vulnerabilities": [{"cve": {...}}]}` as the NVD CVE API 2.0
    answers (and its JSON data feeds hold)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("vulnerabilities"), list):
        raise FeedParseError("not an NVD CVE API 2.0 document (no 'vulnerabilities' list)")
    advisories: list[Advisory] = []
    for item in doc["vulnerabilities"][:MAX_ENTRIES]:
        cve = item.get("cve") if isinstance(item, dict) else None
        if not isinstance(cve, dict) or not isinstance(cve.get("id"), str):
            continue
        if cve.get("vulnStatus") == "Rejected":
            continue
        description = next(
            (
                d.get("value", "")
                for d in cve.get("descriptions") or []
                if isinstance(d, dict) and d.get("lang") == "en"
            ),
            "",
        )
        score, severity = _nvd_severity(cve.get("metrics") or {})
        refs = [r.get("url") for r in cve.get("references") or [] if isinstance(r, dict)]
        url = next((u for u in refs if isinstance(u, str) and u.startswith("https://")), None)
        summary = plain_text(str(description), MAX_SUMMARY)
        advisories.append(
            Advisory(
                advisory_id=cve["id"][:200],
                title=plain_text(f"{cve['id']}: {summary}", 160),
                summary=summary,
                url=url or f"https://nvd.nist.gov/vuln/detail/{cve['id']}",
                published=_iso(cve.get("published")),
                severity=severity,
                cvss=score,
                affected=_nvd_ranges(cve.get("configurations") or []),
                feed=feed,
            )
        )
    return advisories


def _nvd_severity(metrics: dict[str, Any]) -> tuple[float | None, AdvisorySeverity]:
    """The first primary (else any) CVSS metric, newest CVSS version first."""
    for key in ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"):
        entries = [m for m in metrics.get(key) or [] if isinstance(m, dict)]
        entries.sort(key=lambda m: m.get("type") != "Primary")
        for metric in entries:
            data = metric.get("cvssData") or {}
            rating = data.get("baseSeverity") or metric.get("baseSeverity")
            score = data.get("baseScore")
            try:
                severity = AdvisorySeverity(str(rating).lower())
            except ValueError:
                severity = AdvisorySeverity.UNKNOWN
            value = float(score) if isinstance(score, int | float) and 0 <= score <= 10 else None
            return value, severity
    return None, AdvisorySeverity.UNKNOWN


def _nvd_ranges(configurations: list[Any]) -> list[AffectedRange]:
    ranges: list[AffectedRange] = []
    for config in configurations:
        for node in (config.get("nodes") or []) if isinstance(config, dict) else []:
            for match in (node.get("cpeMatch") or []) if isinstance(node, dict) else []:
                if not isinstance(match, dict) or not match.get("vulnerable"):
                    continue
                affected = cpe_range(match)
                if affected is not None and len(ranges) < 500:
                    ranges.append(affected)
    return ranges


def cpe_range(match: dict[str, Any]) -> AffectedRange | None:
    """One `cpeMatch` entry; None when its criteria is not a CPE 2.3 application/OS name."""
    criteria = str(match.get("criteria", ""))
    parts = criteria.split(":")
    if len(parts) < 6 or parts[:2] != ["cpe", "2.3"] or parts[2] not in ("a", "o", "h"):
        return None
    version = parts[5] if parts[5] not in ("*", "-", "") else None

    def bound(key: str) -> str | None:
        value = match.get(key)
        return str(value)[:100] if isinstance(value, str | int | float) else None

    return AffectedRange(
        cpe=criteria[:500],
        vendor=parts[3][:200],
        product=parts[4][:200],
        version=version[:100] if version else None,
        start_including=bound("versionStartIncluding"),
        start_excluding=bound("versionStartExcluding"),
        end_including=bound("versionEndIncluding"),
        end_excluding=bound("versionEndExcluding"),
    )


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- RSS 2.0 and Atom ------------------------------------------------------------------------


def parse_syndication(body: bytes, feed: str) -> list[Advisory]:
    """RSS 2.0 or Atom entries; the advisory id is the CVE the entry names, else its guid/id
    (else its link). feedparser reads a stream here, never a URL: no network."""
    parsed = feedparser.parse(io.BytesIO(body))
    entries = list(parsed.get("entries") or [])
    if not entries and (parsed.get("bozo") or not parsed.get("version")):
        problem = parsed.get("bozo_exception")
        raise FeedParseError(f"not an RSS or Atom feed{f': {problem}' if problem else ''}")
    advisories: list[Advisory] = []
    for entry in entries[:MAX_ENTRIES]:
        title = plain_text(str(entry.get("title", "")), MAX_TITLE)
        summary = plain_text(
            str(entry.get("summary", "") or entry.get("description", "")), MAX_SUMMARY
        )
        text = f"{title} {summary}"
        cve = _CVE.search(text)
        ident = (
            cve.group().upper()
            if cve
            else str(entry.get("id") or entry.get("link") or title).strip()[:200]
        )
        if not ident:
            continue
        link = entry.get("link")
        score = _CVSS.search(text)
        cvss = float(score.group(1)) if score and float(score.group(1)) <= 10 else None
        advisories.append(
            Advisory(
                advisory_id=ident,
                title=title or ident,
                summary=summary,
                url=str(link)[:2000]
                if isinstance(link, str) and link.startswith(("https://", "http://"))
                else None,
                published=_struct(entry.get("published_parsed") or entry.get("updated_parsed")),
                severity=_text_severity(text, cvss),
                cvss=cvss,
                feed=feed,
            )
        )
    return advisories


def _text_severity(text: str, cvss: float | None) -> AdvisorySeverity:
    named = _SEVERITY.search(text)
    if named:
        return AdvisorySeverity(named.group(1).lower())
    if cvss is None:
        return AdvisorySeverity.UNKNOWN
    if cvss >= 9:
        return AdvisorySeverity.CRITICAL
    if cvss >= 7:
        return AdvisorySeverity.HIGH
    return AdvisorySeverity.MEDIUM if cvss >= 4 else AdvisorySeverity.LOW


def _struct(value: object) -> datetime | None:
    if not isinstance(value, struct_time):
        return None
    return datetime(*value[:6], tzinfo=UTC)
