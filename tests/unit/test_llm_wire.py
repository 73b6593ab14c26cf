"""What goes over the wire to an LLM and how its answer is read (tools/llm.py), and how the
local model's layout is found (tools/llama_server.py): no server, no model needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.design import DesignProposal
from nodes.planners.llm import design_wire_schema
from schemas.errors import ToolNotFoundError
from schemas.plan import DesignBlocked
from tests.unit.support import ARTIFACT_EXAMPLES
from tests.unit.test_contracts import schema_validator
from tools.llama_server import cpu_has_avx512, installed_models, local_model
from tools.llm import parse_reply, wire_schema

SCRATCH_BLOCKED = ARTIFACT_EXAMPLES / "llm" / "DesignBlocked-scratch-qwen2.5-coder-0.5b.json"
CUT_OFF = (
    "the answer was cut off at the output-token cap (CREW_LLM_MAX_OUTPUT_TOKENS): keep summary "
    "and rationale short and list only the components the goal needs"
)
DESIGN = {
    "summary": "One bucket.",
    "rationale": "Storage only.",
    "components": [{"type": "s3_bucket", "name": "logs", "params": {"versioning": True}}],
}


def test_the_wire_schema_has_no_refs_and_no_bounds_a_grammar_cannot_expand() -> None:
    sent = json.dumps(wire_schema(DesignProposal))
    for keyword in ("$ref", "$defs", "maxLength", "maxItems", "minLength", "title"):
        assert keyword not in sent, keyword
    schema = design_wire_schema()
    component = schema["properties"]["components"]["items"]
    assert "s3_bucket" in component["properties"]["type"]["enum"]
    assert component["properties"]["params"]["type"] == "object"
    risk = schema["properties"]["risks"]["items"]
    assert risk["properties"]["severity"]["enum"] == ["low", "medium", "high"]
    assert set(schema["required"]) == {"summary", "rationale", "components"}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(DESIGN),
        "```json\n" + json.dumps(DESIGN, indent=2) + "\n```",
        "Sure, here it is:\n```\n" + json.dumps(DESIGN) + "\n```\nAnything else?",
        json.dumps({"DesignProposal": DESIGN}),
        json.dumps({"name": "DesignProposal", "arguments": DESIGN}),
    ],
)
def test_fenced_wrapped_or_chatty_json_is_read(text: str) -> None:
    value, error = parse_reply(DesignProposal, text)
    assert error is None
    assert value is not None
    assert value.components[0].name == "logs"


def test_an_invalid_reply_is_explained_field_by_field() -> None:
    assert parse_reply(DesignProposal, "I cannot help with that.")[1] == (
        "the reply is not a JSON object: 'I cannot help with that.'"
    )
    _, broken = parse_reply(DesignProposal, '{"summary": "x", "components": [')
    assert broken is not None
    assert broken.startswith("the reply is not valid JSON")
    bad = {**DESIGN, "components": [{"type": "s3_bucket", "name": "Bad Name"}], "cost": 3}
    _, error = parse_reply(DesignProposal, json.dumps(bad))
    assert error is not None
    assert "components.0.name: String should match pattern" in error
    assert "cost: Extra inputs are not permitted" in error


def test_the_local_model_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFoundError, match=r"weights not installed \(run scripts/local-llm\)"):
        local_model(tmp_path)
    manifest = {"server": "server/llama-server", "lib_dir": "server", "model": "m.gguf"}
    (tmp_path / "model.json").write_text(json.dumps({**manifest, "alias": "q"}))
    with pytest.raises(ToolNotFoundError, match="llama-server is missing"):
        local_model(tmp_path)


def test_avx512_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")
    assert cpu_has_avx512(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    assert not cpu_has_avx512(info)
    assert not cpu_has_avx512(tmp_path / "absent")


def test_the_local_model_is_chosen_by_alias(tmp_path: Path) -> None:
    for name in ("server/llama-server", "small.gguf", "big.gguf"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    layout = {"server": "server/llama-server", "lib_dir": "server", "portable_cpu": True}
    # a layout of before the 1.5B option: one model, no `models`
    (tmp_path / "model.json").write_text(
        json.dumps({**layout, "model": "small.gguf", "alias": "qwen2.5-coder-0.5b"})
    )
    assert local_model(tmp_path).model == tmp_path / "small.gguf"
    models = {"qwen2.5-coder-1.5b": "big.gguf", "qwen2.5-coder-0.5b": "small.gguf"}
    (tmp_path / "model.json").write_text(json.dumps({**layout, "models": models}))
    assert installed_models(tmp_path) == {a: tmp_path / f for a, f in models.items()}
    assert local_model(tmp_path).alias == "qwen2.5-coder-0.5b"  # the default, whatever order
    big = local_model(tmp_path, alias="qwen2.5-coder-1.5b")
    assert (big.alias, big.model) == ("qwen2.5-coder-1.5b", tmp_path / "big.gguf")
    del models["qwen2.5-coder-1.5b"]
    (tmp_path / "model.json").write_text(json.dumps({**layout, "models": models}))
    with pytest.raises(ToolNotFoundError, match=r"run scripts/local-llm --model 1.5b"):
        local_model(tmp_path, alias="qwen2.5-coder-1.5b")


def test_the_real_models_rejected_answers_are_kept_in_the_example() -> None:
    """examples/artifacts/llm/: what the 0.5B model did with the example goal when asked to
    design from nothing (`--strategy scratch`, temperature 0): it listed the whole catalog with
    invented parameters, was cut off at the 512-token cap, was told why, and wrote the same
    answer again (greedy decoding); three attempts, blocked, every answer and why in provenance.
    With the catalog planner's draft to revise (the default for small models) it answered
    right the first time on every goal measured (bench/README.md)."""
    doc = json.loads(SCRATCH_BLOCKED.read_text(encoding="utf-8"))
    blocked = DesignBlocked.model_validate(doc)
    assert blocked.model_dump(mode="json") == doc
    schema_validator("DesignBlocked").validate(doc)
    provenance = blocked.provenance
    assert provenance is not None
    assert (provenance.planner, provenance.model) == ("llm", "qwen2.5-coder-0.5b")
    assert (provenance.attempts, provenance.output_method) == (3, "json_schema")
    assert [r.attempt for r in provenance.rejected] == [1, 2, 3]
    for rejected in provenance.rejected:
        assert rejected.problems == [f"design: {CUT_OFF}"]
        assert '"type": "ecs_service"' in rejected.answer  # a log bucket needs no service
    assert [r.why for r in blocked.reasons] == [CUT_OFF]
