"""Slack requests in: verify the signature, then parse into a typed result before anything runs.

Verification (`verify_slack_request`) uses `slack_sdk.signature.SignatureVerifier` on the raw
body: HMAC-SHA256 `v0`, timestamp within 5 minutes. Whatever the bytes, an unverified request
is a `NotVerified` (a 401), never an exception: a signature header that is not `v0=<64 hex>`
and a body that is not UTF-8 (Slack only sends URL-encoded UTF-8 forms, and the verifier
cannot hash anything else) are refused before the HMAC is computed.

Only a verified body is parsed. Parsing (Atlantis style) turns a slash command or a button click
into one of:

- `GateCommand`: approve / reject / rollback / cancel a run, with who asked and where to answer;
- `Reply`: answer at once and do nothing (usage, an unknown command, a malformed run id);
- `Ignore`: nothing to do (an interaction that is not one of our buttons);
- `Malformed`: signed, but not what Slack sends (not UTF-8, a NUL character, a payload that
  is not the JSON object Slack documents, a field of the wrong type or size): a 400.

The forms and the interaction JSON are validated into pydantic models (`CommandForm`,
`BlockActions`), so every field that reaches the gate is a bounded string without NUL
characters (Postgres refuses them in text) and without lone surrogates. The parsers never
raise: every input, however broken, is one of the four results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json
from slack_sdk.signature import Clock, SignatureVerifier

from crew.gate.slack_message import (
    ACCEPT_DRIFT_ACTION,
    APPROVE_ACKNOWLEDGED_ACTION,
    APPROVE_ACTION,
    RECONCILE_ACTION,
    REJECT_ACTION,
)
from schemas.approval import Decision

#: Slack refuses requests older than this; so do we (and replays are remembered this long).
MAX_AGE_S = 5 * 60
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")
#: Slack sends about a dozen fields with a command and one with a click.
MAX_FORM_FIELDS = 64
_COMMANDS = {
    "/approve": Decision.APPROVE,
    "/reject": Decision.REJECT,
    "/rollback": Decision.ROLLBACK,
    "/cancel": Decision.CANCEL,
}
_BUTTONS = {
    APPROVE_ACTION: Decision.APPROVE,
    APPROVE_ACKNOWLEDGED_ACTION: Decision.APPROVE,
    REJECT_ACTION: Decision.REJECT,
}


class StackAction(StrEnum):
    RECONCILE = "reconcile"
    ACCEPT_DRIFT = "accept drift"


_STACK_BUTTONS = {
    RECONCILE_ACTION: StackAction.RECONCILE,
    ACCEPT_DRIFT_ACTION: StackAction.ACCEPT_DRIFT,
}
#: A stack id as tools/stack.py builds it: `<slug>.<region>.<8 hex>`.
_STACK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}\.[a-z0-9-]{1,32}\.[0-9a-f]{8}$")
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
    acknowledge_stateful: bool = False
    """Clicked the approve button that acknowledges replaced or deleted stateful resources."""

    @property
    def actor(self) -> str:
        """What the audit log records: the name people know, and the id that is checked."""
        return f"{self.user_name} ({self.user_id})" if self.user_name else self.user_id


@dataclass(frozen=True)
class StackCommand:
    """A drift message's button: reconcile the stack, or accept its drift."""

    action: StackAction
    stack_id: str
    user_id: str
    user_name: str | None
    response_url: str | None
    fingerprint: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.user_name} ({self.user_id})" if self.user_name else self.user_id


@dataclass(frozen=True)
class Reply:
    text: str


@dataclass(frozen=True)
class Ignore:
    why: str


@dataclass(frozen=True)
class Malformed:
    """A signed request Slack would not send; `reason` names the field and what is wrong."""

    reason: str


Parsed = GateCommand | StackCommand | Reply | Ignore | Malformed


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
    if len(timestamp) > 20 or not timestamp.isascii() or not timestamp.strip().isdigit():
        return NotVerified("X-Slack-Request-Timestamp is not a Unix time")
    sent = int(timestamp)
    if abs(now - sent) > MAX_AGE_S:
        return NotVerified("stale request: its timestamp is more than 5 minutes off")
    # The verifier compares with hmac.compare_digest, which raises on non-ASCII text, and
    # decodes the body as UTF-8: both are checked here so that no input can make it raise.
    if not _SIGNATURE.fullmatch(signature):
        return NotVerified("bad signature: X-Slack-Signature is not v0=<64 hex digits>")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return NotVerified("bad signature: the body is not UTF-8, so Slack did not sign it")
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return NotVerified("bad signature")
    return Verified(signature=signature, timestamp=sent)


# -- the typed forms ---------------------------------------------------------------------------


def _storable(value: str) -> str:
    """Refuse what Postgres (NUL) or UTF-8 (lone surrogates) cannot hold."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not UTF-8 text (a lone surrogate)") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
#: Slack user ids are capital letters and digits (`U012AB3CD`, `W0123ABC`).
SlackId = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,64}$")]
ResponseUrl = Annotated[str, Field(pattern=r"^https?://\S{1,2040}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class CommandForm(_Strict):
    """The fields of a slash command the gate uses (Slack sends more; they are ignored)."""

    command: Text = Field(default="", max_length=64)
    text: Text = Field(default="", max_length=4000)
    user_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{0,64}$")] = ""
    user_name: Text = Field(default="", max_length=255)
    response_url: ResponseUrl | None = None


class SlackUser(_Strict):
    id: SlackId
    username: Text | None = Field(default=None, max_length=255)
    name: Text | None = Field(default=None, max_length=255)


class SlackAction(_Strict):
    action_id: Text = Field(max_length=255)
    value: Text | None = Field(default=None, max_length=2000)
    """A button's value; select menus and other elements have none."""


