"""Artifact contracts v0.1: the only interface between agents (docs/architecture.md, principle 1).

Models here validate and nothing else. Import them from their modules; `schemas.registry`
lists every exported artifact.
"""

from schemas.base import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION"]
