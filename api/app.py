"""The FastAPI application: factory plus lifespan that opens services and runs the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from api.deps import current_principal
from api.errors import ErrorBody, document_errors, install_error_handlers
from api.guard import RequestGuard
from api.routes import audit, goals, health, metrics, runs, shield, slack, stacks
from api.web import install_console
from crew import __version__
from crew.conductor import Conductor
from crew.container import Services, open_services
from crew.settings import Settings
from crew.worker import Worker

logger = logging.getLogger(__name__)

#: What a route behind a bearer token can answer besides its own statuses.
_AUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No or unknown bearer token."}
}


def _guard(app: FastAPI, settings: Settings) -> None:
    """The edge every request crosses first (api/guard.py), and the errors it documents."""
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        timeout_s=settings.request_timeout_s,
    )
    install_error_handlers(app)


def create_app(settings: Settings, *, run_worker: bool = True) -> FastAPI:
    """The API; with `run_worker` the same process also drives runs (the embedded default)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, role="serve" if run_worker else "api") as services:
            app.state.services = services
            stop = asyncio.Event()
            if run_worker:
                worker = Worker(services, role="serve")
                app.state.worker = worker
                worker_task = asyncio.create_task(worker.run_forever(stop))
            else:  # API only: still beats, relays and watches the workers (crew/conductor.py)
                conductor = Conductor(services, role="api")
                worker_task = asyncio.create_task(conductor.run_forever(stop))
            logger.info("infra-crew ready (%s)", services.database)
            try:
                yield
            finally:
                stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task

    app = FastAPI(
        title="infra-crew",
        version=__version__,
        summary="Goal in, reviewed Terraform out: design, build, validate, approve, apply.",
        lifespan=lifespan,
    )
    _guard(app, settings)
    app.state.slack = slack.SlackRuntime()
    # /v1 needs a bearer token (when tokens are configured); /slack verifies Slack's signature.
    for router in (goals.router, runs.router, audit.router, stacks.router, shield.router):
        app.include_router(
            router, dependencies=[Depends(current_principal)], responses=_AUTHENTICATED
        )
    app.include_router(slack.router)
    app.include_router(health.router)
    app.include_router(metrics.router, responses=_AUTHENTICATED)
    # The web console at / (session cookie + CSRF; the same tokens, roles and services).
    install_console(app, settings)
    document_errors(app)
    return app


def create_metrics_app(services: Services) -> FastAPI:
    """Only /metrics, for `crew worker` (CREW_METRICS_PORT): the same route and token rules as
    the API's, on services the worker already opened."""
    app = FastAPI(title="infra-crew worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    _guard(app, services.settings)
    app.include_router(metrics.router)
    return app
