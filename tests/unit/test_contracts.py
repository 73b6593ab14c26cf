"""The artifact contracts: committed JSON Schemas, the registry, and the example artifacts."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

import schemas
from nodes.atlas import plan_goal
from nodes.forge import summarize_plan
from schemas.apply import ApplyResult
from schemas.approval import ApprovalDecision, ApprovalRequest
from schemas.audit import AuditRecord
from schemas.base import Artifact
from schemas.build import BuildStatus
from schemas.events import EventType, OpsEvent
from schemas.export import ROOT, render_schemas, schema_dir, stale_schemas, version_of
from schemas.heartbeat import Heartbeat
from schemas.plan import DesignBlocked, PlanSpec
from schemas.registry import ARTIFACTS
from schemas.validation import ValidateRequest, ValidationReport
from tests.unit.sentinel_example import example_report
from tests.unit.support import (
    ARTIFACT_EXAMPLES,
    EXAMPLE_PLAN_ID,
    EXAMPLE_RUN_ID,
    EXAMPLES,
    make_goal,
    tf_fixture,
)
from tools.process import ProcessResult
from tools.terraform import _apply_outcome

REGENERATE = "run `crew schema export` (or `make schemas`) and commit schemas/v*/"


def schema_validator(name: str, version: str | None = None) -> Draft202012Validator:
    folder = schema_dir(version or version_of(ARTIFACTS[name]))
    schema = json.loads((folder / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def load_example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ARTIFACT_EXAMPLES / f"{name}.json").read_text("utf-8"))
    return doc


# -- committed JSON Schemas -------------------------------------------------------------------


def test_committed_schemas_match_the_models() -> None:
    rendered = render_schemas()
    committed = {
        f"{p.parent.name}/{p.name}": p.read_text(encoding="utf-8")
        for p in ROOT.glob("v*/*.schema.json")
    }
    frozen = {"v0.1/PlanSpec.schema.json", "v0.1/DesignBlocked.schema.json"}
    assert sorted(set(committed) - frozen) == sorted(rendered), (
        f"schema files added or removed: {REGENERATE}"
    )
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is out of date with its model: {REGENERATE}"
    assert stale_schemas() == []


def test_stale_schemas_notices_a_changed_file(tmp_path: Path) -> None:
    for name, text in render_schemas().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "v0.2/PlanSpec.schema.json").write_text("{}", encoding="utf-8")
    (tmp_path / "v0.1/Old.schema.json").write_text("{}", encoding="utf-8")
    (tmp_path / "v0.1/PlanSpec.schema.json").write_text("{}", encoding="utf-8")  # frozen 0.1
    assert stale_schemas(tmp_path) == ["v0.1/Old.schema.json", "v0.2/PlanSpec.schema.json"]


def test_schema_files_are_draft_2020_12_with_ids() -> None:
    for name, model in ARTIFACTS.items():
        version = version_of(model)
        path = schema_dir(version) / f"{name}.schema.json"
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(f"/v{version}/{name}.schema.json")
        assert schema["additionalProperties"] is False, f"{name} must reject unknown fields"


# -- the registry ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_every_artifact_carries_schema_version(name: str) -> None:
    model = ARTIFACTS[name]
    assert model.artifact_name == name
    assert "schema_version" in model.model_fields
    schema = model.model_json_schema()["properties"]["schema_version"]
    assert version_of(model) in (schema["enum"] if "enum" in schema else [schema["const"]])
    # every dump says which contract version it follows
    assert load_schema_version_of(model) == version_of(model)


def load_schema_version_of(model: type[Artifact]) -> str:
    if model.artifact_name == "GoalStatement":
        doc = json.loads((EXAMPLES / "goal-object-storage.json").read_text(encoding="utf-8"))
    else:
        doc = load_example(model.artifact_name)
        del doc["schema_version"]  # omitted on input: the model fills it in
    version: str = model.model_validate(doc).model_dump(mode="json")["schema_version"]
    return version


def test_registry_lists_every_artifact_class() -> None:
    """A new Artifact subclass that is not in the registry would never be exported."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(schemas.__path__):
        module = importlib.import_module(f"schemas.{info.name}")
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, Artifact) and obj is not Artifact:
                found.add(obj.artifact_name)
    assert found == set(ARTIFACTS)


