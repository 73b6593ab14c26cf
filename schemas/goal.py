"""GoalStatement v0.1: the public input contract, locked (docs/architecture.md, Contracts)."""

from __future__ import annotations

import difflib
import unicodedata
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from schemas.base import Artifact, Contract, SchemaVersion
from schemas.regions import AWS_REGIONS


class Environment(StrEnum):
    """prod implies multi-AZ, backups and deletion protection."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class WorkloadKind(StrEnum):
    WEB_SERVICE = "web_service"
    API = "api"
    STATIC_SITE = "static_site"
    QUEUE_WORKER = "queue_worker"
    BATCH = "batch"
    DATA_PIPELINE = "data_pipeline"


class Availability(StrEnum):
    SINGLE_AZ = "single_az"
    MULTI_AZ = "multi_az"


class DataStoreKind(StrEnum):
    POSTGRES = "postgres"
    MYSQL = "mysql"
    REDIS = "redis"
    OBJECT_STORAGE = "object_storage"
    QUEUE = "queue"


class Compliance(StrEnum):
    ENCRYPTION_AT_REST = "encryption_at_rest"
    PRIVATE_NETWORKING = "private_networking"
    BACKUPS = "backups"
    LOGGING = "logging"


def check_region(value: str) -> str:
    """Accept only real AWS region names; suggest the closest one on a typo."""
    if value in AWS_REGIONS:
        return value
    close = difflib.get_close_matches(value, sorted(AWS_REGIONS), n=1)
    hint = f"did you mean '{close[0]}'?" if close else "use a region name such as 'eu-west-1'"
    raise ValueError(f"unknown AWS region '{value}'; {hint}")


Region = Annotated[str, Field(min_length=1, max_length=32, examples=["eu-west-1"])]

#: Tags infra-crew puts on every resource itself (provider `default_tags`): a goal may not set
#: them, or a run could pass the gate wearing another goal's or environment's labels.
RESERVED_TAG_KEYS: tuple[str, ...] = ("environment", "crew-goal", "managed-by")
#: AWS allows 50 tags per resource; infra-crew's own take the first few.
MAX_AWS_TAGS = 50
MAX_REQUIRED_TAGS = MAX_AWS_TAGS - len(RESERVED_TAG_KEYS)
#: Besides letters, digits and spaces, the characters AWS allows in tag keys and values.
_TAG_PUNCTUATION = frozenset("_.:/=+-@")

TagKey = Annotated[str, Field(min_length=1, max_length=128)]
TagValue = Annotated[str, Field(max_length=256)]


def _tag_text_problem(text: str) -> str | None:
    """AWS's rule for tag text: Unicode letters, digits and spaces, and `_ . : / = + - @`."""
    bad = sorted(
        {
            ch
            for ch in text
            if ch not in _TAG_PUNCTUATION
            and unicodedata.category(ch)[0] not in ("L", "N")
            and ch != " "
        }
    )
    if bad:
        shown = " ".join(repr(ch) for ch in bad[:5])
        return f"has characters AWS does not allow in tags: {shown}"
    return None


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    """AWS's tag rules, and none of infra-crew's own keys; every problem in one message."""
    problems: list[str] = []
    reserved = [k for k in tags if k in RESERVED_TAG_KEYS]
    if reserved:
        problems.append(
            f"{', '.join(repr(k) for k in reserved)} "
            f"{'is a tag' if len(reserved) == 1 else 'are tags'} infra-crew sets itself "
            f"(reserved: {', '.join(RESERVED_TAG_KEYS)})"
        )
    aws = [k for k in tags if k.lower().startswith("aws:")]
    if aws:
        problems.append(f"tag keys starting with 'aws:' are reserved by AWS: {', '.join(aws)}")
    for key, value in tags.items():
        if (problem := _tag_text_problem(key)) is not None:
            problems.append(f"key {key!r} {problem}")
        if (problem := _tag_text_problem(value)) is not None:
            problems.append(f"value of {key!r} {problem}")
    if problems:
        raise ValueError(
            "; ".join(problems[:1])
            + "".join(f" (also: {p})" for p in problems[1:4])
            + "; rename or drop those tags (keys: 1-128 and values: up to 256 letters, digits, "
            "spaces and _ . : / = + - @; no 'aws:' prefix; not "
            + ", ".join(RESERVED_TAG_KEYS)
            + ")"
        )
    return tags


class Budget(Contract):
    monthly_usd: float = Field(
        gt=0, le=10_000_000, description="Monthly budget in USD; the hard brake is at 80 % of it."
    )


class DataStore(Contract):
    kind: DataStoreKind
    size_gb: float | None = Field(default=None, gt=0, le=65_536)


class Workload(Contract):
    """Hints for the architect; every field is optional."""

    kind: WorkloadKind | None = None
    expected_rps: float | None = Field(default=None, ge=0, le=10_000_000)
    availability: Availability | None = None
    data_stores: list[DataStore] = Field(default_factory=list, max_length=20)


class Constraints(Contract):
    allowed_regions: list[Region] = Field(default_factory=list, max_length=50)
    required_tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        max_length=MAX_REQUIRED_TAGS,
        description="Tags every resource must carry (AWS rules; not "
        f"{', '.join(RESERVED_TAG_KEYS)}, which infra-crew sets).",
    )
    compliance: list[Compliance] = Field(
        default_factory=list, max_length=len(Compliance), json_schema_extra={"uniqueItems": True}
    )

    @field_validator("allowed_regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        return [check_region(v) for v in value]

    @field_validator("required_tags")
    @classmethod
    def _aws_tags(cls, value: dict[str, str]) -> dict[str, str]:
        return check_tags(value)

    @field_validator("compliance")
    @classmethod
    def _unique(cls, value: list[Compliance]) -> list[Compliance]:
        repeated = sorted({c.value for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(
                f"{', '.join(repeated)} listed more than once; list each requirement once"
            )
        return value


class GoalStatement(Artifact):
    """What a platform engineer asks for. The description is untrusted natural language."""

    artifact_name = "GoalStatement"

    schema_version: SchemaVersion = Field(description='Always "0.1" for this contract.')
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    cloud: Literal["aws"] = Field(description="Only AWS in v0.1; the enum grows later.")
    region: Region
    environment: Environment = Environment.DEV
    budget: Budget
    workload: Workload | None = None
    constraints: Constraints | None = None
    requested_by: str | None = Field(default=None, min_length=1, max_length=200)
    goal_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
        description="Client idempotency key and stack name: the same goal twice returns the "
        "same run; a changed goal with a goal_id used before is the next revision of its stack.",
    )
    ttl_hours: int | None = Field(
        default=None,
        ge=1,
        le=24 * 365,
        description="Non-prod only: decommission the stack this many hours after its last "
        "applied revision (a destroy run that waits at the approval gate; a warning first).",
    )

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return check_region(value)

    @model_validator(mode="after")
    def _ttl_not_in_prod(self) -> GoalStatement:
        if self.ttl_hours is not None and self.environment is Environment.PROD:
            raise ValueError(
                "ttl_hours is for non-prod stacks; remove it or use environment dev or staging"
            )
        return self
