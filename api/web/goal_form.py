"""The "new goal" form: HTML fields in, a GoalStatement out, or the API's own 422 problems.

Field names are the GoalStatement paths (`budget.monthly_usd`, `workload.data_stores.0.kind`),
so every problem pydantic reports lands next to the field it is about. The form builds the
same JSON object a REST client would send and validates it with the same model and the same
messages (schemas/inputs.py); the "paste JSON" alternative goes through `parse_goal`, exactly the
path of `crew run GOAL.json`. Empty fields are left out, never sent as empty strings, so an
optional field left blank means "not given".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.goal import (
    Availability,
    Compliance,
    DataStoreKind,
    Environment,
    GoalStatement,
    WorkloadKind,
)
from schemas.inputs import InputError, Problem, parse_goal, problems_from
from schemas.regions import AWS_REGIONS

#: Data store rows the form offers (the contract allows up to 20; JSON mode takes more).
DATA_STORE_ROWS = 3

TEXT_FIELDS = (
    "title",
    "description",
    "region",
    "environment",
    "budget.monthly_usd",
    "workload.kind",
    "workload.expected_rps",
    "workload.availability",
    "constraints.allowed_regions",
    "constraints.required_tags",
    "requested_by",
    "goal_id",
    "goal_json",
)
STORE_FIELDS = tuple(
    f"workload.data_stores.{i}.{part}"
    for i in range(DATA_STORE_ROWS)
    for part in ("kind", "size_gb")
)

#: Choices the template offers (values exactly as the contract spells them).
CHOICES: dict[str, list[str]] = {
    "region": sorted(AWS_REGIONS),
    "environment": [e.value for e in Environment],
    "workload.kind": [k.value for k in WorkloadKind],
    "workload.availability": [a.value for a in Availability],
    "data_store_kind": [k.value for k in DataStoreKind],
    "compliance": [c.value for c in Compliance],
}


@dataclass
class GoalForm:
    """What the visitor typed (shown again with the problems when it does not validate)."""

    values: dict[str, str] = field(default_factory=dict)
    compliance: list[str] = field(default_factory=list)
    mode: str = "fields"
    problems: list[Problem] = field(default_factory=list)

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def errors(self, name: str) -> list[Problem]:
        """Problems to show next to field `name` (in JSON mode, all of them go to the JSON)."""
        if self.mode == "json":
            return list(self.problems) if name == "goal_json" else []
        return [p for p in self.problems if p.field == name]

    @classmethod
    def defaults(cls, requested_by: str | None) -> GoalForm:
        return cls(values={"environment": "dev", "requested_by": requested_by or ""})

    @classmethod
    def from_form(cls, form: Mapping[str, Any], compliance: Sequence[str]) -> GoalForm:
        values = {
            name: str(form.get(name) or "").strip()
            for name in (*TEXT_FIELDS, *STORE_FIELDS)
            if str(form.get(name) or "").strip()
        }
        mode = "json" if form.get("mode") == "json" else "fields"
        return cls(values=values, compliance=[str(c) for c in compliance], mode=mode)


def field_id(name: str) -> str:
    """The HTML id of a field (error summary links point at it)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _tags(text: str, problems: list[Problem]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            problems.append(
                Problem(
                    "constraints.required_tags",
                    f"line {number} ({line.strip()[:40]!r}) is not key=value",
                    "write one tag per line as key=value, e.g. team=platform",
                )
            )
            continue
        tags[key.strip()] = value.strip()
    return tags


def goal_data(form: GoalForm) -> tuple[dict[str, Any], list[Problem], list[int]]:
    """The GoalStatement JSON object the fields describe, problems found before validation,
    and the form row of each data store sent (to place pydantic's list indexes)."""
    v = form.values
    problems: list[Problem] = []
    data: dict[str, Any] = {"schema_version": "0.1", "cloud": "aws"}
    for name in ("title", "description", "region", "environment", "requested_by", "goal_id"):
        if name in v:
            data[name] = v[name]
    data["budget"] = {"monthly_usd": v["budget.monthly_usd"]} if "budget.monthly_usd" in v else {}
    workload: dict[str, Any] = {}
    for name in ("kind", "expected_rps", "availability"):
        if f"workload.{name}" in v:
            workload[name] = v[f"workload.{name}"]
    stores, rows = [], []
    for i in range(DATA_STORE_ROWS):
        store = {
            part: v[f"workload.data_stores.{i}.{part}"]
            for part in ("kind", "size_gb")
            if f"workload.data_stores.{i}.{part}" in v
        }
        if store:
            stores.append(store)
            rows.append(i)
    if stores:
        workload["data_stores"] = stores
    if workload:
        data["workload"] = workload
    constraints: dict[str, Any] = {}
    if "constraints.allowed_regions" in v:
        regions = re.split(r"[\s,]+", v["constraints.allowed_regions"])
        constraints["allowed_regions"] = [r for r in regions if r]
    if "constraints.required_tags" in v:
        constraints["required_tags"] = _tags(v["constraints.required_tags"], problems)
    if form.compliance:
        constraints["compliance"] = list(form.compliance)
    if constraints:
        data["constraints"] = constraints
    return data, problems, rows


def _place(problem: Problem, rows: list[int]) -> Problem:
    """`workload.data_stores.1.kind` of the list sent is the field of form row rows[1]."""
    parts = problem.field.split(".")
    if len(parts) >= 3 and parts[:2] == ["workload", "data_stores"] and parts[2].isdigit():
        index = int(parts[2])
        if index < len(rows):
            parts[2] = str(rows[index])
            return Problem(".".join(parts), problem.problem, problem.fix)
    return problem


def parse_goal_form(form: GoalForm) -> GoalStatement:
    """The goal, or InputError listing every problem (each named by its form field)."""
    if form.mode == "json":
        return parse_goal(form.value("goal_json") or "{}")
    data, problems, rows = goal_data(form)
    try:
        goal = GoalStatement.model_validate(data)
    except ValidationError as exc:
        problems += [_place(p, rows) for p in problems_from(exc)]
        raise InputError(problems, "goal") from exc
    if problems:
        raise InputError(problems, "goal")
    return goal
