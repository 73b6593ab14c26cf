"""Who is looking at the console, and the CSRF check every POST passes first.

Identity follows the REST API exactly (api/deps.py): with CREW_API_TOKENS set, the visitor
is the principal of the token presented at login, with that token's role; without tokens
(which settings allow on a loopback bind only) everyone is `local` with the approver role and
no login is asked. Either way the visitor has a session cookie, because it carries the CSRF
token that every form must send back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from api.deps import ServicesDep
from api.web.session import (
    COOKIE_NAME,
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    SessionSigner,
    csrf_matches,
    principal_of,
)
from crew.access import LOCAL_PRINCIPAL, Principal, Role, refusal_reason
from schemas.approval import Channel

#: Set by the console's script on its background requests (live refresh): those get a 401
#: instead of a redirect to the login page when the session has ended.
LIVE_HEADER = "x-console-live"


class LoginRequired(Exception):
    """The page needs a logged-in visitor; the console answers with the login page."""

    def __init__(self, next_path: str, *, live: bool) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.live = live


class CsrfRefused(Exception):
    """A POST without the session's CSRF token: not sent by a page of this console."""


@dataclass(frozen=True)
class Visitor:
    """The person behind a request, as the console sees them."""

    session: Session
    principal: Principal | None
    """None: tokens are configured and this visitor has not logged in (or the login ended)."""
    tokens_configured: bool
    approvers: tuple[str, ...]
    set_cookie: bool
    """The session is new (or replaced): the response must carry its cookie."""

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def may_submit(self) -> bool:
        return self.principal is not None and self.principal.role.allows(Role.SUBMITTER)

    @property
    def may_decide(self) -> bool:
        """Whether the gate would accept this visitor's decision: the same rule REST applies
        (approver role, and listed in CREW_APPROVERS when it is set). Viewers and submitters
        see no buttons; a crafted POST is still refused, and logged, by the gate."""
        if self.principal is None:
            return False
        reason = refusal_reason(
            self.approvers, Channel.REST, self.principal.name, self.principal.role
        )
        return reason is None

    def with_session(self, session: Session, principal: Principal | None) -> Visitor:
        return Visitor(
            session=session,
            principal=principal,
            tokens_configured=self.tokens_configured,
            approvers=self.approvers,
            set_cookie=True,
        )


def signer(request: Request) -> SessionSigner:
    sessions: SessionSigner = request.app.state.console_sessions
    return sessions


def current_visitor(request: Request, services: ServicesDep) -> Visitor:
    """The visitor of this request; a new anonymous session when the cookie is missing,
    forged, expired, or names a token that is no longer configured."""
    keys = signer(request)
    now = services.context.clock().timestamp()
    settings = services.settings
    session = keys.decode(request.cookies.get(COOKIE_NAME), now)
    fresh = session is None
    if session is None:
        session = keys.new(now)
    principal: Principal | None
    if not settings.api_tokens:
        principal = Principal(name=LOCAL_PRINCIPAL, role=Role.APPROVER)
    else:
        principal = principal_of(session, settings.api_tokens, keys)
        if principal is None and session.principal is not None:
            session, fresh = keys.new(now), True  # the login ended: start over, anonymous
    return Visitor(
        session=session,
        principal=principal,
        tokens_configured=bool(settings.api_tokens),
        approvers=tuple(settings.approvers),
        set_cookie=fresh,
    )


VisitorDep = Annotated[Visitor, Depends(current_visitor)]


def _signed_in(request: Request, visitor: VisitorDep) -> Visitor:
    if visitor.principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target, live=LIVE_HEADER in request.headers)
    return visitor


SignedIn = Annotated[Visitor, Depends(_signed_in)]
"""A visitor with a principal (any role: viewers read everything the console shows)."""


async def _checked_form(request: Request, visitor: VisitorDep) -> FormData:
    """The POSTed form, once its CSRF token matched the session's (403 otherwise)."""
    form = await request.form()
    presented = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not isinstance(presented, str) or not csrf_matches(visitor.session, presented):
        raise CsrfRefused
    return form


CheckedForm = Annotated[FormData, Depends(_checked_form)]
"""Declare it on every POST handler: the CSRF check runs before anything else reads input."""
