"""The org policy: what fails a run, what is waived until when, and what is never allowed.

A YAML file (`CREW_POLICY_FILE`, `crew validate --policy`); the shipped default is
`sentinel/data/default-policy.yaml`, which documents every field. A file only states what it
changes: missing fields take the default's values. Mistakes are refused with an
`InputError` naming the field (`waivers.0.expires: ...`), never a traceback.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.inputs import InputError, Problem, problems_from
from schemas.regions import AWS_REGIONS
from schemas.validation import Severity
from tools.render.waivers import ACCEPTED_RISKS, risks_by_name
from tools.trivy import aqua_check_id

#: Rule ids Sentinel itself emits.
BUDGET_BRAKE = "CREW_BUDGET_BRAKE"
FORBIDDEN_TYPE = "CREW_POLICY_FORBIDDEN_TYPE"
REGION = "CREW_POLICY_REGION"
REQUIRED_TAGS = "CREW_POLICY_REQUIRED_TAGS"
MAX_COST = "CREW_POLICY_MAX_COST"
REGO_UNAVAILABLE = "CREW_POLICY_REGO_UNAVAILABLE"
UNWAIVABLE = frozenset({BUDGET_BRAKE})

SEVERITY_ORDER = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


def at_least(severity: Severity, threshold: Severity) -> bool:
    return SEVERITY_ORDER[severity] >= SEVERITY_ORDER[threshold]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Waiver(_Strict):
    """Do not fail on `rule_id` (optionally only for `resources`) until `expires`."""

    rule_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=10, max_length=2000, description="Why; shown in reports.")
    expires: date = Field(description="Last day the waiver applies (YYYY-MM-DD).")
    resources: list[str] = Field(
        default_factory=list, description="Resource addresses it covers; empty: all."
    )

    @field_validator("rule_id")
    @classmethod
    def _waivable(cls, value: str) -> str:
        if value in UNWAIVABLE:
            raise ValueError(
                f"{value} cannot be waived; only a goal revision with a larger budget passes "
                "the brake"
            )
        return aqua_check_id(value)  # `AVD-AWS-0107` (tfsec's spelling) is AWS-0107

    def covers(self, rule_id: str, resource: str | None, today: date) -> bool:
        if rule_id != self.rule_id or today > self.expires:
            return False
        return not self.resources or resource in self.resources


class OrgPolicy(_Strict):
    """See sentinel/data/default-policy.yaml for what each field means."""

    version: Literal[1] = 1
    fail_on: Severity = Severity.HIGH
    waivers: list[Waiver] = Field(default_factory=list)
    allowed_regions: list[str] = Field(default_factory=list)
    required_tags: dict[str, str | None] = Field(default_factory=dict)
    forbidden_resource_types: list[str] = Field(default_factory=list)
    max_monthly_usd: float | None = Field(default=None, gt=0)
    severity_overrides: dict[str, Severity] = Field(default_factory=dict)
    custom_checks_dir: Path | None = None
    rego_dir: Path | None = None
    rego_severity: Severity = Severity.HIGH
    render_waivers: Literal["all", "design", "none"] = Field(
        default="all",
        description="Which of Forge's documented render waivers (tools/render/waivers.py) "
        "apply to a run's own render: all, only the design ones, or none.",
    )
    accepted_risk_rules: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Rule ids of the org's own checks (Rego run by Conftest, custom checkov "
        "checks) that flag one of Forge's accepted risks, by the risk's name; the risk's "
        "render waiver then covers them too.",
    )
    unsupported_asks: Literal["block", "warn"] = Field(
        default="block",
        description="What Atlas does with an ask the catalog cannot meet: block the design "
        "(DesignBlocked names each ask), or warn (the plan lists each gap as a risk).",
    )
    source: str | None = Field(default=None, description="The file it came from; None: default.")

    @field_validator("allowed_regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        unknown = [r for r in value if r not in AWS_REGIONS]
        if unknown:
            raise ValueError(f"unknown AWS region(s): {', '.join(unknown)}; use e.g. eu-west-1")
        return value

    @field_validator("forbidden_resource_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if not t.replace("_", "").isalnum() or not t.islower()]
        if bad:
            raise ValueError(f"not Terraform resource types: {', '.join(bad)}")
        return value

    @field_validator("severity_overrides")
    @classmethod
    def _aqua_ids(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        return {aqua_check_id(rule): severity for rule, severity in value.items()}

    @field_validator("accepted_risk_rules")
    @classmethod
    def _known_risks(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(risks_by_name()))
        if unknown:
            raise ValueError(
                f"unknown accepted risk(s): {', '.join(unknown)}; the names are in "
                "tools/render/waivers.py"
            )
        if UNWAIVABLE & {r for rules in value.values() for r in rules}:
            raise ValueError(f"{', '.join(sorted(UNWAIVABLE))} cannot be waived")
        return {name: [aqua_check_id(r) for r in rules] for name, rules in value.items()}

    def with_render_waivers(self, plan_json: dict[str, Any]) -> OrgPolicy:
        """This policy plus Forge's documented waivers, each limited to the plan's resources
        of the types it names (never a blanket waiver, never for hand-written Terraform).

        One accepted risk waives the same resources, with the same reason, under every rule
        id any scanner reports it with (checkov's, trivy's and tfsec's, and the org's own
        from `accepted_risk_rules`): the verdict does not depend on which are installed."""
        if self.render_waivers == "none":
            return self
        by_type: dict[str, list[str]] = {}
        for change in plan_json.get("resource_changes") or []:
            if change.get("mode", "managed") == "managed" and change.get("address"):
                by_type.setdefault(str(change.get("type")), []).append(str(change["address"]))
        added: list[Waiver] = []
        for risk in ACCEPTED_RISKS:
            if self.render_waivers == "design" and risk.kind != "design":
                continue
            addresses = sorted(a for t in risk.resource_types for a in by_type.get(t, []))
            if not addresses:
                continue
            reason = f"Forge render waiver ({risk.kind}): {risk.reason}"
            for rule_id in (*risk.rule_ids(), *self.accepted_risk_rules.get(risk.name, [])):
                added.append(
                    Waiver(rule_id=rule_id, reason=reason, expires=date.max, resources=addresses)
                )
        return self.model_copy(update={"waivers": [*self.waivers, *added]})

    def waiver_for(self, rule_id: str, resource: str | None, today: date) -> Waiver | None:
        return next((w for w in self.waivers if w.covers(rule_id, resource, today)), None)

    def expired_waiver_for(self, rule_id: str, resource: str | None, today: date) -> Waiver | None:
        """A waiver that would cover this finding had it not expired (reported as such)."""
        return next(
            (
                w
                for w in self.waivers
                if w.rule_id == rule_id
                and today > w.expires
                and (not w.resources or resource in w.resources)
            ),
            None,
        )


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(
            [Problem(field="", problem=f"not valid YAML{at}", fix="check indentation and quotes")],
            f"policy file {where}",
        ) from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InputError(
            [Problem(field="", problem="expected a mapping of fields", fix="see the default")],
            f"policy file {where}",
        )
    return doc


def default_policy_text() -> str:
    return resources.files("sentinel").joinpath("data/default-policy.yaml").read_text("utf-8")


def default_policy() -> OrgPolicy:
    return OrgPolicy.model_validate(_read_yaml(default_policy_text(), "(default)"))


def load_policy(path: Path | None) -> OrgPolicy:
    """The policy in `path` over the default, or the default when `path` is None."""
    if path is None:
        return default_policy()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            [
                Problem(
                    field="", problem=f"cannot read {path}: {exc.strerror}", fix="check the path"
                )
            ],
            "policy file",
        ) from exc
    raw = _read_yaml(text, str(path))
    merged = {**_read_yaml(default_policy_text(), "(default)"), **raw}
    merged.pop("source", None)
    try:
        policy = OrgPolicy.model_validate({**merged, "source": str(path)})
    except ValidationError as exc:
        raise InputError(problems_from(exc, OrgPolicy), f"policy file {path}") from exc
    return policy.model_copy(
        update={
            "custom_checks_dir": _directory(path, policy.custom_checks_dir, "custom_checks_dir"),
            "rego_dir": _directory(path, policy.rego_dir, "rego_dir"),
        }
    )


def _directory(policy_file: Path, value: Path | None, field: str) -> Path | None:
    if value is None:
        return None
    resolved = value if value.is_absolute() else policy_file.parent / value
    if not resolved.is_dir():
        raise InputError(
            [
                Problem(
                    field=field,
                    problem=f"{resolved} is not a directory",
                    fix="name a directory, relative to the policy file or absolute",
                )
            ],
            f"policy file {policy_file}",
        )
    return resolved.resolve()