class InteractionEnvelope(_Strict):
    """What every interaction payload has: its type (block_actions, view_submission, ...)."""

    type: Text = Field(max_length=64)


class BlockActions(_Strict):
    """A click on a message's interactive element, as Slack documents `block_actions`."""

    type: Literal["block_actions"]
    user: SlackUser
    actions: list[SlackAction] = Field(max_length=25)
    response_url: ResponseUrl | None = None


def _explain(exc: ValidationError, where: str) -> str:
    """The first problem, by field path (never the offending value: it may be anything)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in (where, *first["loc"]))
    return f"{path}: {first['msg']}"


def _form(body: bytes) -> dict[str, str] | Malformed:
    """The first value of each field; any field that is not storable text refuses the form."""
    try:
        text = body.decode("utf-8")
        # surrogateescape: an encoded byte that is not UTF-8 (%FF) becomes a lone surrogate,
        # found below with the name of its field.
        fields = parse_qs(
            text,
            keep_blank_values=True,
            errors="surrogateescape",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        return Malformed("the body is not UTF-8 form data")
    except ValueError:
        return Malformed(f"more than {MAX_FORM_FIELDS} form fields")
    for key, values in fields.items():
        for value in (key, *values):
            try:
                _storable(value)
            except ValueError as exc:
                shown = key[:40].encode("utf-8", "replace").decode("utf-8")
                return Malformed(f"form field {shown!r} {exc}")
    return {key: values[0] for key, values in fields.items() if values}


# -- slash commands ------------------------------------------------------------------------------


def parse_command(body: bytes) -> Parsed:
    """A slash command (`application/x-www-form-urlencoded`, as Slack sends it)."""
    form = _form(body)
    if isinstance(form, Malformed):
        return form
    try:
        fields = CommandForm.model_validate(form)
    except ValidationError as exc:
        return Malformed(_explain(exc, "form"))
    command = fields.command.strip().lower()
    action = _COMMANDS.get(command)
    if action is None:
        return Reply(f"Unknown command `{command or '(none)'}`. {USAGE}")
    if not fields.user_id:
        return Reply("Slack sent no user id with this command; nothing was done.")
    words = fields.text.split(maxsplit=1)
    if not words:
        return Reply(f"Which run? {USAGE}")
    run_id = words[0].strip()
    if not _RUN_ID.fullmatch(run_id):
        return Reply(f"`{run_id[:100]}` is not a run id. {USAGE}")
    reason = words[1].strip()[:2000] if len(words) > 1 and words[1].strip() else None
    return GateCommand(
        action=action,
        run_id=run_id,
        user_id=fields.user_id,
        user_name=fields.user_name or None,
        response_url=fields.response_url,
        reason=reason,
    )


# -- buttons ---------------------------------------------------------------------------------


def _payload(body: bytes) -> Any | Malformed:
    form = _form(body)
    if isinstance(form, Malformed):
        return form
    raw = form.get("payload")
    if raw is None:
        return Malformed("no `payload` field: Slack sends an interaction as payload=<JSON>")
    try:
        # pydantic's parser (jiter) bounds nesting, so a deep document is an error, not a
        # RecursionError.
        return from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        return Malformed(f"payload is not JSON: {str(exc)[:120]}")


def parse_interaction(body: bytes) -> Parsed:
    """A button click: form field `payload` holding Slack's block_actions JSON."""
    payload = _payload(body)
    if isinstance(payload, Malformed):
        return payload
    try:
        envelope = InteractionEnvelope.model_validate(payload)
        if envelope.type != "block_actions":
            return Ignore(f"not a button click ({envelope.type})")
        click = BlockActions.model_validate(payload)
    except ValidationError as exc:
        return Malformed(_explain(exc, "payload"))
    name = click.user.username or click.user.name
    stack_buttons = [a for a in click.actions if a.action_id in _STACK_BUTTONS]
    if stack_buttons:
        pressed = stack_buttons[0]
        stack_id, _, fingerprint = (pressed.value or "").partition("|")
        if not _STACK_ID.fullmatch(stack_id):
            return Malformed("payload.actions: the drift message's button carries no stack id")
        return StackCommand(
            action=_STACK_BUTTONS[pressed.action_id],
            stack_id=stack_id,
            user_id=click.user.id,
            user_name=name or None,
            response_url=click.response_url,
            fingerprint=fingerprint or None,
        )
    ours = [a for a in click.actions if a.action_id in _BUTTONS]
    if not ours:
        return Ignore("not one of the gate's buttons")
    clicked = ours[0]
    run_id, _, digest = (clicked.value or "").partition("|")
    if not _RUN_ID.fullmatch(run_id):
        return Malformed("payload.actions: the gate's button carries no run id")
    action = _BUTTONS[clicked.action_id]
    return GateCommand(
        action=action,
        run_id=run_id,
        user_id=click.user.id,
        user_name=name or None,
        response_url=click.response_url,
        reason="rejected with the Slack button" if action is Decision.REJECT else None,
        plan_digest=digest or None,
        acknowledge_stateful=clicked.action_id == APPROVE_ACKNOWLEDGED_ACTION,
    )
