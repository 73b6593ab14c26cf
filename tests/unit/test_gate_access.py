"""crew/access.py and the settings around it: tokens with roles, hashed at rest, and who
may decide at the gate."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from crew.access import (
    Principal,
    Role,
    authenticate,
    hash_token,
    new_token,
    parse_token_entry,
    refusal_reason,
    token_entry,
)
from crew.settings import Settings
from schemas.approval import Channel

TOKEN = "crew_0123456789abcdefghij"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CREW_"):
            monkeypatch.delenv(name)


def test_plain_entries_are_hashed_when_parsed() -> None:
    token = parse_token_entry(f"alice:approver:{TOKEN}")
    assert (token.principal, token.role, token.sha256) == (
        "alice",
        Role.APPROVER,
        hash_token(TOKEN),
    )
    assert TOKEN not in repr(token)
    assert TOKEN not in str(token.model_dump())


def test_hash_entries_round_trip_with_new_tokens() -> None:
    fresh = new_token()
    assert len(fresh) > 40
    entry = token_entry("ci-bot", Role.SUBMITTER, fresh)
    assert fresh not in entry
    parsed = parse_token_entry(entry)
    assert authenticate([parsed], fresh) == Principal(name="ci-bot", role=Role.SUBMITTER)
    assert authenticate([parsed], fresh + "x") is None
    assert authenticate([parsed], "") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("just-a-token", "name:role:sha256:<hex> or name:role:<token>"),
        ("alice:approver", "name:role:sha256:<hex> or name:role:<token>"),
        ("alice:boss:" + TOKEN, "unknown role 'boss'; use viewer, submitter or approver"),
        ("al ice:viewer:" + TOKEN, "token name 'al ice'"),
        ("alice:viewer:short", "shorter than 16 characters"),
        ("alice:viewer:sha256:abc", "64 hex digits"),
    ],
)
def test_bad_entries_say_what_to_fix(entry: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_token_entry(entry)
    assert message in str(info.value)


def test_settings_parse_tokens_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CREW_HOST", "127.0.0.1")  # plain entries are for loopback only
    other = new_token()
    monkeypatch.setenv(
        "CREW_API_TOKENS",
        f" alice:approver:{TOKEN}, ,{token_entry('vic', Role.VIEWER, other)}",
    )
    settings = Settings(data_dir=tmp_path)
    assert [(t.principal, t.role) for t in settings.api_tokens] == [
        ("alice", Role.APPROVER),
        ("vic", Role.VIEWER),
    ]
    assert TOKEN not in repr(settings)
    assert authenticate(settings.api_tokens, other) == Principal(name="vic", role=Role.VIEWER)


def test_settings_refuse_bad_entries_without_echoing_them(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(data_dir=tmp_path, api_tokens=f"alice:boss:{TOKEN}")
    assert "unknown role 'boss'" in str(info.value)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "crew.example.com"])
def test_beyond_loopback_plain_tokens_are_refused_at_start_up(
    host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A plain entry makes the configuration itself a usable credential: on an address others
    reach, only hashes may be at rest; the error says how to get them, and echoes no token."""
    hashed = token_entry("vic", Role.VIEWER, new_token())
    monkeypatch.setenv("CREW_HOST", host)
    monkeypatch.setenv("CREW_API_TOKENS", f"{hashed},alice:approver:{TOKEN}")
    with pytest.raises(ValidationError) as info:
        Settings(data_dir=tmp_path)
    message = str(info.value)
    assert f"refusing to bind {host} with plain tokens in CREW_API_TOKENS (for alice)" in message
    assert "only hashed entries name:role:sha256:<hex>" in message
    assert "`crew token new NAME --role ROLE`" in message
    assert TOKEN not in message
    # The entry `crew token new` prints for the same token is accepted there.
    monkeypatch.setenv("CREW_API_TOKENS", f"{hashed},{token_entry('alice', Role.APPROVER, TOKEN)}")
    settings = Settings(data_dir=tmp_path)
    assert authenticate(settings.api_tokens, TOKEN) == Principal(name="alice", role=Role.APPROVER)
    assert not any(t.plain_at_rest for t in settings.api_tokens)


