"""Slack requests in: verify the signature, then parse into a typed result before anything runs.

Verification (`verify_slack_request`) uses `slack_sdk.signature.SignatureVerifier` on the raw
body: HMAC-SHA256 `v0`, timestamp within 5 minutes. Only a verified body is parsed. Parsing
(Atlantis style) turns a slash command or a button click into one of:

- `GateCommand`: approve / reject / rollback / cancel a run, with who asked and where to answer;
- `Reply`: answer at once and do nothing (usage, an unknown command, a malformed run id);
- `Ignore`: nothing to do (an interaction that is not one of our buttons).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from crew.gate.slack_message import APPROVE_ACTION, REJECT_ACTION
from schemas.approval import Decision

#: Slack refuses requests older than this; so do we (and replays are remembered this long).
MAX_AGE_S = 5 * 60
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_COMMANDS = {
    "/approve": Decision.APPROVE,
    "/reject": Decision.REJECT,
    "/rollback": Decision.ROLLBACK,
    "/cancel": Decision.CANCEL,
}
_BUTTONS = {APPROVE_ACTION: Decision.APPROVE, REJECT_ACTION: Decision.REJECT}
USAGE = (
    "Usage: `/approve RUN_ID`, `/reject RUN_ID [reason]`, `/rollback RUN_ID [reason]`, "
    "`/cancel RUN_ID [reason]`."
)


@dataclass(frozen=True)
class Verified:
    signature: str
    timestamp: int


@dataclass(frozen=True)
class NotVerified:
    reason: str


@dataclass(frozen=True)
class GateCommand:
    action: Decision
    run_id: str
    user_id: str
    user_name: str | None
    response_url: str | None
    reason: str | None = None
    plan_digest: str | None = None
    """The plan file digest a button carries (None for a slash command)."""

    @property
    def actor(self) -> str:
        """What the audit log records: the name people know, and the id that is checked."""
        return f"{self.user_name} ({self.user_id})" if self.user_name else self.user_id


@dataclass(frozen=True)
class Reply:
    text: str


@dataclass(frozen=True)
class Ignore:
    why: str


Parsed = GateCommand | Reply | Ignore


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_slack_request(
    signing_secret: str, body: bytes, headers: Mapping[str, str], now: float
) -> Verified | NotVerified:
    """Check Slack's signature headers against the raw body (before it is parsed)."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        return NotVerified("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent = int(timestamp)
    except ValueError:
        return NotVerified("X-Slack-Request-Timestamp is not a Unix time")
    if abs(now - sent) > MAX_AGE_S:
        return NotVerified("stale request: its timestamp is more than 5 minutes off")
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return NotVerified("bad signature")
    return Verified(signature=signature, timestamp=sent)


def _form(body: bytes) -> dict[str, str]:
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items() if values}


def parse_command(body: bytes) -> Parsed:
    """A slash command (`application/x-www-form-urlencoded`, as Slack sends it)."""
    form = _form(body)
    command = form.get("command", "").strip().lower()
    action = _COMMANDS.get(command)
    if action is None:
        return Reply(f"Unknown command `{command or '(none)'}`. {USAGE}")
    user_id = form.get("user_id", "").strip()
    if not user_id:
        return Reply("Slack sent no user id with this command; nothing was done.")
    words = form.get("text", "").split(maxsplit=1)
    if not words:
        return Reply(f"Which run? {USAGE}")
    run_id = words[0].strip()
    if not _RUN_ID.match(run_id):
        return Reply(f"`{run_id[:100]}` is not a run id. {USAGE}")
    reason = words[1].strip()[:2000] if len(words) > 1 and words[1].strip() else None
    return GateCommand(
        action=action,
        run_id=run_id,
        user_id=user_id,
        user_name=form.get("user_name") or None,
        response_url=form.get("response_url") or None,
        reason=reason,
    )


def parse_interaction(body: bytes) -> Parsed:
    """A button click: form field `payload` holding Slack's block_actions JSON."""
    raw = _form(body).get("payload")
    if raw is None:
        return Ignore("no payload")
    try:
        payload: Any = json.loads(raw)
    except json.JSONDecodeError:
        return Ignore("payload is not JSON")
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return Ignore(f"not a button click ({str(payload.get('type'))[:40]})")
    actions = payload.get("actions") or []
    ours = [a for a in actions if isinstance(a, dict) and a.get("action_id") in _BUTTONS]
    if not ours:
        return Ignore("not one of the gate's buttons")
    clicked = ours[0]
    run_id, _, digest = str(clicked.get("value", "")).partition("|")
    if not _RUN_ID.match(run_id):
        return Ignore("the button carries no run id")
    user = payload.get("user") or {}
    user_id = str(user.get("id", "")).strip()
    if not user_id:
        return Ignore("no user")
    name = user.get("username") or user.get("name")
    action = _BUTTONS[str(clicked["action_id"])]
    return GateCommand(
        action=action,
        run_id=run_id,
        user_id=user_id,
        user_name=str(name) if name else None,
        response_url=payload.get("response_url") or None,
        reason="rejected with the Slack button" if action is Decision.REJECT else None,
        plan_digest=digest or None,
    )
