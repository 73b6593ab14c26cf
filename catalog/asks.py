"""Asks: every requirement a goal states, typed, with where it was stated.

An `Ask` is one thing the person asked for: a *capability* (a kind of compute, a data store,
messaging, a CDN, a domain, ...) or a *quality* (availability, throughput, size, retention,
backups, schedule, environment, ...), with bounded parameters (numbers already converted to
one unit) and its source: a structured field of the goal, or the exact span of the
description it was read from. Asks come from catalog/reading/ and are answered by
catalog/trace.py, which says for each one what in the design meets it, or why nothing does.

Nothing in an Ask becomes code: `name` is one of a fixed set (catalog/reading/capabilities.py,
or `aws:<botocore service id>` for a service the catalog cannot build) and parameters are
numbers, booleans, enum values or strings that passed a strict pattern (hostnames, schedule
expressions built here).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

ParamValue = str | int | float | bool


class AskKind(StrEnum):
    CAPABILITY = "capability"
    QUALITY = "quality"


@dataclass(frozen=True)
class AskSource:
    """Where an ask was stated: a structured field (`field`), or a span of the description
    (`start`/`end` index into it and `text` is exactly description[start:end])."""

    text: str
    field: str | None = None
    start: int | None = None
    end: int | None = None

    @property
    def from_text(self) -> bool:
        return self.field is None


@dataclass(frozen=True)
class Ask:
    """One requirement of a goal.

    `negated` asks ("no database", "single AZ is fine") are kept so that a later positive
    reading of the same thing does not override the person's no.
    """

    kind: AskKind
    name: str
    title: str
    source: AskSource
    params: dict[str, ParamValue] = field(default_factory=dict)
    score: float = 1.0
    """1.0 for a rule or a field; the similarity for a match by meaning."""
    note: str | None = None
    """A conflict with a structured field (the field wins), or how a value was read."""

    def with_params(self, **params: ParamValue) -> Ask:
        return replace(self, params={**self.params, **params})

    def with_note(self, note: str) -> Ask:
        return replace(self, note=f"{self.note} {note}" if self.note else note)


def field_source(path: str, value: object) -> AskSource:
    return AskSource(text=f"{path}: {value}", field=path)


def text_source(description: str, start: int, end: int) -> AskSource:
    return AskSource(text=description[start:end], start=start, end=end)


__all__ = ["Ask", "AskKind", "AskSource", "ParamValue", "field_source", "text_source"]