# -- example goals against the JSON Schema ---------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_json_schema_accepts_the_example_goals(path: Path) -> None:
    schema_validator("GoalStatement").validate(json.loads(path.read_text(encoding="utf-8")))


def test_json_schema_rejects_an_unknown_goal_field() -> None:
    doc = json.loads((EXAMPLES / "goal-object-storage.json").read_text(encoding="utf-8"))
    doc["descripton"] = "typo"
    with pytest.raises(jsonschema.ValidationError, match="descripton"):
        schema_validator("GoalStatement").validate(doc)


def test_json_schema_rejects_a_wrong_cloud() -> None:
    doc = json.loads((EXAMPLES / "goal-object-storage.json").read_text(encoding="utf-8"))
    doc["cloud"] = "gcp"
    with pytest.raises(jsonschema.ValidationError):
        schema_validator("GoalStatement").validate(doc)


# -- example artifacts ------------------------------------------------------------------------


def test_there_is_one_example_per_artifact() -> None:
    names = {p.stem for p in ARTIFACT_EXAMPLES.glob("*.json")}
    # GoalStatement examples are the goals in examples/*.json
    assert names == set(ARTIFACTS) - {"GoalStatement"}


@pytest.mark.parametrize("name", sorted(set(ARTIFACTS) - {"GoalStatement"}))
def test_example_artifact_validates_by_model_and_by_schema(name: str) -> None:
    doc = load_example(name)
    model = ARTIFACTS[name].model_validate(doc)
    schema_validator(name).validate(doc)
    # the committed example is canonical: what the model dumps, field for field
    assert model.model_dump(mode="json") == doc
    assert doc["schema_version"] == version_of(ARTIFACTS[name])


def test_a_v0_1_plan_still_reads_and_matches_its_frozen_schema() -> None:
    doc = json.loads((ROOT.parent / "tests/fixtures/contracts/PlanSpec-v0.1.json").read_text())
    schema_validator("PlanSpec", "0.1").validate(doc)
    plan = PlanSpec.model_validate(doc)
    assert plan.schema_version == "0.1"
    assert plan.requirements == []


def test_example_plan_is_what_atlas_plans_for_the_example_goal() -> None:
    planned = plan_goal(
        make_goal("goal-object-storage.json"), goal_id=EXAMPLE_RUN_ID, plan_id=EXAMPLE_PLAN_ID
    )
    assert planned == PlanSpec.model_validate(load_example("PlanSpec"))


def test_example_design_blocked_is_what_atlas_says_for_the_web_api_goal_moved_and_cut() -> None:
    # The web API goal moved outside its allowed regions and given a quarter of its budget:
    # one reason per clash, each with a concrete suggestion.
    goal = make_goal("goal-web-api.json", region="us-east-1", budget={"monthly_usd": 100})
    assert goal.goal_id is not None
    blocked = plan_goal(goal, goal_id=goal.goal_id, plan_id="any-r1")
    assert blocked == DesignBlocked.model_validate(load_example("DesignBlocked"))
    assert [r.constraint for r in blocked.reasons] == [
        "constraints.allowed_regions",
        "budget.monthly_usd",
    ]


