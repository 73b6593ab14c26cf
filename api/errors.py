"""Errors as HTTP answers: client mistakes are 4xx with a fix, never a traceback or a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from crew.errors import (
    CrewError,
    DatabaseError,
    ForbiddenError,
    RunConflictError,
    RunNotFoundError,
    StackConflictError,
    StackNotFoundError,
    StalePlanError,
    UnauthenticatedError,
)
from crew.inputs import InputError, problems_from_errors

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str
    message: str
    errors: list[dict[str, str]] = []


def _body(
    error: str, message: str, errors: list[dict[str, str]] | None = None
) -> dict[str, object]:
    return ErrorBody(error=error, message=message, errors=errors or []).model_dump()


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [p.as_dict() for p in problems_from_errors(exc.errors())]
        return JSONResponse(
            status_code=422,
            content=_body("invalid_request", f"{len(details)} problem(s) in the request", details),
        )

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        details = [p.as_dict() for p in exc.problems]
        return JSONResponse(
            status_code=422,
            content=_body("invalid_request", f"{len(details)} problem(s) in the request", details),
        )

    @app.exception_handler(RunNotFoundError)
    async def _not_found(_: Request, exc: RunNotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content=_body("run_not_found", str(exc)))

    @app.exception_handler(StackNotFoundError)
    async def _stack_not_found(_: Request, exc: StackNotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content=_body("stack_not_found", str(exc)))

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

    @app.exception_handler(DatabaseError)
    async def _database(_: Request, exc: DatabaseError) -> JSONResponse:
        logger.error("database error: %s", exc)
        return JSONResponse(status_code=503, content=_body("database_unavailable", str(exc)))

    @app.exception_handler(CrewError)
    async def _crew(_: Request, exc: CrewError) -> JSONResponse:
        logger.error("%s: %s", type(exc).__name__, exc)
        return JSONResponse(status_code=503, content=_body("service_error", str(exc)))
