"""`crew worker`: drive runs without an API, sharing the load with `crew serve` and other
workers through the bus (one Postgres, one bus; see crew/worker.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import uvicorn

from crew.container import Services, open_services
from crew.settings import Settings
from crew.worker import Worker

logger = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    """Until SIGINT/SIGTERM: take runs from the bus and drive them; on the signal, finish
    (or hand back) the runs in flight and record a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_services(settings, role="worker") as services:
        server, serving = _serve_metrics(services) if settings.metrics_port else (None, None)
        logger.info(
            "worker %s ready: %d run(s) at once, %s bus, %s%s",
            services.worker_id,
            settings.worker_concurrency,
            services.bus.kind,
            services.database,
            f", metrics on {settings.host}:{settings.metrics_port}" if server else "",
        )
        try:
            await Worker(services, role="worker").run_forever(stop)
        finally:
            if server is not None and serving is not None:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await serving


def _serve_metrics(services: Services) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """/metrics on CREW_HOST:CREW_METRICS_PORT, in this event loop."""
    from api.app import create_metrics_app

    settings = services.settings
    config = uvicorn.Config(
        create_metrics_app(services),
        host=settings.host,
        port=settings.metrics_port or 0,
        log_config=None,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    return server, asyncio.create_task(server.serve())
