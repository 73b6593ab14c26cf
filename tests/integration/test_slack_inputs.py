"""Hostile input on the Slack endpoints over HTTP, against the real app (uvicorn, Postgres, the
replay store): unsigned garbage is a 401 whatever the bytes and headers, a signed request Slack
would not send is a 400 (or Slack's 200 with an ephemeral answer), and nothing is a 500 or
reaches the database; the service stays healthy afterwards."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from crew.gate.slack_message import APPROVE_ACTION
from crew.settings import Settings
from tests.integration.gate_support import APPROVER_ID, Gate, gate_overrides, serve_gate
from tests.slack_support import FakeSlack, button_body, command_body, sign
from tests.unit.test_slack_parsers_property import form, json_values, texts

pytestmark = pytest.mark.integration

ENDPOINTS = ("/slack/commands", "/slack/interactions")
T = TypeVar("T")


@pytest.fixture
async def gate(database_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Gate]:
    fake = FakeSlack().start()
    try:
        settings = make_settings(database_url=database_url, **gate_overrides(fake))
        async with serve_gate(settings, fake) as running:
            yield running
    finally:
        fake.stop()


_unique = itertools.count()


def unique(body: bytes) -> bytes:
    """`body` with a field of its own, so no two requests share a signature (a replay)."""
    return body + f"&n={next(_unique)}".encode()


def examples(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """`count` inputs drawn by hypothesis (the HTTP round trips then run in this event loop)."""
    found: list[T] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        found.append(example)

    collect()
    return found


def expect_401(response: httpx.Response, what: object) -> None:
    assert response.status_code == 401, (what, response.status_code, response.text)
    assert response.json()["error"] in {"invalid_slack_request", "replayed_slack_request"}


def expect_handled(response: httpx.Response, what: object) -> None:
    """Slack's answer (200: ephemeral text or empty) or a 400 with the error body."""
    assert response.status_code in (200, 400), (what, response.status_code, response.text)
    if response.status_code == 400:
        assert response.json()["error"] == "malformed_slack_request", (what, response.text)
        assert response.json()["message"]
    elif response.content:
        assert response.json().get("response_type", "ephemeral") == "ephemeral", response.text


# -- unsigned -------------------------------------------------------------------------------


