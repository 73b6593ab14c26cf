"""Shared base for every artifact contract.

Artifacts are the only interface between agents (docs/architecture.md, principle 1). They are
strict:
an unknown field is an error, because a typo silently ignored in an infrastructure request is
worse than a rejected request.

Every string a contract carries, at any depth (list items, map keys and values), must be text
Postgres can store: no NUL character (U+0000) and no lone surrogate (U+D800..U+DFFF alone,
which JSON's `\\ud800` escapes can produce but UTF-8 cannot encode). Refusing it here, where a
goal is read whichever door it came through (REST, console, CLI, bus), turns what used to be a
database error (a 500) into a validation error naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator

SCHEMA_VERSION: Literal["0.1"] = "0.1"
SchemaVersion = Literal["0.1"]

#: What to do about text that cannot be stored (the `fix` half of the validation message).
STORABLE_TEXT_FIX = "remove it: only printable Unicode text can be stored"


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as Postgres text (None when it can)."""
    if "\x00" in text:
        return "contains a NUL character (U+0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (U+D800..U+DFFF), which is not valid Unicode text"
    return None


def unstorable_text(value: object) -> str | None:
    """The first string in `value` (a string, a list, tuple or set of values, or a mapping,
    keys included, walked iteratively so depth costs no stack) that cannot be stored, as
    "<where> <problem>"; None when every string can. Models are skipped: they checked their
    own fields when they were built."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return f"{where} {problem}".strip()
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                if isinstance(key, str) and (problem := text_problem(key)) is not None:
                    return f"{where} a key {problem}".strip()
                name = repr(key) if isinstance(key, str) else str(key)
                stack.append((f"{where}[{name}]", inner))
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend((f"{where}[{i}]", inner) for i, inner in enumerate(item))
    return None


class Contract(BaseModel):
    """A strict, immutable value: unknown fields rejected, no NaN/inf, no mutation, and only
    text that can be stored."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        str_strip_whitespace=True,
        use_enum_values=False,
    )

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        if isinstance(value, str):
            problem = text_problem(value)
        elif isinstance(value, Mapping | list | tuple | set | frozenset):
            problem = unstorable_text(value)
        else:  # numbers, enums, dates, and models (they checked their own fields)
            return value
        if problem is not None:
            raise ValueError(f"{problem}; {STORABLE_TEXT_FIX}")
        return value


class Artifact(Contract):
    """A versioned top-level artifact, exported as `schemas/v0.1/<name>.schema.json`."""

    artifact_name: ClassVar[str]
    schema_version: SchemaVersion = SCHEMA_VERSION
