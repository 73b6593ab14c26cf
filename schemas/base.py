"""Shared base for every artifact contract.

Artifacts are the only interface between agents (DESIGN.md principle 1). They are strict:
an unknown field is an error, because a typo silently ignored in an infrastructure request is
worse than a rejected request.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION: Literal["0.1"] = "0.1"
SchemaVersion = Literal["0.1"]


class Contract(BaseModel):
    """A strict, immutable value: unknown fields rejected, no NaN/inf, no mutation."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        str_strip_whitespace=True,
        use_enum_values=False,
    )


class Artifact(Contract):
    """A versioned top-level artifact, exported as `schemas/v0.1/<name>.schema.json`."""

    artifact_name: ClassVar[str]
    schema_version: SchemaVersion = SCHEMA_VERSION
