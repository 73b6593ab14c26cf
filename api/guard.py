"""The HTTP edge every request crosses before any route: a bounded body, storable text in the
path and query, and a bounded wait for the answer.

One ASGI middleware rather than a check per route, so a route added later (or by a plugin)
inherits all three:

- **Body size.** At most `CREW_MAX_BODY_BYTES`: a larger `Content-Length` is refused at once,
  and a chunked body (no length declared) is counted as it arrives and refused as soon as it
  passes the limit. Either way the answer is 413 before a byte is parsed. The body read here
  is handed to the route unchanged (Slack's signature covers the exact bytes).
- **Text Postgres can store.** A NUL character (U+0000) in the path or in a query parameter
  (`/v1/runs/a%00b`, `?actor=a%00b`) is a 422 naming where it is, before a route could pass
  it to a query or a log row. Bodies are the contracts' business (`schemas.base.Contract`).
- **Time.** A request whose answer has not started within `CREW_REQUEST_TIMEOUT_S` is
  cancelled and answered 503, so a stuck dependency cannot hold a client (or a fuzzer)
  forever. Once the answer has started (a long audit export streaming), it is not cut.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ErrorBody, error_content
from schemas.base import STORABLE_TEXT_FIX, text_problem

logger = logging.getLogger(__name__)


def _parameter_problems(scope: Scope) -> list[dict[str, str]]:
    """One problem per path or query text that cannot be stored (field: `path`, `query.x`)."""
    problems = []
    path_problem = text_problem(scope.get("path", ""))
    if path_problem is not None:
        problems.append({"field": "path", "problem": path_problem, "fix": STORABLE_TEXT_FIX})
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        name_problem = text_problem(name)
        if name_problem is not None:
            problems.append(
                {
                    "field": "query",
                    "problem": f"a parameter name {name_problem}",
                    "fix": STORABLE_TEXT_FIX,
                }
            )
            continue
        value_problem = text_problem(value)
        if value_problem is not None:
            problems.append(
                {"field": f"query.{name}", "problem": value_problem, "fix": STORABLE_TEXT_FIX}
            )
    return problems


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


class BodyTooLarge(Exception):
    """The body passed the limit (declared, or counted as it arrived)."""


class ClientGone(Exception):
    """The client disconnected before it finished sending the body."""


class RequestGuard:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it must see the body chunk by chunk and
    must not buffer responses, which stream)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = _parameter_problems(scope)
        if problems:
            message = f"{len(problems)} problem(s) in the request"
            await _refuse(422, "invalid_request", message, problems)(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            await self._too_large()(scope, receive, send)
            return
        except ClientGone:
            return
        await self._bounded(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> JSONResponse:
        return _refuse(
            413,
            "body_too_large",
            f"the request body is larger than {self.max_body_bytes} bytes, the limit this "
            "server reads (CREW_MAX_BODY_BYTES); send a smaller body",
        )

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        bound = asyncio.timeout(self.timeout_s)

        async def send_marking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                bound.reschedule(None)  # the answer is on its way: a stream is not cut
            await send(message)

        try:
            async with bound:
                await self.app(scope, receive, send_marking)
        except TimeoutError:
            if not bound.expired() or started:
                raise
            logger.warning(
                "%s %s: no answer within %gs; cancelled",
                scope.get("method"),
                scope.get("path"),
                self.timeout_s,
            )
            refusal = _refuse(
                503,
                "request_timeout",
                f"no answer within {self.timeout_s:g} s (CREW_REQUEST_TIMEOUT_S); the request "
                "was cancelled, try again later",
            )
            await refusal(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the body read already, then the client's own messages (a
    streaming answer listens on them for the disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _refuse(
    status: int, error: str, message: str, errors: list[dict[str, str]] | None = None
) -> JSONResponse:
    content = error_content(ErrorBody(error=error, message=message, errors=errors or []))
    return JSONResponse(status_code=status, content=content)