def test_plain_tokens_stay_allowed_on_loopback(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        settings = Settings(data_dir=tmp_path, host=host, api_tokens=f"alice:approver:{TOKEN}")
        (token,) = settings.api_tokens
        assert token.plain_at_rest
        assert authenticate(settings.api_tokens, TOKEN) is not None


def test_settings_refuse_a_name_or_token_twice(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="names alice more than once"):
        Settings(data_dir=tmp_path, api_tokens=f"alice:viewer:{TOKEN},alice:approver:{TOKEN}x")
    with pytest.raises(ValidationError, match="same token under two names"):
        Settings(data_dir=tmp_path, api_tokens=f"alice:viewer:{TOKEN},bob:approver:{TOKEN}")


def test_roles_are_ordered() -> None:
    assert Role.APPROVER.allows(Role.SUBMITTER)
    assert Role.APPROVER.allows(Role.VIEWER)
    assert Role.SUBMITTER.allows(Role.VIEWER)
    assert not Role.SUBMITTER.allows(Role.APPROVER)
    assert not Role.VIEWER.allows(Role.SUBMITTER)


# -- who may decide -------------------------------------------------------------------------


def test_rest_needs_the_approver_role() -> None:
    assert refusal_reason([], Channel.REST, "alice", Role.APPROVER) is None
    why = refusal_reason([], Channel.REST, "sam", Role.SUBMITTER)
    assert why == "'sam' has the submitter role; deciding at the gate needs approver"
    assert "viewer role" in (refusal_reason([], Channel.REST, "vic", Role.VIEWER) or "")


def test_with_an_approver_list_rest_principals_must_be_listed() -> None:
    approvers = ["slack:U0ALICE", "rest:alice", "bob"]
    assert refusal_reason(approvers, Channel.REST, "alice", Role.APPROVER) is None
    assert refusal_reason(approvers, Channel.REST, "bob", Role.APPROVER) is None
    assert refusal_reason(approvers, Channel.REST, "eve", Role.APPROVER) == (
        "'eve' is not an approver (CREW_APPROVERS)"
    )
    # A Slack-only entry does not make a REST principal of the same name an approver.
    assert refusal_reason(["slack:carol"], Channel.REST, "carol", Role.APPROVER) is not None


def test_slack_users_must_be_listed_as_slack_entries() -> None:
    assert refusal_reason(["slack:U0ALICE"], Channel.SLACK, "U0ALICE") is None
    assert refusal_reason(["rest:U0ALICE"], Channel.SLACK, "U0ALICE") is not None
    assert "not an approver" in (refusal_reason(["slack:U0ALICE"], Channel.SLACK, "U0EVE") or "")
    assert "slack:<user id>" in (refusal_reason([], Channel.SLACK, "U0ALICE") or "")


def test_a_bare_entry_never_names_a_slack_user() -> None:
    """`alice` in the list is the REST principal (or CLI actor) alice, not a Slack user whose id
    happens to read `alice`; the Slack user is listed as slack:U..., and only so."""
    assert refusal_reason(["alice"], Channel.REST, "alice", Role.APPROVER) is None
    assert refusal_reason(["alice"], Channel.CLI, "alice") is None
    assert refusal_reason(["alice"], Channel.SLACK, "alice") == (
        "'alice' is not an approver (CREW_APPROVERS)"
    )
    assert refusal_reason(["U0ALICE"], Channel.SLACK, "U0ALICE") is not None
    # ... and a slack: entry never names a REST principal or a CLI actor.
    assert refusal_reason(["slack:U0ALICE"], Channel.REST, "U0ALICE", Role.APPROVER) is not None
    assert refusal_reason(["slack:U0ALICE"], Channel.CLI, "U0ALICE") is not None


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            "U012AB3CD",
            "'U012AB3CD' looks like a Slack user id, but a bare entry names a REST "
            "principal or a CLI --actor: write slack:U012AB3CD for the Slack user",
        ),
        ("alice,W0ENTERPRISE", "write slack:W0ENTERPRISE"),
        ("slack:alice", "'alice' is not a Slack user id"),
        ("slack:u012ab", "is not a Slack user id"),
        ("slack:", "is not a Slack user id"),
        ("rest:al ice", "cannot be a token name"),
        ("cli:", "names nobody after cli:"),
        ("email:alice@example.com", "unknown channel 'email'"),
        ("system:conductor", "unknown channel 'system'"),
    ],
)
def test_ambiguous_or_impossible_approver_entries_are_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, entries: str, message: str
) -> None:
    monkeypatch.setenv("CREW_APPROVERS", entries)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert message in str(info.value)
    assert f"entry {entries.split(',')[-1]!r}" in str(info.value)


def test_unambiguous_approver_entries_load(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = "alice,ops.bot,admin@example.com,rest:U0BOT,cli:U0OPS,slack:U012AB3CD,slack:W0EG"
    monkeypatch.setenv("CREW_APPROVERS", entries)
    assert Settings().approvers == entries.split(",")


def test_cli_is_trusted_unless_a_list_is_set() -> None:
    assert refusal_reason([], Channel.CLI, "anyone") is None
    assert refusal_reason(["ops"], Channel.CLI, "ops") is None
    assert refusal_reason(["cli:ops"], Channel.CLI, "ops") is None
    assert refusal_reason(["ops"], Channel.CLI, "intern") is not None


# -- the other gate settings ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("72h", timedelta(hours=72)),
        ("3d", timedelta(days=3)),
        ("90m", timedelta(minutes=90)),
        ("45", timedelta(seconds=45)),
        ("1.5h", timedelta(minutes=90)),
        ("P2D", timedelta(days=2)),
    ],
)
def test_approval_ttl_takes_readable_durations(text: str, expected: timedelta) -> None:
    assert Settings(approval_ttl=text).approval_ttl == expected


def test_approval_ttl_defaults_to_72_hours_and_must_be_positive() -> None:
    assert Settings().approval_ttl == timedelta(hours=72)
    with pytest.raises(ValidationError, match="longer than zero"):
        Settings(approval_ttl="0s")


def test_approvers_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREW_APPROVERS", "slack:U0ALICE, rest:bob,,")
    assert Settings().approvers == ["slack:U0ALICE", "rest:bob"]


def test_slack_posting_needs_a_channel_and_the_signing_secret() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(slack_bot_token="xoxb-1")
    assert "CREW_SLACK_CHANNEL and CREW_SLACK_SIGNING_SECRET" in str(info.value)
    ok = Settings(slack_bot_token="xoxb-1", slack_channel="C1", slack_signing_secret="s")
    assert ok.slack_channel == "C1"
    assert "xoxb-1" not in repr(ok)


def test_links_use_the_public_url_or_the_bind_address() -> None:
    assert Settings(port=9000).base_url == "http://127.0.0.1:9000"
    assert Settings(host="::1", port=9000).base_url == "http://[::1]:9000"
    assert Settings(public_url="https://crew.example.com/").base_url == "https://crew.example.com"
    with pytest.raises(ValidationError):
        Settings(slack_api_url="https://slack.com/api")  # the base URL must end in '/'
