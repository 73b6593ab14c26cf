"""Who may do what: API tokens with a principal and a role, and the approver list.

Tokens are configured as `CREW_API_TOKENS` entries `name:role:sha256:<hex>` (only the hash is
kept anywhere: `crew token new` prints a fresh token and its entry) or `name:role:<token>`
(hashed when the settings load; the plain form is for development: settings refuse it on any
bind address but loopback, where the configuration itself would be a usable credential). A
request presents `Authorization: Bearer <token>`; its SHA-256 is compared with every
configured hash in constant time. Tokens are 256-bit random strings, so a fast hash is the
right one: there is nothing to brute-force that a slow hash would protect.

Roles are ordered: a viewer reads, a submitter also submits goals, an approver also decides at
the gate (approve, reject, roll back). Deciding additionally needs the approver list
(`CREW_APPROVERS`) to allow the identity, see `refusal_reason`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.approval import Channel

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Plain tokens shorter than this are refused: a guessable bearer token is no protection.
MIN_TOKEN_LENGTH = 16
#: The principal of every request when no tokens are configured (loopback only).
LOCAL_PRINCIPAL = "local"


class Role(StrEnum):
    VIEWER = "viewer"
    SUBMITTER = "submitter"
    APPROVER = "approver"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.SUBMITTER: 1, Role.APPROVER: 2}


class ApiToken(BaseModel):
    """One configured token: who presents it, what they may do, and the token's SHA-256."""

    model_config = ConfigDict(frozen=True)

    principal: str
    role: Role
    sha256: str
    plain_at_rest: bool = False
    """True when the configuration held the token itself (`name:role:<token>`), not its hash:
    allowed on loopback only (crew/settings.py)."""

    def __repr__(self) -> str:
        return f"ApiToken(principal={self.principal!r}, role={self.role.value!r})"

    __str__ = __repr__


class Principal(BaseModel):
    """The authenticated caller of a REST request."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh bearer token: 256 random bits, URL-safe."""
    return "crew_" + secrets.token_urlsafe(32)


def token_entry(principal: str, role: Role, token: str) -> str:
    """The CREW_API_TOKENS entry for `token`, holding only its hash."""
    return f"{principal}:{role.value}:sha256:{hash_token(token)}"


def parse_token_entry(entry: str) -> ApiToken:
    """`name:role:sha256:<hex>` or `name:role:<token>`; a ValueError says what to fix."""
    name, sep1, rest = entry.strip().partition(":")
    role_text, sep2, secret = rest.partition(":")
    if not (sep1 and sep2 and secret):
        raise ValueError(
            "each CREW_API_TOKENS entry is name:role:sha256:<hex> or name:role:<token> "
            "(run `crew token new NAME --role ROLE` to make one)"
        )
    if not _NAME.match(name):
        raise ValueError(f"token name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    try:
        role = Role(role_text.strip().lower())
    except ValueError:
        raise ValueError(
            f"token {name!r}: unknown role {role_text!r}; use viewer, submitter or approver"
        ) from None
    if secret.startswith("sha256:"):
        digest = secret.removeprefix("sha256:").lower()
        if not _HEX64.match(digest):
            raise ValueError(f"token {name!r}: sha256: must be followed by 64 hex digits")
        return ApiToken(principal=name, role=role, sha256=digest)
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"token {name!r} is shorter than {MIN_TOKEN_LENGTH} characters; use "
            "`crew token new` for a strong one"
        )
    return ApiToken(principal=name, role=role, sha256=hash_token(secret), plain_at_rest=True)


def check_unique(tokens: Sequence[ApiToken]) -> None:
    names = [t.principal for t in tokens]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"CREW_API_TOKENS names {', '.join(twice)} more than once")
    if len({t.sha256 for t in tokens}) != len(tokens):
        raise ValueError("CREW_API_TOKENS holds the same token under two names")


