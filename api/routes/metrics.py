"""Prometheus metrics (crew/metrics.py documents every one)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import ServicesDep, Viewer
from crew.conductor import refresh_metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep, _: Viewer) -> Response:
    """Prometheus text format. When CREW_API_TOKENS is set, the scraper needs a token with
    the viewer role (Prometheus: `authorization: {credentials: <token>}`). The cluster gauges
    are read from Postgres and the bus at each scrape."""
    return Response(await refresh_metrics(services), media_type=CONTENT_TYPE_LATEST)
