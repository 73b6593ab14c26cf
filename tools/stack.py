"""The target stack of a plan: what a Terraform state describes, and what one lock guards.

A stack is a goal in a region: every revision of a goal's plan updates the same stack (same
state, same resource names). Its id names the state (local file or S3 key) and its lock key
(`memory.locks.stack_lock_key`); `name_prefix` is the default prefix of every AWS name in it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from schemas.plan import PlanSpec


@dataclass(frozen=True)
class StackKey:
    goal_id: str
    region: str

    @classmethod
    def of(cls, plan: PlanSpec) -> StackKey:
        return cls(goal_id=plan.goal_id, region=plan.region)

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.goal_id}\n{self.region}".encode()).hexdigest()

    @property
    def id(self) -> str:
        """Readable and path-safe: `<goal slug>.<region>.<8 hex>` (the hash keeps two goal ids
        with the same slug apart)."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.goal_id.lower()).strip("-")[:48] or "goal"
        return f"{slug}.{self.region}.{self.digest[:8]}"

    @property
    def name_prefix(self) -> str:
        """`crew-<8 hex>`: 13 characters, unique per stack, valid in every AWS name."""
        return f"crew-{self.digest[:8]}"
