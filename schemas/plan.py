"""PlanSpec and DesignBlocked: what Atlas hands to Forge, or why it could not."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from schemas.base import Artifact, Contract
from schemas.goal import MAX_AWS_TAGS, Availability, Environment, Region, TagKey, TagValue

ComponentName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="Terraform-safe identifier: it becomes a resource name, so no free text.",
    ),
]
CatalogType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class Component(Contract):
    """One catalog entry instantiated with parameters (the catalog checks type and bounds)."""

    type: CatalogType
    name: ComponentName
    params: dict[str, Any] = Field(default_factory=dict, max_length=100)
    depends_on: list[ComponentName] = Field(default_factory=list, max_length=200)


class CostLine(Contract):
    component: ComponentName
    monthly_usd: float = Field(ge=0)
    basis: str = Field(description="The assumption behind the number, e.g. '20 GB standard'.")


class PerfTargets(Contract):
    expected_rps: float | None = Field(default=None, ge=0)
    availability: Availability = Availability.SINGLE_AZ


class PlanBudget(Contract):
    forecast_monthly_usd: float = Field(
        ge=0,
        description="Atlas's design estimate from the catalog's prices, before any terraform "
        "runs; the validated plan's forecast is ValidationReport.cost.monthly_usd.",
    )
    cap_monthly_usd: float = Field(gt=0, description="The goal's monthly budget.")
    brake_monthly_usd: float = Field(gt=0, description="80 % of the cap: above it, no apply.")
    breakdown: list[CostLine] = Field(default_factory=list, max_length=1000)
    perf: PerfTargets = Field(default_factory=PerfTargets)


class RiskSeverity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Risk(Contract):
    severity: RiskSeverity
    description: str
    mitigation: str | None = None


class RejectedAnswer(Contract):
    """A planner's answer that validation refused: what was wrong, fed back on the retry."""

    attempt: int = Field(ge=1)
    problems: list[str] = Field(
        max_length=100, description="Each problem as 'where: why', as the model saw it."
    )
    answer: str = Field(default="", max_length=20_000, description="The answer as sent, truncated.")


class Provenance(Contract):
    planner: str = Field(description='"catalog" or "llm".')
    model: str | None = Field(default=None, description="LLM model name, when an LLM planned.")
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    attempts: int = Field(default=1, ge=1)
    retrieved: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Ids of past plans or runbooks the planner was given.",
    )
    output_method: str | None = Field(
        default=None,
        description="How the LLM was asked for JSON: json_schema, function_calling or "
        "json_object (the first the server accepted).",
    )
    rejected: list[RejectedAnswer] = Field(
        default_factory=list,
        max_length=20,
        description="Earlier attempts validation refused, and why.",
    )


class RequirementStatus(StrEnum):
    """How the design answers one ask of the goal."""

    MET = "met"
    """Components (named in `by`) satisfy it."""
    REFUSED = "refused"
    """Unsafe: the catalog never builds it (IAM users, open ports, public buckets, ...)."""
    UNSUPPORTED = "unsupported"
    """The catalog cannot express it yet; `note` says what to do."""
    ASSUMED = "assumed"
    """The goal was silent and Atlas chose a default, or the description disagreed with a
    structured field (the field won)."""


ParamValue = str | int | float | bool


class Ask(Contract):
    """One requirement read from the goal (catalog/reading/)."""

    kind: Literal["capability", "quality"]
    name: str = Field(
        pattern=r"^[a-z][a-z0-9_.-]{0,80}$",
        description="A capability or quality of the reader's fixed set (e.g. store.postgres, "
        "availability.multi_az), or aws.<service> for a named AWS service.",
    )
    title: str = Field(max_length=200)
    params: dict[str, ParamValue] = Field(default_factory=dict)


class AskSource(Contract):
    """A structured field (`field`), or the exact span of the description: description
    [start:end] == text."""

    text: str = Field(max_length=2_000)
    field: str | None = Field(default=None, max_length=200)
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)


class Requirement(Contract):
    """One ask of the goal and what the design does about it ("asked vs designed")."""

    ask: Ask
    source: AskSource
    status: RequirementStatus
    by: list[ComponentName] = Field(
        default_factory=list, description="The components (and so parameters) that meet it."
    )
    note: str | None = Field(default=None, max_length=2_000)


PlanSchemaVersion = Literal["0.1", "0.2"]


class PlanSpec(Artifact):
    """An architecture made only of catalog components (docs/architecture.md, principle 2).

    0.2 adds `requirements` (every ask of the goal traced to what meets it); a 0.1 PlanSpec,
    which has none, still reads.
    """

    artifact_name = "PlanSpec"

    schema_version: PlanSchemaVersion = Field(  # type: ignore[assignment]
        default="0.2", description='"0.2" (with requirements); "0.1" artifacts still read.'
    )

    plan_id: str = Field(min_length=1, max_length=100)
    goal_id: str = Field(min_length=1, max_length=200)
    revision: int = Field(default=1, ge=1)
    summary: str = Field(max_length=2_000)
    rationale: str = Field(max_length=20_000)
    cloud: Literal["aws"] = "aws"
    region: Region
    environment: Environment
    components: list[Component] = Field(min_length=1, max_length=200)
    budget: PlanBudget
    risks: list[Risk] = Field(default_factory=list, max_length=100)
    assumptions: list[str] = Field(default_factory=list, max_length=100)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_AWS_TAGS)
    diagram: str = Field(description="Mermaid flowchart generated from the components.")
    diagram_svg: str | None = Field(
        default=None,
        description="The diagram rendered to SVG by the Mermaid CLI, when it is installed.",
    )
    provenance: Provenance
    requirements: list[Requirement] = Field(
        default_factory=list,
        max_length=300,
        description="Every ask of the goal: met (by which components), refused, unsupported "
        "or assumed. Empty on 0.1 artifacts.",
    )


class BlockReason(Contract):
    constraint: str = Field(description="Which part of the goal clashes, e.g. 'budget'.")
    why: str
    suggestion: str = Field(description="A concrete change that would unblock the design.")


class DesignBlocked(Artifact):
    """Atlas could not satisfy the goal; each reason says what to change."""

    artifact_name = "DesignBlocked"

    schema_version: PlanSchemaVersion = Field(  # type: ignore[assignment]
        default="0.2", description='"0.2" (with requirements); "0.1" artifacts still read.'
    )
    goal_id: str = Field(min_length=1, max_length=200)
    reasons: list[BlockReason] = Field(min_length=1, max_length=100)
    attempts: int = Field(ge=1)
    requirements: list[Requirement] = Field(
        default_factory=list,
        max_length=300,
        description="What was read from the goal and how a design would answer it.",
    )
    provenance: Provenance | None = Field(
        default=None, description="Who tried and what it cost (tokens), when a planner ran."
    )