async def test_unsigned_garbage_is_401_whatever_the_bytes(gate: Gate) -> None:
    now = str(int(time.time()))
    headers: list[dict[str, Any]] = [
        {},
        {"X-Slack-Request-Timestamp": now},
        {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "a" * 64},
        {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": b"v0=\xe9\xff"},
        {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=" + "a" * 64},
        {"X-Slack-Request-Timestamp": "\u0661\u0662".encode(), "X-Slack-Signature": "x"},
    ]
    bodies = [b"\xff\xfe", b"", b"payload=[]", b"\x00" * 100, b"user_id=%00&command=%2Fapprove"]
    bodies += examples(st.binary(max_size=400), 30)
    for path in ENDPOINTS:
        for body in bodies:
            for header in headers:
                response = await gate.http.post(path, content=body, headers=header)
                expect_401(response, (path, body[:60], header))
    forged = b"\xff\xfe"
    response = await gate.http.post(
        "/slack/commands", content=forged, headers=sign(forged, secret="guessed")
    )
    expect_401(response, "forged")
    assert gate.rows("SELECT count(*) AS n FROM crew_slack_requests") == [{"n": 0}]
    assert (await gate.http.get("/healthz")).status_code == 200


# -- signed but not what Slack sends -----------------------------------------------------------


def _click(**changes: Any) -> bytes:
    payload = json.loads(
        httpx.QueryParams(button_body(APPROVE_ACTION, "run-1|ab", user_id=APPROVER_ID).decode())[
            "payload"
        ]
    )
    return form({"payload": json.dumps({**payload, **changes})})


INTERACTIONS: dict[str, bytes] = {
    "payload=[]": form({"payload": "[]"}),
    'payload="x"': form({"payload": '"x"'}),
    "payload=5": form({"payload": "5"}),
    "payload=null": form({"payload": "null"}),
    "not JSON": form({"payload": "{"}),
    "no payload": form({"type": "block_actions"}),
    "actions as a number": _click(actions=5),
    "user as a string": _click(user=APPROVER_ID),
    "user id as a number": _click(user={"id": 5}),
    "NUL in the user id": _click(user={"id": "U0APPROVER\x00"}),
    "NUL in the user name": _click(user={"id": APPROVER_ID, "username": "a\x00"}),
    "lone surrogate in the JSON": form({"payload": '{"type": "block_actions", "x": "\\ud800"}'}),
    "nested 5,000 deep": form({"payload": "[" * 5000 + "]" * 5000}),
    "user nested 5,000 deep": form(
        {"payload": '{"type": "block_actions", "user": ' + "[" * 5000 + "]" * 5000 + "}"}
    ),
    "an encoded lone surrogate": b"payload=%ED%A0%80",
    "response_url not a URL": _click(response_url="file:///etc/passwd"),
}

COMMANDS: dict[str, bytes] = {
    "NUL in user_id": command_body("/approve", "run-1", user_id="U0APPROVER\x00"),
    "NUL in the reason": command_body("/reject", "run-1 no\x00pe", user_id=APPROVER_ID),
    "NUL in user_name": command_body("/approve", "run-1", user_id=APPROVER_ID, user_name="\x00"),
    "invalid UTF-8 escape": b"command=%2Fapprove&text=run-1&user_id=%FF",
    "a lower-case user id": command_body("/approve", "run-1", user_id="alice"),
    "no command": b"user_id=U0APPROVER",
    "unknown command": command_body("/deploy", "run-1", user_id=APPROVER_ID),
    "no run id": command_body("/approve", "", user_id=APPROVER_ID),
    "not a run id": command_body("/approve", "<@U2>", user_id=APPROVER_ID),
    "too many fields": b"&".join(b"f%d=1" % i for i in range(200)),
}


async def test_signed_but_malformed_requests_are_400_or_ephemeral(gate: Gate) -> None:
    for what, body in INTERACTIONS.items():
        body = unique(body)
        response = await gate.slack("/slack/interactions", body)
        expect_handled(response, what)
        assert response.status_code == 400, (what, response.text)
    for what, body in COMMANDS.items():
        body = unique(body)
        response = await gate.slack("/slack/commands", body)
        expect_handled(response, what)
    nul = unique(COMMANDS["NUL in user_id"])
    refused = await gate.slack("/slack/commands", nul)
    assert refused.status_code == 400
    assert refused.json()["message"] == "form field 'user_id' contains a NUL character"
    unknown = await gate.slack("/slack/commands", unique(COMMANDS["unknown command"]))
    assert unknown.status_code == 200
    assert "Unknown command `/deploy`" in unknown.json()["text"]
    # A body that is not UTF-8 cannot have been signed by Slack: refused before parsing.
    expect_401(await gate.slack("/slack/interactions", b"\xff\xfe"), "signed \\xff\\xfe")
    # Nothing malformed got as far as the gate: no refusal logged, no decision, no audit row.
    assert gate.rows("SELECT count(*) AS n FROM crew_gate_log") == [{"n": 0}]
    assert gate.rows("SELECT count(*) AS n FROM crew_audit") == [{"n": 0}]
    # And a genuine request still goes through (the unknown run is the only thing wrong).
    genuine = await gate.command("/approve", "no-such-run")
    assert genuine.status_code == 200
    assert "no run with id 'no-such-run'" in genuine.json()["text"]
    assert (await gate.http.get("/healthz")).status_code == 200


async def test_generated_signed_bodies_are_never_a_server_error(gate: Gate) -> None:
    forms = st.dictionaries(
        st.sampled_from(["command", "text", "user_id", "user_name", "payload"]) | texts,
        texts,
        max_size=6,
    ).map(form)
    payloads = json_values.map(lambda v: form({"payload": json.dumps(v)}))
    bodies = examples(st.one_of(st.binary(max_size=400), forms, payloads), 60)
    for body in bodies:
        for path in ENDPOINTS:
            body = unique(body)
            response = await gate.slack(path, body)
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                expect_401(response, (path, body[:80]))
            else:
                expect_handled(response, (path, body[:80]))
    assert gate.rows("SELECT count(*) AS n FROM crew_audit") == [{"n": 0}]
    assert (await gate.http.get("/healthz")).status_code == 200
