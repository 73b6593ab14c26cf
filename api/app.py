"""The FastAPI application: factory plus lifespan that opens services and runs the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.deps import current_principal
from api.errors import install_error_handlers
from api.routes import audit, goals, health, metrics, runs, slack, stacks
from api.web import install_console
from crew import __version__
from crew.conductor import Conductor
from crew.container import Services, open_services
from crew.settings import Settings
from crew.worker import Worker

logger = logging.getLogger(__name__)


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
    install_error_handlers(app)
    # /v1 needs a bearer token (when tokens are configured); /slack verifies Slack's signature.
    app.include_router(goals.router, dependencies=[Depends(current_principal)])
    app.include_router(runs.router, dependencies=[Depends(current_principal)])
    app.include_router(audit.router, dependencies=[Depends(current_principal)])
    app.include_router(stacks.router, dependencies=[Depends(current_principal)])
    app.include_router(slack.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    # The web console at / (session cookie + CSRF; the same tokens, roles and services).
    install_console(app, settings)
    return app


def create_metrics_app(services: Services) -> FastAPI:
    """Only /metrics, for `crew worker` (CREW_METRICS_PORT): the same route and token rules as
    the API's, on services the worker already opened."""
    app = FastAPI(title="infra-crew worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    install_error_handlers(app)
    app.include_router(metrics.router)
    return app
