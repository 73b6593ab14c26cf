"""The FastAPI application: factory plus lifespan that opens services and runs the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.deps import require_token
from api.errors import install_error_handlers
from api.routes import goals, health, runs
from crew import __version__
from crew.container import open_services
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
            worker_task = None
            if run_worker:
                worker = Worker(services)
                app.state.worker = worker
                worker_task = asyncio.create_task(worker.run_forever(stop))
            logger.info("infra-crew ready (%s)", services.database)
            try:
                yield
            finally:
                stop.set()
                if worker_task is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker_task

    app = FastAPI(
        title="infra-crew",
        version=__version__,
        summary="Goal in, reviewed Terraform out: design, build, validate, approve, apply.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(goals.router, dependencies=[Depends(require_token)])
    app.include_router(runs.router, dependencies=[Depends(require_token)])
    app.include_router(health.router)
    return app
