"""The HTTP edge (api/guard.py) and the one error body (api/errors.py), on a small app with the
same guard, handlers and OpenAPI rules as the service; the real app over uvicorn and
Postgres is tests/integration/test_api_inputs.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query

from api.errors import document_errors, install_error_handlers
from api.guard import RequestGuard
from api.routes.runs import DecisionBody
from schemas.goal import GoalStatement
from tests.unit.support import goal_dict

LIMIT = 4096


def edge_app(*, timeout_s: float = 5) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestGuard, max_body_bytes=LIMIT, timeout_s=timeout_s)
    install_error_handlers(app)
    router = APIRouter()

    @router.post("/goals")
    async def goals(goal: GoalStatement) -> dict[str, str]:
        return {"title": goal.title}

    @router.post("/runs/{run_id}/approve")
    async def approve(run_id: str, body: DecisionBody | None = None) -> dict[str, str | None]:
        return {"run_id": run_id, "reason": body.reason if body else None}

    @router.get("/runs")
    async def runs(
        actor: str | None = None, offset: Annotated[int, Query(ge=0, le=1000)] = 0
    ) -> dict[str, Any]:
        return {"actor": actor, "offset": offset}

    @router.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(60)
        return {"status": "late"}

    @router.post("/raw")
    async def raw(data: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(data)}

    app.include_router(router)
    document_errors(app)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=edge_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as c:
        yield c


def assert_error_body(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "errors"}, body
    assert body["error"] == error, body
    assert body["message"]
    for entry in body["errors"]:
        assert set(entry) == {"field", "problem", "fix"}
        assert entry["problem"]
        assert entry["fix"]
    return body


# -- NUL and lone surrogates: 422 naming where, before anything stores them -------------------


async def test_nul_in_a_path_parameter_is_422_naming_the_path(client: httpx.AsyncClient) -> None:
    body = assert_error_body(await client.post("/runs/a%00b/approve"), 422, "invalid_request")
    assert body["errors"][0]["field"] == "path"
    assert "NUL" in body["errors"][0]["problem"]


async def test_nul_in_a_query_parameter_is_422_naming_it(client: httpx.AsyncClient) -> None:
    body = assert_error_body(await client.get("/runs?actor=a%00b"), 422, "invalid_request")
    assert [e["field"] for e in body["errors"]] == ["query.actor"]
    named = assert_error_body(await client.get("/runs?a%00=1"), 422, "invalid_request")
    assert named["errors"][0]["field"] == "query"
    # other text, percent-encoded or not, passes through untouched
    ok = await client.get("/runs", params={"actor": "zoë 🚀 %00"})
    assert ok.status_code == 200
    assert ok.json()["actor"] == "zoë 🚀 %00"


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b", "\udfff"])
async def test_unstorable_text_in_a_json_body_is_422_naming_the_field(
    client: httpx.AsyncClient, text: str
) -> None:
    goal = goal_dict(description=text)
    raw = json.dumps(goal).encode()  # ensure_ascii: the surrogate travels as \\ud800
    response = await client.post(
        "/goals", content=raw, headers={"content-type": "application/json"}
    )
    body = assert_error_body(response, 422, "invalid_request")
    assert [e["field"] for e in body["errors"]] == ["description"]
    decision = await client.post(
        "/runs/r/approve",
        content=json.dumps({"reason": text}),
        headers={"content-type": "application/json"},
    )
    assert [e["field"] for e in assert_error_body(decision, 422, "invalid_request")["errors"]] == [
        "reason"
    ]


async def test_an_echoed_lone_surrogate_does_not_break_the_error_body(
    client: httpx.AsyncClient,
) -> None:
    """The region check repeats the value it refuses; UTF-8 cannot carry a lone surrogate."""
    raw = json.dumps(goal_dict(region="eu-\ud800")).encode()
    response = await client.post(
        "/goals", content=raw, headers={"content-type": "application/json"}
    )
    body = assert_error_body(response, 422, "invalid_request")
    assert "region" in [e["field"] for e in body["errors"]]


# -- bounded integers ---------------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["9223372036854775808", "-1", "1001", "1e3", "x"])
async def test_integer_parameters_are_bounded(client: httpx.AsyncClient, offset: str) -> None:
    body = assert_error_body(await client.get(f"/runs?offset={offset}"), 422, "invalid_request")
    assert body["errors"][0]["field"] == "query.offset"


# -- body size: 413 before parsing, declared or chunked --------------------------------------


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    big = {"k": "x" * LIMIT}
    body = assert_error_body(await client.post("/raw", json=big), 413, "body_too_large")
    assert str(LIMIT) in body["message"]
    assert "CREW_MAX_BODY_BYTES" in body["message"]
    assert (await client.post("/raw", json={"k": "x" * (LIMIT - 100)})).status_code == 200


async def test_a_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"k": "'
        for _ in range(LIMIT // 512 + 2):
            yield b"x" * 512
        yield b'"}'

    response = await client.post(
        "/raw", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error_body(response, 413, "body_too_large")


# -- bodies FastAPI cannot read: the one error body, never a bare 400 --------------------------


async def test_json_nested_10000_deep_is_422(client: httpx.AsyncClient) -> None:
    for raw in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        response = await client.post(
            "/raw", content=raw[: LIMIT - 1], headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
    deep = "[" * 2_000 + "]" * 2_000
    response = await client.post("/raw", content=deep, headers={"content-type": "application/json"})
    body = assert_error_body(response, 422, "invalid_request")
    assert "nested too deeply" in body["errors"][0]["problem"]


async def test_invalid_utf8_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/raw", content=b'{"a": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    body = assert_error_body(response, 422, "invalid_request")
    assert "UTF-8" in body["errors"][0]["problem"]


async def test_json_sent_as_text_plain_is_415_saying_so(client: httpx.AsyncClient) -> None:
    raw = json.dumps(goal_dict()).encode()
    for path in ("/goals", "/runs/r/approve"):
        response = await client.post(path, content=raw, headers={"content-type": "text/plain"})
        body = assert_error_body(response, 415, "unsupported_media_type")
        assert "text/plain" in body["message"]
        assert "application/json" in body["message"]
    untyped = await client.post("/goals", content=raw)
    assert (
        "without a Content-Type"
        in assert_error_body(untyped, 415, "unsupported_media_type")["message"]
    )
    typed = await client.post("/goals", content=raw, headers={"content-type": "application/json"})
    assert typed.status_code == 200, typed.text


async def test_routing_errors_use_the_error_body(client: httpx.AsyncClient) -> None:
    assert_error_body(await client.get("/no/such/path"), 404, "not_found")
    wrong = assert_error_body(await client.delete("/goals"), 405, "method_not_allowed")
    assert wrong["message"]


# -- time bound ----------------------------------------------------------------------------------


async def test_a_request_without_an_answer_in_time_is_503() -> None:
    transport = httpx.ASGITransport(app=edge_app(timeout_s=0.2))
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as c:
        body = assert_error_body(await c.get("/slow"), 503, "request_timeout")
        assert "CREW_REQUEST_TIMEOUT_S" in body["message"]
        assert (await c.get("/runs")).status_code == 200


# -- the OpenAPI document lists what each operation answers -----------------------------------


def test_openapi_lists_every_error_status_with_the_error_body() -> None:
    schema = edge_app().openapi()
    assert "HTTPValidationError" not in json.dumps(schema)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"422", "503"} | ({"413", "415"} if "requestBody" in operation else set())
            assert expected <= set(responses), (method, path, sorted(responses))
            for code in expected:
                content = responses[code]["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/ErrorBody"}, (path, code)
