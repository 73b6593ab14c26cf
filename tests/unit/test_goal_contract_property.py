"""Properties of the goal contract against hostile input: any Unicode (NUL and lone surrogates
included) in any string, any JSON value in any field, nesting of any depth and lists of any
length give a GoalStatement whose every string Postgres can store, or problems that name the
field; never another exception. Plus the tag rules (AWS's, and infra-crew's reserved keys)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.base import text_problem, unstorable_text
from schemas.goal import MAX_REQUIRED_TAGS, RESERVED_TAG_KEYS, Compliance, GoalStatement
from schemas.inputs import InputError, parse_goal, problems_from
from tests.unit.support import goal_dict

#: Every code point, lone surrogates included (hypothesis leaves category Cs out by default).
_any_char = st.characters(exclude_categories=()) | st.sampled_from(["\x00", "\ud800", "\udfff"])
any_text = st.text(_any_char, max_size=60)

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)

_STRING_PATHS: list[tuple[str, ...]] = [
    ("title",),
    ("description",),
    ("region",),
    ("requested_by",),
    ("goal_id",),
    ("constraints", "allowed_regions", "0"),
    ("constraints", "required_tags", "team"),
    ("constraints", "required_tags", "<key>"),
]
_ANY_PATHS: list[tuple[str, ...]] = [
    *_STRING_PATHS,
    ("budget",),
    ("budget", "monthly_usd"),
    ("workload",),
    ("workload", "data_stores"),
    ("constraints",),
    ("constraints", "compliance"),
    ("environment",),
    ("schema_version",),
]


def base_goal() -> dict[str, Any]:
    data = goal_dict(goal_id="g-1", requested_by="alice")
    data["constraints"] = {
        "allowed_regions": ["eu-west-1"],
        "required_tags": {"team": "platform"},
        "compliance": ["backups"],
    }
    return data


def put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """`data` with the value at `path` replaced (`<key>`: a new map key named `value`)."""
    target: Any = data
    for part in path[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = path[-1]
    if last == "<key>":
        target[value if isinstance(value, str) else json.dumps(value)] = "v"
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


def assert_storable(goal: GoalStatement) -> None:
    text = json.dumps(goal.model_dump(mode="json"), ensure_ascii=False)
    assert "\x00" not in text
    text.encode("utf-8")  # no lone surrogate anywhere: raises otherwise
    assert unstorable_text(goal.model_dump()) is None


def accept_or_name(data: dict[str, Any], field: str) -> GoalStatement | None:
    """The goal, or None after checking that the problems name `field` (or its parent)."""
    try:
        goal = GoalStatement.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc)
        assert problems
        assert all(p.problem and p.fix for p in problems), problems
        assert any(p.field.startswith(field) or field.startswith(p.field) for p in problems), (
            field,
            problems,
        )
        return None
    assert_storable(goal)
    return goal


_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(st.sampled_from(_STRING_PATHS), any_text)
def test_any_text_in_any_string_is_stored_or_named(path: tuple[str, ...], text: str) -> None:
    field = ".".join(p for p in path if p not in ("<key>", "0", "team"))
    goal = accept_or_name(put(base_goal(), path, text), field)
    if text_problem(text) is not None:
        assert goal is None, f"{text!r} at {path} was accepted"


@_settings
@given(st.sampled_from(_ANY_PATHS), json_values)
def test_any_json_value_in_any_field_is_a_goal_or_problems(
    path: tuple[str, ...], value: Any
) -> None:
    field = ".".join(p for p in path if p not in ("<key>", "0", "team"))
    accept_or_name(put(base_goal(), path, value), field)


@_settings
@given(any_text)
def test_any_document_text_is_a_goal_or_an_input_error(text: str) -> None:
    """parse_goal (CLI, console JSON mode) on arbitrary text, surrogates included."""
    raw = text.encode("utf-8", "surrogatepass")
    try:
        goal = parse_goal(raw)
    except InputError as exc:
        problems = exc.problems
    else:
        assert_storable(goal)
        return
    assert problems


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=100_000),
    st.sampled_from(["[", '{"a":']),
    st.sampled_from(["top", "description", "workload", "required_tags"]),
)
def test_nesting_of_any_depth_is_an_input_error(depth: int, opener: str, where: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    if where == "top":
        raw = nested
    else:
        marker = '"__nested__"'
        data = base_goal()
        if where == "required_tags":
            data["constraints"]["required_tags"] = {"team": "__nested__"}
        else:
            data[where] = "__nested__"
        raw = json.dumps(data).replace(marker, nested)
    with pytest.raises(InputError) as info:
        parse_goal(raw)
    assert info.value.problems


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(["compliance", "allowed_regions", "required_tags", "data_stores"]),
    st.integers(min_value=1, max_value=200_000),
)
def test_huge_lists_and_maps_are_refused_by_their_bound(which: str, extra: int) -> None:
    data = base_goal()
    if which == "compliance":
        data["constraints"]["compliance"] = ["backups"] * (len(Compliance) + extra)
    elif which == "allowed_regions":
        data["constraints"]["allowed_regions"] = ["eu-west-1"] * (50 + extra)
    elif which == "required_tags":
        count = MAX_REQUIRED_TAGS + extra
        data["constraints"]["required_tags"] = {f"k{i}": "v" for i in range(count)}
    else:
        data["workload"] = {"data_stores": [{"kind": "queue"}] * (20 + extra)}
    with pytest.raises(ValidationError) as info:
        GoalStatement.model_validate(data)
    fields = {p.field for p in problems_from(info.value)}
    assert any(which in f for f in fields), fields


# -- tags: AWS's rules and infra-crew's own keys ------------------------------------------------


def tags_problem(tags: dict[str, str]) -> str:
    data = base_goal()
    data["constraints"]["required_tags"] = tags
    with pytest.raises(ValidationError) as info:
        GoalStatement.model_validate(data)
    problems = problems_from(info.value)
    assert len(problems) == 1, problems  # pydantic's own length errors name the key too
    assert problems[0].field.startswith("constraints.required_tags"), problems
    return f"{problems[0].problem} -> {problems[0].fix}"


@pytest.mark.parametrize("key", RESERVED_TAG_KEYS)
def test_reserved_tag_keys_are_refused_by_name(key: str) -> None:
    text = tags_problem({"team": "x", key: "spoofed"})
    assert repr(key) in text
    assert "infra-crew sets itself" in text


def test_every_reserved_key_is_named_at_once() -> None:
    text = tags_problem({k: "x" for k in RESERVED_TAG_KEYS})
    assert all(repr(k) in text for k in RESERVED_TAG_KEYS)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"aws:owner": "x"}, "'aws:' are reserved by AWS"),
        ({"AWS:cost": "x"}, "'aws:' are reserved by AWS"),
        ({"team;drop": "x"}, "';'"),
        ({"team": "a\nb"}, "'\\n'"),
        ({"team": "<script>"}, "'<'"),
        ({"k" * 129: "x"}, "at most 128"),
        ({"team": "v" * 257}, "at most 256"),
    ],
)
def test_tags_follow_aws_rules(tags: dict[str, str], expected: str) -> None:
    assert expected in tags_problem(tags)


def test_tags_aws_accepts_are_accepted() -> None:
    tags = {
        "Environment": "Prod",  # AWS keys are case-sensitive: not infra-crew's `environment`
        "cost-center": "cc_1234",
        "owner@team": "zoë + ops/eu: a=b",
        "日本": "",
    }
    data = base_goal()
    data["constraints"]["required_tags"] = tags
    goal = GoalStatement.model_validate(data)
    assert goal.constraints is not None
    assert goal.constraints.required_tags == tags


def test_compliance_entries_are_unique() -> None:
    data = base_goal()
    data["constraints"]["compliance"] = ["backups", "logging", "backups"]
    with pytest.raises(ValidationError) as info:
        GoalStatement.model_validate(data)
    (problem,) = problems_from(info.value)
    assert problem.field == "constraints.compliance"
    assert "backups listed more than once" in problem.problem
