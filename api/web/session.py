"""Console sessions: a signed cookie naming who logged in, and the CSRF token of the session.

The browser presents an API token once, at login (the same tokens and roles as REST,
`crew token new`); the cookie then names the principal and a fingerprint of the token entry,
never the token. Every request re-reads the role from the configured tokens, so removing or
re-issuing a token (or changing its role) takes effect on the next click, not at expiry.

The cookie is `<payload>.<signature>`: the payload is base64url JSON and the signature an
HMAC-SHA256 of it under CREW_SESSION_SECRET (or a random per-process key: sessions then end
with the process, and several API processes behind one address must share a configured one).
It is HttpOnly, SameSite=Strict, and Secure unless the console is reached over plain HTTP on
a loopback address.

CSRF: a synchronizer token, random per session and rotated at login and logout, travels in
the signed cookie and in every form (hidden field `csrf_token`) or, for script requests, in
the `X-CSRF-Token` header. A POST whose token is missing or differs is refused (403). Visitors
get a session, anonymous until login, on their first page, so the login form is protected too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from crew.access import ApiToken, Principal

COOKIE_NAME = "crew_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_VERSION = 1


@dataclass(frozen=True)
class Session:
    """What the cookie carries. `principal` is None for a visitor who has not logged in."""

    csrf: str
    issued_at: float
    principal: str | None = None
    token_id: str | None = None
    """Fingerprint of the token entry used at login (see `SessionSigner.token_id`)."""


class SessionSigner:
    """Signs and checks session cookies with one key."""

    def __init__(self, key: bytes, ttl_s: float) -> None:
        if len(key) < 32:
            raise ValueError("a session key needs at least 32 bytes")
        self._key = key
        self.ttl_s = ttl_s

    @classmethod
    def from_secret(cls, secret: str | None, ttl_s: float) -> SessionSigner:
        """The configured secret, or a fresh random key (valid for this process only)."""
        key = secret.encode() if secret else secrets.token_bytes(32)
        return cls(key, ttl_s)

    def _mac(self, data: bytes) -> str:
        digest = hmac.new(self._key, data, hashlib.sha256).digest()
        return _b64(digest)

    def token_id(self, token: ApiToken) -> str:
        """Names one token entry without revealing anything about the token: a keyed hash of
        its configured SHA-256, so a re-issued token for the same principal ends old sessions."""
        return self._mac(f"token:{token.principal}:{token.sha256}".encode())[:22]

    def new(
        self, now: float, principal: Principal | None = None, token_id: str | None = None
    ) -> Session:
        """A session with a fresh CSRF token (at every login and logout: no fixation)."""
        name = principal.name if principal else None
        return Session(
            csrf=secrets.token_urlsafe(32), issued_at=now, principal=name, token_id=token_id
        )

    def encode(self, session: Session) -> str:
        data = {
            "v": _VERSION,
            "c": session.csrf,
            "t": session.issued_at,
            "p": session.principal,
            "k": session.token_id,
        }
        payload = _b64(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload.encode())}"

    def decode(self, cookie: str | None, now: float) -> Session | None:
        """The session in `cookie`, or None when it is absent, forged, malformed or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._mac(payload.encode())):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(
                csrf=str(data["c"]),
                issued_at=float(data["t"]),
                principal=data["p"] if isinstance(data["p"], str) else None,
                token_id=data["k"] if isinstance(data["k"], str) else None,
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if data.get("v") != _VERSION or not (0 <= now - session.issued_at < self.ttl_s):
            return None
        return session


def principal_of(
    session: Session | None, tokens: Sequence[ApiToken], signer: SessionSigner
) -> Principal | None:
    """Who a session is, by the tokens configured now: None when it never logged in or its
    token entry is gone or was re-issued. The role is the entry's current one."""
    if session is None or session.principal is None or session.token_id is None:
        return None
    for token in tokens:
        if token.principal == session.principal and hmac.compare_digest(
            signer.token_id(token), session.token_id
        ):
            return Principal(name=token.principal, role=token.role)
    return None


def csrf_matches(session: Session | None, presented: str | None) -> bool:
    """True only when the session has a CSRF token and `presented` is exactly it."""
    if session is None or not presented:
        return False
    return hmac.compare_digest(session.csrf.encode(), presented.encode())


def secure_cookie(scheme: str, hostname: str | None) -> bool:
    """Secure (HTTPS only) unless the console is reached over plain HTTP on loopback, where a
    Secure cookie would never come back and there is no network to protect it from."""
    return scheme == "https" or not is_loopback_host(hostname)


def is_loopback_host(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def safe_next(target: str | None) -> str:
    """Where to go after login: a path of this site only (no `//host` or `\\` tricks)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(c in target for c in "\\\r\n"):
        return "/"
    return target


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
