"""Property tests of the Slack parsers and the signature check: whatever arrives (any bytes, any
Unicode including NUL and lone surrogates, JSON of any shape or depth), the result is one of the
typed outcomes and never an exception; what reaches the gate is storable (no NUL, valid UTF-8)
and bounded."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crew.gate.slack_message import APPROVE_ACTION, REJECT_ACTION
from crew.gate.slack_webhook import (
    MAX_FORM_FIELDS,
    GateCommand,
    Ignore,
    Malformed,
    NotVerified,
    Parsed,
    Reply,
    Verified,
    parse_command,
    parse_interaction,
    verify_slack_request,
)
from tests.slack_support import SIGNING_SECRET, button_body, command_body, sign

NOW = 1_700_000_000.0
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
SLACK_ID = re.compile(r"^[A-Z0-9]{1,64}$")

#: Any code point, surrogates included (hypothesis leaves them out of text() by default).
_any_char = st.characters(codec=None, exclude_categories=())
_nasty = st.sampled_from(["\x00", "\ud800", "\udfff", "\ufeff", "\u202e", "%", "&", "=", "+"])
texts = st.lists(st.one_of(_any_char, _nasty), max_size=40).map("".join)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    texts,
    st.sampled_from(["block_actions", APPROVE_ACTION, REJECT_ACTION, "run-1|ab", "U1"]),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
#: No time limits (the machine may be loaded; timing belongs in bench/), more examples than
#: the default for what parses untrusted input.
thorough = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_COMMAND_FIELDS = ["command", "text", "user_id", "user_name", "response_url", "payload"]


def form(fields: dict[str, str]) -> bytes:
    """URL-encoded as a browser would, but surrogates go through as their (invalid) bytes."""
    return urlencode(fields, errors="surrogatepass").encode("ascii")


def storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check(parsed: Parsed) -> None:
    """The result is typed, and everything in it can be logged, sent as JSON and stored."""
    assert isinstance(parsed, GateCommand | Reply | Ignore | Malformed), parsed
    if isinstance(parsed, GateCommand):
        assert RUN_ID.fullmatch(parsed.run_id)
        assert SLACK_ID.fullmatch(parsed.user_id)
        for value in (parsed.user_name, parsed.response_url, parsed.reason, parsed.plan_digest):
            assert value is None or (storable(value) and len(value) <= 2048), value
        assert storable(parsed.actor)
    elif isinstance(parsed, Reply):
        assert storable(parsed.text)
    elif isinstance(parsed, Malformed):
        assert storable(parsed.reason)
        assert len(parsed.reason) < 400
    else:
        assert storable(parsed.why)


# -- any bytes --------------------------------------------------------------------------------


@thorough
@given(st.binary(max_size=3000))
def test_any_bytes_are_a_typed_result(body: bytes) -> None:
    check(parse_command(body))
    check(parse_interaction(body))


@thorough
@given(st.dictionaries(st.sampled_from(_COMMAND_FIELDS) | texts, texts, max_size=8))
def test_any_form_is_a_typed_result(fields: dict[str, str]) -> None:
    body = form(fields)
    check(parse_command(body))
    check(parse_interaction(body))


# -- one field of a genuine command replaced -------------------------------------------------


@thorough
@given(st.sampled_from(["command", "text", "user_id", "user_name", "response_url"]), texts)
def test_a_command_with_any_one_field_is_a_typed_result(name: str, value: str) -> None:
    fields = {
        "command": "/reject",
        "text": "run-1 too big",
        "user_id": "U0APPROVER",
        "user_name": "approver",
        "response_url": "https://hooks.slack.com/commands/T0001/1/abc",
        name: value,
    }
    parsed = parse_command(form(fields))
    check(parsed)
    if not storable(value):
        assert isinstance(parsed, Malformed), parsed
        assert name in parsed.reason


def test_nul_in_any_command_field_is_refused_by_name() -> None:
    genuine = {
        "command": "/approve",
        "text": "run-1",
        "user_id": "U1",
        "user_name": "al",
        "response_url": "https://hooks.slack.com/commands/T0001/1/abc",
        "team_id": "T0001",
    }
    assert isinstance(parse_command(form(genuine)), GateCommand)
    for name in genuine:
        parsed = parse_command(form({**genuine, name: "a\x00b"}))
        assert isinstance(parsed, Malformed), name
        assert f"form field '{name}' contains a NUL character" == parsed.reason


def test_what_slack_never_sends_in_a_form_is_malformed() -> None:
    cases = {
        b"\xff\xfe": "not UTF-8",
        b"command=%2Fapprove&text=%FF": "not UTF-8",
        b"command=%2Fapprove&user_id=%ED%A0%80": "not UTF-8",  # an encoded lone surrogate
        b"&".join(b"f%d=1" % i for i in range(MAX_FORM_FIELDS + 1)): "form fields",
        command_body("/approve", "run-1", user_id="alice"): "form.user_id",
        command_body("/approve", "run-1", user_id="U1", response_url="javascript:x"): (
            "form.response_url"
        ),
        command_body("/approve", "x" * 5000, user_id="U1"): "form.text",
    }
    for body, expected in cases.items():
        parsed = parse_command(body)
        assert isinstance(parsed, Malformed), body[:80]
        assert expected in parsed.reason, (body[:80], parsed.reason)


# -- interactions ------------------------------------------------------------------------------


def _payload(value: Any) -> bytes:
    return form({"payload": json.dumps(value)})


@thorough
@given(json_values)
def test_any_json_payload_is_a_typed_result(value: Any) -> None:
    check(parse_interaction(_payload(value)))


_user = st.fixed_dictionaries(
    {"id": st.sampled_from(["U0APPROVER", "", "alice"]) | json_values},
    optional={"username": json_values, "name": json_values},
)
_action = st.fixed_dictionaries(
    {"action_id": st.sampled_from([APPROVE_ACTION, REJECT_ACTION]) | json_values},
    optional={"value": st.sampled_from(["run-1|" + "a" * 64, "|x", "run-1"]) | json_values},
)


@thorough
@given(
    st.fixed_dictionaries(
        {
            "type": st.just("block_actions") | json_values,
            "user": _user | json_values,
            "actions": st.lists(_action | json_values, max_size=3) | json_values,
        },
        optional={"response_url": st.just("https://hooks.slack.com/a/1") | json_values},
    )
)
def test_a_click_shaped_payload_with_any_field_is_a_typed_result(value: dict[str, Any]) -> None:
    parsed = parse_interaction(_payload(value))
    check(parsed)
    if isinstance(parsed, GateCommand):
        assert value["type"] == "block_actions"
        assert value["user"]["id"] == parsed.user_id


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("[]", "payload: Input should be"),
        ('"x"', "payload: Input should be"),
        ("5", "payload: Input should be"),
        ("null", "payload: Input should be"),
        ("{}", "payload.type: Field required"),
        ('{"type": 5}', "payload.type"),
        ('{"type": "block_actions", "user": {"id": "U1"}, "actions": 5}', "payload.actions"),
        ('{"type": "block_actions", "user": "U1", "actions": []}', "payload.user"),
        ('{"type": "block_actions", "user": {"id": 5}, "actions": []}', "payload.user.id"),
        ('{"type": "block_actions", "user": {"id": "U1"}, "actions": [5]}', "payload.actions.0"),
        ('{"type": "block_actions", "user": {"id": "U\\u0000"}, "actions": []}', "user.id"),
        ('{"type": "bl\\u0000", "user": {"id": "U1"}}', "payload.type: Value error, contains"),
        ('{"type": "\\ud800"}', "payload"),
        ("[" * 5000 + "]" * 5000, "payload is not JSON"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "payload is not JSON"),
        ('{"type": "block_actions", "user": ' + "[" * 5000 + "]" * 5000 + "}", "not JSON"),
        ("NaN", "payload"),
        ("1" * 5000, "payload"),
    ],
)
def test_payloads_slack_never_sends_are_malformed(payload: str, expected: str) -> None:
    parsed = parse_interaction(form({"payload": payload}))
    assert isinstance(parsed, Malformed), parsed
    assert expected in parsed.reason, parsed.reason
    check(parsed)


def test_nul_in_a_clicked_buttons_fields_is_refused() -> None:
    good = {
        "type": "block_actions",
        "user": {"id": "U1", "username": "al"},
        "actions": [{"action_id": APPROVE_ACTION, "value": "run-1|ab"}],
        "response_url": "https://hooks.slack.com/a/1",
    }
    assert isinstance(parse_interaction(_payload(good)), GateCommand)
    assert isinstance(
        parse_interaction(button_body(APPROVE_ACTION, "run-1|ab", user_id="U1")), GateCommand
    )
    for path in (("user", "username"), ("actions", 0, "value"), ("response_url",)):
        bad = json.loads(json.dumps(good))
        holder: Any = bad
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = "a\x00b"
        parsed = parse_interaction(_payload(bad))
        assert isinstance(parsed, Malformed), path
        assert str(path[-1]) in parsed.reason


# -- signatures --------------------------------------------------------------------------------

_header_text = st.text(st.characters(max_codepoint=255), max_size=80)  # what ASGI headers hold


@thorough
@given(
    st.binary(max_size=500),
    st.dictionaries(
        st.sampled_from(["x-slack-request-timestamp", "x-slack-signature", "content-type"]),
        _header_text | st.sampled_from([str(int(NOW)), "v0=" + "a" * 64, "9" * 5000]),
    ),
)
def test_unsigned_input_is_never_verified_and_never_raises(
    body: bytes, headers: dict[str, str]
) -> None:
    verdict = verify_slack_request(SIGNING_SECRET, body, headers, NOW)
    assert isinstance(verdict, NotVerified)
    assert storable(verdict.reason)


@thorough
@given(st.binary(max_size=500))
def test_signed_bytes_verify_exactly_when_they_are_utf8(body: bytes) -> None:
    headers = {k.lower(): v for k, v in sign(body, at=NOW).items()}
    verdict = verify_slack_request(SIGNING_SECRET, body, headers, NOW)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        assert isinstance(verdict, NotVerified)
        assert "not UTF-8" in verdict.reason
    else:
        assert isinstance(verdict, Verified)


def test_headers_that_would_make_the_verifier_raise_are_refused() -> None:
    body = b"\xff\xfe"
    base = {k.lower(): v for k, v in sign(body, at=NOW).items()}
    cases = {
        "x-slack-signature": "v0=\xe9" + "a" * 63,  # non-ASCII: compare_digest would raise
        "x-slack-request-timestamp": "9" * 5000,  # beyond int()'s digit limit
    }
    for name, value in cases.items():
        assert isinstance(
            verify_slack_request(SIGNING_SECRET, body, {**base, name: value}, NOW), NotVerified
        )
    assert _reason(verify_slack_request(SIGNING_SECRET, body, base, NOW)).endswith(
        "the body is not UTF-8, so Slack did not sign it"
    )


def _reason(verdict: Verified | NotVerified) -> str:
    assert isinstance(verdict, NotVerified)
    return verdict.reason


def test_strings_with_surrogates_are_url_encoded_as_invalid_bytes() -> None:
    """The helper above really sends what a hostile client could: %ED%A0%80 for U+D800."""
    assert form({"a": "\ud800"}) == b"a=%ED%A0%80"
    assert quote("\x00") == "%00"
