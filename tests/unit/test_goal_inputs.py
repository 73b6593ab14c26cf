"""GoalStatement v0.1 and schemas/inputs.py: bad input becomes Problems that name field and fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.errors import CrewError
from schemas.goal import Environment, GoalStatement
from schemas.inputs import InputError, Problem, load_goal, parse_goal, problems_from_errors
from schemas.regions import AWS_REGIONS
from tests.unit.support import EXAMPLES, goal_dict


def problems_for(data: dict[str, Any] | str | bytes) -> list[Problem]:
    raw = data if isinstance(data, str | bytes) else json.dumps(data)
    with pytest.raises(InputError) as info:
        parse_goal(raw)
    assert info.value.problems, "an InputError must carry at least one Problem"
    return info.value.problems


def only_problem(data: dict[str, Any] | str | bytes) -> Problem:
    problems = problems_for(data)
    assert len(problems) == 1, problems
    return problems[0]


# -- valid goals ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["goal-object-storage.json", "goal-web-api.json"])
def test_example_goals_parse(name: str) -> None:
    goal = parse_goal((EXAMPLES / name).read_bytes())
    assert goal.schema_version == "0.1"
    assert goal.cloud == "aws"
    assert goal.region == "eu-west-1"
    assert goal.budget.monthly_usd > 0


def test_valid_goal_fields_are_typed() -> None:
    goal = parse_goal(json.dumps(goal_dict("goal-web-api.json")))
    assert goal.environment is Environment.PROD
    assert goal.goal_id == "orders-api-2026-11"
    assert goal.constraints is not None
    assert goal.constraints.allowed_regions == ["eu-west-1", "eu-central-1"]
    assert goal.workload is not None
    assert goal.workload.data_stores[0].size_gb == 50


def test_environment_defaults_to_dev() -> None:
    data = goal_dict()
    del data["environment"]
    assert parse_goal(json.dumps(data)).environment is Environment.DEV


def test_goal_is_immutable() -> None:
    goal = parse_goal(json.dumps(goal_dict()))
    with pytest.raises(ValidationError):
        goal.title = "changed"  # type: ignore[misc]


# -- not a JSON object ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"title": ', "{'single': 'quotes'}", "", "\ufeff{}x"])
def test_malformed_json_is_one_body_problem(text: str) -> None:
    problem = only_problem(text)
    assert problem.field == ""
    assert problem.problem.startswith("not valid JSON")
    assert problem.fix == "send a JSON object"


def test_undecodable_bytes_are_an_input_error() -> None:
    problem = only_problem(b"\xff\xfe\x00")
    assert problem.problem.startswith("not valid JSON")


@pytest.mark.parametrize("text", ["[1, 2]", '"a goal"', "42", "null", "true"])
def test_non_object_json_is_rejected(text: str) -> None:
    problem = only_problem(text)
    assert problem.field == ""
    assert problem.problem == "expected a JSON object"
    assert problem.fix == "send a GoalStatement object"


# -- field by field ---------------------------------------------------------------------------


def test_unknown_field_typo_suggests_the_real_name() -> None:
    problem = only_problem({**goal_dict(), "descripton": "typo of description"})
    assert problem.field == "descripton"
    assert "did you mean 'description'?" in problem.fix


def test_unknown_field_without_a_close_match_lists_known_fields() -> None:
    problem = only_problem({**goal_dict(), "zzzzzz": 1})
    assert problem.field == "zzzzzz"
    assert problem.fix.startswith("remove this unknown field")
    assert "description" in problem.fix
    assert "budget" in problem.fix


def test_nested_unknown_field_names_its_path_and_suggestion() -> None:
    problems = problems_for({**goal_dict(), "budget": {"monthly_usdd": 20}})
    by_field = {p.field: p for p in problems}
    assert "did you mean 'monthly_usd'?" in by_field["budget.monthly_usdd"].fix
    # the misspelt field did not count as the required one
    assert by_field["budget.monthly_usd"].fix == "add this required field"


def test_deeply_nested_unknown_field() -> None:
    data = goal_dict()
    data["workload"] = {"data_stores": [{"kind": "object_storage", "size_gbb": 5}]}
    problem = only_problem(data)
    assert problem.field == "workload.data_stores.0.size_gbb"
    assert problem.problem == "Extra inputs are not permitted"


def test_missing_required_field() -> None:
    data = goal_dict()
    del data["region"]
    problem = only_problem(data)
    assert problem.field == "region"
    assert problem.fix == "add this required field"


@pytest.mark.parametrize("version", ["0.2", "1.0", 0.1])
def test_wrong_schema_version(version: object) -> None:
    problem = only_problem({**goal_dict(), "schema_version": version})
    assert problem.field == "schema_version"
    assert problem.fix == "use '0.1'"


@pytest.mark.parametrize("cloud", ["gcp", "azure", "AWS"])
def test_cloud_other_than_aws(cloud: str) -> None:
    problem = only_problem({**goal_dict(), "cloud": cloud})
    assert problem.field == "cloud"
    assert problem.fix == "use 'aws'"


@pytest.mark.parametrize(
    ("region", "suggestion"),
    [("eu-wset-1", "eu-west-1"), ("us-east-01", "us-east-1"), ("ap-southeast-22", None)],
)
def test_unknown_region_suggests_a_known_one(region: str, suggestion: str | None) -> None:
    problem = only_problem({**goal_dict(), "region": region})
    assert problem.field == "region"
    assert problem.problem == f"unknown AWS region '{region}'"
    assert problem.fix.startswith("did you mean '")
    suggested = problem.fix.split("'")[1]
    assert suggested in AWS_REGIONS
    if suggestion is not None:
        assert suggested == suggestion


def test_region_with_no_close_match_gets_an_example() -> None:
    problem = only_problem({**goal_dict(), "region": "moon"})
    assert "eu-west-1" in problem.fix


def test_allowed_regions_with_an_unknown_region() -> None:
    data = goal_dict(constraints={"allowed_regions": ["eu-west-1", "eu-wset-2"]})
    problem = only_problem(data)
    assert problem.field == "constraints.allowed_regions"
    assert "eu-wset-2" in problem.problem
    assert problem.fix == "did you mean 'eu-west-2'?"


@pytest.mark.parametrize("amount", [0, -1, -0.01])
def test_non_positive_budget(amount: float) -> None:
    problem = only_problem({**goal_dict(), "budget": {"monthly_usd": amount}})
    assert problem.field == "budget.monthly_usd"
    assert problem.fix.startswith("use a number > 0")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_budget(literal: str) -> None:
    text = json.dumps({**goal_dict(), "budget": {"monthly_usd": 1}}).replace(
        '"monthly_usd": 1', f'"monthly_usd": {literal}'
    )
    assert literal in text
    problem = only_problem(text)
    assert problem.field == "budget.monthly_usd"
    assert problem.problem == "Input should be a finite number"
    assert problem.fix == "use a finite number"


def test_budget_as_text_is_not_a_number() -> None:
    problem = only_problem({**goal_dict(), "budget": {"monthly_usd": "twenty"}})
    assert problem.field == "budget.monthly_usd"
    assert problem.fix == "use a number"


@pytest.mark.parametrize(("title", "kind"), [("x" * 201, "at most 200"), ("", "at least 1")])
def test_title_length(title: str, kind: str) -> None:
    problem = only_problem({**goal_dict(), "title": title})
    assert problem.field == "title"
    assert kind in problem.problem
    assert problem.fix == "adjust the length to the bounds stated"


def test_title_of_exactly_200_characters_is_fine() -> None:
    assert len(parse_goal(json.dumps({**goal_dict(), "title": "x" * 200})).title) == 200


@pytest.mark.parametrize("goal_id", ["-leading-dash", "has space", "semi;colon", "ünïcode"])
def test_bad_goal_id_pattern(goal_id: str) -> None:
    problem = only_problem({**goal_dict(), "goal_id": goal_id})
    assert problem.field == "goal_id"
    assert problem.fix.startswith("match the pattern ^[A-Za-z0-9]")


@pytest.mark.parametrize("goal_id", ["orders-api-2026-11", "team/app:v1.2", "A"])
def test_good_goal_ids(goal_id: str) -> None:
    assert parse_goal(json.dumps({**goal_dict(), "goal_id": goal_id})).goal_id == goal_id


def test_unknown_environment_lists_the_choices() -> None:
    problem = only_problem({**goal_dict(), "environment": "qa"})
    assert problem.field == "environment"
    assert problem.fix == "use one of 'dev', 'staging' or 'prod'"


def test_every_mistake_is_reported_at_once() -> None:
    data = {**goal_dict(), "cloud": "gcp", "region": "nowhere-1", "descripton": "x"}
    fields = {p.field for p in problems_for(data)}
    assert fields == {"cloud", "region", "descripton"}


def test_input_error_message_names_field_and_fix() -> None:
    with pytest.raises(InputError) as info:
        parse_goal(json.dumps({**goal_dict(), "cloud": "gcp"}))
    assert isinstance(info.value, CrewError)
    assert str(info.value) == "invalid goal: cloud: Input should be 'aws' -> use 'aws'"
    assert info.value.problems[0].as_dict() == {
        "field": "cloud",
        "problem": "Input should be 'aws'",
        "fix": "use 'aws'",
    }


def test_fastapi_style_errors_drop_the_body_prefix() -> None:
    errors = [
        {"type": "missing", "loc": ("body", "title"), "msg": "Field required"},
        {"type": "json_invalid", "loc": ("body", 17), "msg": "JSON decode error"},
    ]
    problems = problems_from_errors(errors, GoalStatement)
    assert [p.field for p in problems] == ["title", ""]
    assert problems[1].fix.startswith("send valid JSON")


# -- files ------------------------------------------------------------------------------------


def test_load_goal_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "goal.json"
    path.write_text(json.dumps(goal_dict()), encoding="utf-8")
    assert load_goal(path).title == "Log archive bucket"


def test_load_goal_on_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(InputError) as info:
        load_goal(missing)
    assert not isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    problem = info.value.problems[0]
    assert str(missing) in problem.problem
    assert problem.fix == "check the path"


def test_load_goal_on_a_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_goal(tmp_path)
    assert "cannot read" in info.value.problems[0].problem


def test_load_goal_reports_bad_content(tmp_path: Path) -> None:
    path = tmp_path / "goal.json"
    path.write_text(json.dumps({**goal_dict(), "cloud": "gcp"}), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_goal(path)
    assert [p.field for p in info.value.problems] == ["cloud"]