def test_example_artifacts_describe_one_consistent_run(show_plan_json: dict[str, Any]) -> None:
    plan = PlanSpec.model_validate(load_example("PlanSpec"))
    build = BuildStatus.model_validate(load_example("BuildStatus"))
    request = ValidateRequest.model_validate(load_example("ValidateRequest"))
    report = ValidationReport.model_validate(load_example("ValidationReport"))
    approval = ApprovalRequest.model_validate(load_example("ApprovalRequest"))
    decision = ApprovalDecision.model_validate(load_example("ApprovalDecision"))
    applied = ApplyResult.model_validate(load_example("ApplyResult"))
    event = OpsEvent.model_validate(load_example("OpsEvent"))
    audit = AuditRecord.model_validate(load_example("AuditRecord"))
    Heartbeat.model_validate(load_example("Heartbeat"))

    assert {plan.plan_id, build.plan_id, request.plan_id, report.plan_id} == {EXAMPLE_PLAN_ID}
    assert {approval.plan_id, applied.plan_id} == {EXAMPLE_PLAN_ID}
    assert {approval.run_id, decision.run_id, applied.run_id, event.run_id} == {EXAMPLE_RUN_ID}
    assert audit.run_id == EXAMPLE_RUN_ID
    assert build.plan_file_digest == request.plan_file_digest == approval.plan_file_digest
    assert request.workspace == build.workspace
    assert request.budget_monthly_usd == plan.budget.cap_monthly_usd == approval.budget_monthly_usd
    assert approval.forecast_monthly_usd == report.cost.monthly_usd
    assert (approval.create, approval.update, approval.delete) == (
        build.plan.create,
        build.plan.update,
        build.plan.delete,
    )
    # the build summarises the recorded plan
    assert build.plan == summarize_plan(show_plan_json)
    # Sentinel v0's verdict is reproducible from the recorded plan and the golden HCL (real
    # checkov in-process, the example PlanSpec's usage, the built-in price table)
    assert report.plan_id == plan.plan_id
    assert report == example_report(plan, request.budget_monthly_usd, report.at)
    # the apply result carries what the recorded apply printed
    recorded = _apply_outcome(
        ProcessResult(("terraform", "apply"), 0, tf_fixture("apply.jsonl"), "", 1.0)
    )
    assert applied.outputs == recorded.outputs
    assert applied.resources.added == recorded.added == build.plan.create
    # events in time order
    assert event.at <= report.at <= decision.at <= applied.started_at <= applied.finished_at
    # the event and the audit row carry the PlanSpec itself
    assert event.payload_type == audit.artifact_type == "PlanSpec"
    assert PlanSpec.model_validate(event.payload) == plan
    assert PlanSpec.model_validate(audit.artifact) == plan


# -- OpsEvent payloads ------------------------------------------------------------------------

AT = datetime(2026, 11, 24, 18, 24, 42, tzinfo=UTC)


def test_ops_event_payload_must_match_its_type() -> None:
    heartbeat = load_example("Heartbeat")
    with pytest.raises(ValidationError):
        OpsEvent(type=EventType.PLAN_PENDING, at=AT, payload_type="PlanSpec", payload=heartbeat)


def test_ops_event_accepts_a_matching_payload() -> None:
    event = OpsEvent(
        type=EventType.HEARTBEAT, at=AT, payload_type="Heartbeat", payload=load_example("Heartbeat")
    )
    assert event.payload is not None
    assert event.payload["worker_id"] == "worker-crew-host-1-48213-a1b2c3"
    assert len(event.event_id) == 32


@pytest.mark.parametrize(
    ("payload_type", "payload", "message"),
    [
        ("PlanSpec", None, "go together"),
        (None, {"anything": 1}, "go together"),
        ("NoSuchArtifact", {"a": 1}, "unknown payload_type"),
    ],
)
def test_ops_event_payload_and_type_go_together(
    payload_type: str | None, payload: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        OpsEvent(type=EventType.PLAN_PENDING, at=AT, payload_type=payload_type, payload=payload)


def test_ops_event_without_payload_is_fine() -> None:
    event = OpsEvent(type=EventType.HEARTBEAT, at=AT)
    assert event.payload is None
    assert event.payload_type is None


def test_ops_event_rejects_a_corrupted_payload_of_the_right_type() -> None:
    payload = load_example("PlanSpec")
    payload["components"] = []  # a PlanSpec needs at least one component
    with pytest.raises(ValidationError):
        OpsEvent(type=EventType.PLAN_PENDING, at=AT, payload_type="PlanSpec", payload=payload)
