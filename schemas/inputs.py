"""Turn bad input into messages that name the field and the fix (API 422, CLI exit 2)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.errors import CrewError
from schemas.goal import GoalStatement


@dataclass(frozen=True)
class Problem:
    field: str
    problem: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem, "fix": self.fix}

    def __str__(self) -> str:
        where = self.field or "(body)"
        return f"{where}: {self.problem} -> {self.fix}"


class InputError(CrewError):
    """Input that does not match a contract; carries one Problem per mistake."""

    def __init__(self, problems: list[Problem], what: str = "input") -> None:
        self.problems = problems
        summary = "; ".join(str(p) for p in problems)
        super().__init__(f"invalid {what}: {summary}")


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The known field names at `loc` (its parent), for 'did you mean' hints."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(str(part))
        if info is None:
            return []
        annotation = info.annotation
        args = getattr(annotation, "__args__", ()) or (annotation,)
        current = next(
            (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), annotation
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _fix(model: type[BaseModel], error: Any) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "add this required field"
    if kind == "extra_forbidden":
        known = _field_names(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
        if close:
            return f"unknown field: did you mean '{close[0]}'?"
        return "remove this unknown field" + (f" (known: {', '.join(known)})" if known else "")
    if kind == "literal_error":
        return f"use {ctx.get('expected', 'one of the allowed values')}"
    if kind == "enum":
        return f"use one of {ctx.get('expected', 'the allowed values')}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}
    bounds["less_than_equal"] = "<="
    if kind in bounds:
        limit = next((v for k, v in ctx.items() if k in ("gt", "ge", "lt", "le")), "the bound")
        return f"use a number {bounds[kind]} {limit}"
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        return "adjust the length to the bounds stated"
    if kind == "string_pattern_mismatch":
        return f"match the pattern {ctx.get('pattern', '')}"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type"):
        return "use a number"
    if kind in ("finite_number",):
        return "use a finite number"
    if kind == "json_invalid":
        return "send valid JSON (check quotes, commas and brackets)"
    if kind == "value_error":
        text = str(ctx.get("error", ""))
        return text.split("; ", 1)[1] if "; " in text else "correct the value"
    return "correct the value"


def problems_from(exc: ValidationError, model: type[BaseModel] = GoalStatement) -> list[Problem]:
    return problems_from_errors(exc.errors(include_url=False), model)


def problems_from_errors(
    errors: Sequence[Any], model: type[BaseModel] = GoalStatement
) -> list[Problem]:
    """Problems from pydantic/FastAPI error dicts (FastAPI prefixes locations with 'body')."""
    problems = []
    for raw in errors:
        error = dict(raw)
        error["loc"] = tuple(p for p in error.get("loc", ()) if p != "body")
        if error.get("type") == "json_invalid":
            error["loc"] = ()  # FastAPI puts the character offset there
        loc = [str(p) for p in error["loc"]]
        message = error["msg"]
        if error["type"] == "value_error":
            message = message.removeprefix("Value error, ").split("; ", 1)[0]
        problems.append(Problem(field=".".join(loc), problem=message, fix=_fix(model, error)))
    return problems


def parse_goal(data: bytes | str) -> GoalStatement:
    """GoalStatement from JSON text; InputError with a problem per mistake otherwise."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            [Problem(field="", problem=f"not valid JSON: {exc}", fix="send a JSON object")],
            "goal",
        ) from exc
    except RecursionError as exc:
        raise InputError(
            [
                Problem(
                    field="",
                    problem="the JSON is nested too deeply to read",
                    fix="send a GoalStatement object: it is only a few levels deep",
                )
            ],
            "goal",
        ) from exc
    if not isinstance(raw, dict):
        raise InputError(
            [
                Problem(
                    field="", problem="expected a JSON object", fix="send a GoalStatement object"
                )
            ],
            "goal",
        )
    try:
        return GoalStatement.model_validate(raw)
    except ValidationError as exc:
        raise InputError(problems_from(exc), "goal") from exc


def load_goal(path: Path) -> GoalStatement:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            [
                Problem(
                    field="", problem=f"cannot read {path}: {exc.strerror}", fix="check the path"
                )
            ],
            "goal file",
        ) from exc
    return parse_goal(data)
