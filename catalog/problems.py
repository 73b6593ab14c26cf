"""Problems: what validation finds, as data that names the constraint, the why and the fix.

They become DesignBlocked reasons, and the LLM planner's retry prompt explains them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from schemas.plan import BlockReason


class ProblemCode(StrEnum):
    UNKNOWN_TYPE = "unknown_type"
    BAD_PARAMS = "bad_params"
    DUPLICATE_NAME = "duplicate_name"
    DANGLING_REFERENCE = "dangling_reference"
    WRONG_REFERENCE = "wrong_reference"
    DEPENDENCY_CYCLE = "dependency_cycle"
    BAD_GRANT = "bad_grant"
    VPC_MISSING = "vpc_missing"
    VPC_EXTRA = "vpc_extra"
    NO_EGRESS = "no_egress"
    TOO_FEW_AZS = "too_few_azs"
    BAD_SCHEDULE = "bad_schedule"
    REGION_NOT_ALLOWED = "region_not_allowed"
    REGION_UNPRICED = "region_unpriced"
    MISMATCH = "mismatch"
    CONTRADICTION = "contradiction"
    NOTHING_TO_BUILD = "nothing_to_build"
    OUT_OF_RANGE = "out_of_range"
    MULTI_AZ = "multi_az"
    BACKUPS = "backups"
    DELETION_PROTECTION = "deletion_protection"
    LOGGING = "logging"
    ENCRYPTION = "encryption"
    PRIVATE_NETWORKING = "private_networking"
    NOT_COVERED = "not_covered"
    UNSUPPORTED_ASK = "unsupported_ask"
    CAPACITY = "capacity"
    TAGS = "tags"
    OVER_BUDGET = "over_budget"
    BAD_REPLY = "bad_reply"


@dataclass(frozen=True)
class Problem:
    """One clash: which constraint, why, and a change that would resolve it."""

    code: ProblemCode
    constraint: str
    why: str
    suggestion: str

    def as_reason(self) -> BlockReason:
        return BlockReason(constraint=self.constraint, why=self.why, suggestion=self.suggestion)

    def __str__(self) -> str:
        return f"[{self.code.value}] {self.constraint}: {self.why} -> {self.suggestion}"
