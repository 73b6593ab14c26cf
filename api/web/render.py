"""Turning console handlers' results into HTML responses, and errors into readable pages.

Every console response goes through `page`, `redirect` or `error_page`: they set the session
cookie when it is new and the security headers (a Content-Security-Policy that allows only
this origin, so the browser itself refuses any CDN, font service or injected script).
`ConsoleRoute` catches what handlers raise and answers with a page instead of the API's JSON
bodies: a missing run is a 404 page, a role too low a 403 page, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from api.web.deps import CsrfRefused, LoginRequired, Visitor
from api.web.goal_form import field_id
from api.web.session import COOKIE_NAME, SessionSigner, safe_next, secure_cookie
from api.web.views import FILTERS
from schemas.errors import (
    AdvisoryNotFoundError,
    CrewError,
    DatabaseError,
    ForbiddenError,
    RunConflictError,
    RunNotFoundError,
    StackConflictError,
    StackNotFoundError,
    StalePlanError,
)
from schemas.inputs import InputError, problems_from_errors

logger = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
TEMPLATES.env.filters.update(FILTERS, field_id=field_id)
TEMPLATES.env.trim_blocks = True
TEMPLATES.env.lstrip_blocks = True

#: Only this origin: scripts and styles from /static, no framing, forms post back here.
#: Inline styles are allowed because Mermaid writes a <style> into each diagram's SVG.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _finish(response: Response, request: Request, visitor: Visitor | None) -> Response:
    response.headers.update(_HEADERS)
    if visitor is not None and visitor.set_cookie:
        keys: SessionSigner = request.app.state.console_sessions
        response.set_cookie(
            COOKIE_NAME,
            keys.encode(visitor.session),
            max_age=int(keys.ttl_s),
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure_cookie(request.url.scheme, request.url.hostname),
        )
    return response


def page(
    request: Request,
    visitor: Visitor | None,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """`template` rendered with the visitor (navigation, CSRF token) and `context`."""
    values = {"visitor": visitor, **(context or {})}
    response = TEMPLATES.TemplateResponse(
        request, template, values, status_code=status, headers=dict(headers or {})
    )
    return _finish(response, request, visitor)


def redirect(request: Request, visitor: Visitor | None, target: str) -> Response:
    """303 See Other: after a POST the browser GETs `target` (no re-submit on reload)."""
    return _finish(RedirectResponse(target, status_code=303), request, visitor)


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    """A readable error page (no visitor: the navigation shows only what needs no role)."""
    return page(request, None, "error.html", {"title": title, "message": message}, status=status)


def _login_redirect(request: Request, exc: LoginRequired) -> Response:
    if exc.live:  # a background refresh: the script reloads the page, which then redirects
        return _finish(HTMLResponse("session ended", status_code=401), request, None)
    if request.method == "GET" and request.headers.get("sec-fetch-site") == "cross-site":
        # A link from elsewhere (a Slack message): the browser withheld the SameSite=Strict
        # cookie. Reopening the page from this origin sends it, so a logged-in visitor lands
        # on the page instead of the login form.
        return page(request, None, "reopen.html", {"target": safe_next(exc.next_path)})
    target = "/login?" + urlencode({"next": exc.next_path})
    return _finish(RedirectResponse(target, status_code=303), request, None)


async def _answer(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return _login_redirect(request, exc)
    if isinstance(exc, CsrfRefused):
        return error_page(
            request,
            403,
            "Form refused",
            "This request did not carry the form token of your session, so it may not come "
            "from a page of this console (cross-site request forgery protection). Go back, "
            "reload the page and try again.",
        )
    if isinstance(exc, RunNotFoundError):
        return error_page(request, 404, "No such run", str(exc))
    if isinstance(exc, StackNotFoundError):
        return error_page(request, 404, "No such stack", str(exc))
    if isinstance(exc, AdvisoryNotFoundError):
        return error_page(request, 404, "No such advisory", str(exc))
    if isinstance(exc, ForbiddenError):
        return error_page(request, 403, "Not allowed", str(exc))
    if isinstance(exc, RequestValidationError | InputError):
        problems = (
            exc.problems if isinstance(exc, InputError) else problems_from_errors(exc.errors())
        )
        text = "; ".join(str(p) for p in problems) or "the request is malformed"
        return error_page(request, 422, "Bad request", text)
    if isinstance(exc, RunConflictError | StalePlanError | StackConflictError):
        return error_page(request, 409, "Not possible now", str(exc))
    if isinstance(exc, DatabaseError):
        logger.error("console: database error: %s", exc)
        return error_page(request, 503, "Database unavailable", str(exc))
    logger.error("console: %s: %s", type(exc).__name__, exc)
    return error_page(request, 503, "Service error", str(exc))


class ConsoleRoute(APIRoute):
    """Routes whose errors are pages. Only the exceptions the console expects are turned
    into pages; anything else propagates to the server's 500 (logged, no traceback shown)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (LoginRequired, CsrfRefused, RequestValidationError, CrewError) as exc:
                return await _answer(request, exc)

        return guarded
