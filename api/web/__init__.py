"""The web console: server-rendered pages over the same services as the REST API.

`install_console` adds it to the app: the pages at `/` (runs, a run, audit, new goal, login),
the static files at `/static` (the console's CSS and script, and Mermaid vendored as a built
file with its licences: no CDN), and the key that signs session cookies.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from api.web import actions, pages, shield_pages
from api.web.session import SessionSigner
from crew.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console from `app`. Without CREW_SESSION_SECRET the session key is random
    for this process: fine for one process, but replicas behind one address need one key."""
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    app.state.console_sessions = SessionSigner.from_secret(secret, settings.session_ttl_s)
    app.include_router(pages.router)
    app.include_router(shield_pages.router)
    app.include_router(actions.router)
    # Mermaid is 5.5 MB as built; compressed it is a quarter of that.
    static = GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=1024, compresslevel=6)
    app.mount("/static", static, name="static")
