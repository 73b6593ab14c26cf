"""BuildStatus: what Forge made of a PlanSpec, and what `terraform plan` says it will do."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.base import Artifact, Contract


class DiagnosticSeverity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Diagnostic(Contract):
    """One Terraform diagnostic, parsed from its JSON output."""

    severity: DiagnosticSeverity
    summary: str
    detail: str = ""
    address: str | None = None
    filename: str | None = None
    line: int | None = None


class ResourceChange(Contract):
    address: str
    type: str
    actions: list[str] = Field(max_length=10, description="Terraform's actions, e.g. ['create'].")
    attributes: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="For an update or a replacement: the attributes that change (dotted names).",
    )
    replace_because: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="For a replacement: the attributes that force it (terraform's replace_paths).",
    )


class PlanChangeSummary(Contract):
    create: int = Field(default=0, ge=0)
    update: int = Field(default=0, ge=0)
    delete: int = Field(default=0, ge=0)
    replace: int = Field(default=0, ge=0)
    resource_changes: list[ResourceChange] = Field(default_factory=list, max_length=10_000)


class BuildStatus(Artifact):
    artifact_name = "BuildStatus"

    plan_id: str
    ok: bool = Field(description="True when init, validate and plan all succeeded.")
    workspace: str = Field(description="Directory of the rendered Terraform workspace.")
    terraform_version: str | None = None
    plan: PlanChangeSummary = Field(default_factory=PlanChangeSummary)
    plan_file: str | None = Field(default=None, description="Plan file name in the workspace.")
    plan_file_digest: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="sha256 of the plan file."
    )
    errors: list[Diagnostic] = Field(default_factory=list, max_length=10_000)
    warnings: list[Diagnostic] = Field(default_factory=list, max_length=10_000)
    duration_s: float = Field(default=0, ge=0)
