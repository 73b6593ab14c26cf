"""GoalStatement v0.1: the public input contract (DESIGN.md section 4, locked)."""

from __future__ import annotations

import difflib
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator

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
    required_tags: dict[
        Annotated[str, Field(min_length=1, max_length=128)],
        Annotated[str, Field(max_length=256)],
    ] = Field(default_factory=dict, max_length=50)
    compliance: list[Compliance] = Field(default_factory=list)

    @field_validator("allowed_regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        return [check_region(v) for v in value]


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
        description="Client idempotency key: the same goal_id twice returns the same run.",
    )

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return check_region(value)
