"""Errors as HTTP answers: client mistakes are 4xx with a fix, never a traceback or a 500.

Every error answer of the API (the console aside: it answers pages) is one `ErrorBody`,
whoever raises it: a route, FastAPI's own parsing and routing (unknown path, wrong method,
a body that is not JSON, not UTF-8 or nested too deeply), or the edge (api/guard.py: body
too large, NUL in a parameter, no answer in time). `document_errors` writes the same rules
into the OpenAPI document, so each operation lists every status it can answer.
"""

from __future__ import annotations

import email.message
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.errors import (
    AcknowledgementRequiredError,
    AdvisoryNotFoundError,
    CrewError,
    DatabaseError,
    ForbiddenError,
    RunConflictError,
    RunNotFoundError,
    ShieldBusyError,
    StackConflictError,
    StackNotFoundError,
    StalePlanError,
    UnauthenticatedError,
)
from schemas.inputs import InputError, Problem, problems_from_errors

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The one error body: a stable code, a sentence for people, one entry per problem."""

    error: str
    message: str
    errors: list[dict[str, str]] = []


def _printable(text: str) -> str:
    """`text` as UTF-8 can carry it: an echoed lone surrogate must not break the answer."""
    return text.encode("utf-8", "replace").decode("utf-8")


def error_content(body: ErrorBody) -> dict[str, object]:
    """An ErrorBody as JSON-ready data, with any text UTF-8 cannot encode replaced."""
    return {
        "error": body.error,
        "message": _printable(body.message),
        "errors": [{_printable(k): _printable(v) for k, v in e.items()} for e in body.errors],
    }


def _body(
    error: str, message: str, errors: list[dict[str, str]] | None = None
) -> dict[str, object]:
    return error_content(ErrorBody(error=error, message=message, errors=errors or []))


def _invalid(problems: list[Problem]) -> JSONResponse:
    details = [p.as_dict() for p in problems]
    return JSONResponse(
        status_code=422,
        content=_body("invalid_request", f"{len(details)} problem(s) in the request", details),
    )


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _wrong_media_type(request: Request, exc: RequestValidationError) -> str | None:
    """How a body FastAPI did not read as JSON, for a route that takes JSON, was sent (it
    then validates the raw bytes and says only that field "" is not an object)."""
    content_type = request.headers.get("content-type")
    if content_type and _is_json(content_type):
        return None
    if not isinstance(exc.body, bytes | bytearray) or not exc.body:
        return None
    if not any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()):
        return None
    return f"as {content_type}" if content_type else "without a Content-Type"


def _unreadable_body(exc: StarletteHTTPException) -> Problem | None:
    """What FastAPI's "There was an error parsing the body" (a 400 chained to the cause) was."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, RecursionError):
        return Problem(
            "", "the JSON is nested too deeply to read", "send the contract's shape: it is flat"
        )
    if isinstance(cause, UnicodeDecodeError):
        return Problem("", "the body is not valid UTF-8", "encode the JSON as UTF-8")
    return Problem("", f"the body could not be read as JSON: {cause}", "send valid JSON")


#: Codes of the HTTP errors Starlette and FastAPI raise themselves (routing, methods).
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = _wrong_media_type(request, exc)
        if content_type is not None:
            return JSONResponse(
                status_code=415,
                content=_body(
                    "unsupported_media_type",
                    f"this operation reads a JSON body, and this one was sent "
                    f"{content_type}: send it with Content-Type: application/json",
                ),
            )
        return _invalid(problems_from_errors(exc.errors()))

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return _invalid(exc.problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return _invalid([unreadable])
        code = exc.status_code
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        error = _HTTP_CODES.get(code, phrase.lower().replace(" ", "_").replace("-", "_"))
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
        if code == 404 and message == "Not Found":
            message = "no such path: the API is described at /docs and /openapi.json"
        return JSONResponse(
            status_code=code, content=_body(error, message), headers=dict(exc.headers or {})
        )

    @app.exception_handler(RunNotFoundError)
    async def _not_found(_: Request, exc: RunNotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content=_body("run_not_found", str(exc)))

    @app.exception_handler(StackNotFoundError)
    async def _stack_not_found(_: Request, exc: StackNotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content=_body("stack_not_found", str(exc)))

    @app.exception_handler(AdvisoryNotFoundError)
    async def _advisory_not_found(_: Request, exc: AdvisoryNotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content=_body("advisory_not_found", str(exc)))

    @app.exception_handler(ShieldBusyError)
    async def _shield_busy(_: Request, exc: ShieldBusyError) -> JSONResponse:
        return JSONResponse(status_code=409, content=_body("conflict", str(exc)))

    @app.exception_handler(StackConflictError)
    async def _stack_conflict(_: Request, exc: StackConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content=_body("conflict", str(exc)))

    @app.exception_handler(RunConflictError)
    async def _conflict(_: Request, exc: RunConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content=_body("conflict", str(exc)))

    @app.exception_handler(UnauthenticatedError)
    async def _unauthenticated(_: Request, exc: UnauthenticatedError) -> JSONResponse:
        return JSONResponse(
            status_code=401,
            content=_body("unauthenticated", str(exc)),
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(ForbiddenError)
    async def _forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return JSONResponse(status_code=403, content=_body("forbidden", str(exc)))

    @app.exception_handler(StalePlanError)
    async def _stale(_: Request, exc: StalePlanError) -> JSONResponse:
        return JSONResponse(status_code=409, content=_body("stale_plan", str(exc)))

    @app.exception_handler(AcknowledgementRequiredError)
    async def _unacknowledged(_: Request, exc: AcknowledgementRequiredError) -> JSONResponse:
        return JSONResponse(status_code=409, content=_body("acknowledgement_required", str(exc)))

    @app.exception_handler(DatabaseError)
    async def _database(_: Request, exc: DatabaseError) -> JSONResponse:
        logger.error("database error: %s", exc)
        return JSONResponse(status_code=503, content=_body("database_unavailable", str(exc)))

    @app.exception_handler(CrewError)
    async def _crew(_: Request, exc: CrewError) -> JSONResponse:
        logger.error("%s: %s", type(exc).__name__, exc)
        return JSONResponse(status_code=503, content=_body("service_error", str(exc)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a client's mistake: the server logs the traceback, the client gets none.
        logger.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse(
            status_code=500,
            content=_body("internal_error", "the service failed on this request; see its log"),
        )


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


#: What every operation can answer whatever its route does (api/guard.py and the handlers).
_EVERY_OPERATION = {
    "422": "The request does not match the operation (a parameter or the body, or text that "
    "cannot be stored such as a NUL character): `errors` names each problem and its fix.",
    "503": "The database or a service is unavailable, or no answer started within "
    "CREW_REQUEST_TIMEOUT_S.",
}
#: ... and what every operation that reads a body can answer.
_BODY_OPERATION = {
    "413": "The body is larger than CREW_MAX_BODY_BYTES (refused before it is parsed).",
    "415": "The body was not sent as JSON (Content-Type: application/json).",
}


def document_errors(app: FastAPI) -> None:
    """Make `app`'s OpenAPI document list, for each operation, every error status it can
    answer, each with the ErrorBody schema (FastAPI's own 422 schema is not what is sent)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_errors(build())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _add_errors(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            common = dict(_EVERY_OPERATION)
            if "requestBody" in operation:
                common.update(_BODY_OPERATION)
            for code, description in common.items():
                known = responses.get(code)
                if known is None or "HTTPValidationError" in str(known.get("content")):
                    responses[code] = _error_response(
                        description if known is None or code == "422" else known["description"]
                    )
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in str(schema.get("paths")):
            schemas.pop(unused, None)