def authenticate(tokens: Sequence[ApiToken], presented: str) -> Principal | None:
    """The principal whose token hashes to `presented`'s hash, if any (constant time per
    configured token, and every token is compared so timing says nothing about which)."""
    digest = hash_token(presented).encode()
    found: Principal | None = None
    for token in tokens:
        if hmac.compare_digest(digest, token.sha256.encode()):
            found = Principal(name=token.principal, role=token.role)
    return found


#: A Slack user id as Slack shows it (`U012AB3CD`; `W...` in Enterprise Grid).
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]+$")
#: The channels an approver entry may name (the Conductor's own `system` decides alone).
_ENTRY_CHANNELS = (Channel.SLACK, Channel.REST, Channel.CLI)


def check_approver_entry(entry: str) -> str:
    """The entry, or a ValueError saying how to write it unambiguously.

    A bare entry (`alice`) names a REST principal or a CLI `--actor`, never a Slack user:
    Slack users are listed as `slack:U012AB3CD` only. A bare entry shaped like a Slack user
    id is refused, since whoever wrote it most likely meant the Slack user, and a REST token
    of that name would otherwise be an approver too."""
    channel, sep, name = entry.partition(":")
    if not sep:
        if _SLACK_USER.fullmatch(entry):
            raise ValueError(
                f"entry {entry!r} looks like a Slack user id, but a bare entry "
                f"names a REST principal or a CLI --actor: write slack:{entry} for the Slack "
                f"user (or rest:{entry} / cli:{entry} if a token or actor is named that)"
            )
        return entry
    known = {c.value for c in _ENTRY_CHANNELS}
    if channel not in known:
        raise ValueError(
            f"entry {entry!r}: unknown channel {channel!r}; write a bare name "
            "(REST principal or CLI actor), slack:<Slack user id>, rest:<name> or cli:<name>"
        )
    if channel == Channel.SLACK.value and not _SLACK_USER.fullmatch(name):
        raise ValueError(
            f"entry {entry!r}: {name!r} is not a Slack user id (U or W, then "
            "capital letters and digits, e.g. slack:U012AB3CD; Slack shows it under the "
            "user's profile, 'Copy member ID')"
        )
    if channel == Channel.REST.value and not _NAME.match(name):
        raise ValueError(
            f"entry {entry!r}: {name!r} cannot be a token name (1-64 letters, "
            "digits, '.', '_', '@' or '-')"
        )
    if not name.strip():
        raise ValueError(f"entry {entry!r} names nobody after {channel}:")
    return entry


def _listed(approvers: Sequence[str], channel: Channel, actor_id: str) -> bool:
    if f"{channel.value}:{actor_id}" in approvers:
        return True
    # A bare entry never names a Slack user (see check_approver_entry).
    return channel is not Channel.SLACK and actor_id in approvers


def refusal_reason(
    approvers: Sequence[str], channel: Channel, actor_id: str, role: Role | None = None
) -> str | None:
    """Why `actor_id` may not decide at the gate over `channel`, or None when it may.

    - REST: the token needs the approver role, and when CREW_APPROVERS is set the principal
      must be listed in it (`alice` or `rest:alice`).
    - Slack: the Slack user id must be listed as `slack:U012AB3CD` (nobody decides from Slack
      without the list; a bare entry never matches a Slack user).
    - CLI: it runs with the database's credentials, so it is trusted; when CREW_APPROVERS is
      set its `--actor` must still be listed (`ops` or `cli:ops`), so the audit log only names
      approvers.
    """
    if channel is Channel.REST and (role is None or not role.allows(Role.APPROVER)):
        shown = role.value if role else "no role"
        return f"'{actor_id}' has the {shown} role; deciding at the gate needs approver"
    if channel is Channel.SLACK and not approvers:
        return "nobody may decide from Slack until CREW_APPROVERS lists them as slack:<user id>"
    if approvers and not _listed(approvers, channel, actor_id):
        return f"'{actor_id}' is not an approver (CREW_APPROVERS)"
    return None
