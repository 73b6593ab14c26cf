"""The API without a worker, as its own process: `uvicorn bench.api_server:app --factory`.

Settings come from `CREW_*` variables like `crew serve`; only the worker is left out, so the
benchmark can drive runs in its own process (and time them) while requests cross a real
process boundary, as with an API replica in front of separate workers.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from crew.logs import configure_logging
from crew.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings, run_worker=False)
