"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import ServicesDep
from schemas.errors import CrewError
from tools.llm_probe import probe_endpoint

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """`ready` or `not ready`, and each check's outcome (`ok`, or what is wrong)."""

    status: str
    checks: dict[str, str]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"model": Readiness, "description": "Every check passed."},
        503: {"model": Readiness, "description": "A check failed: `checks` names it."},
    },
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """Postgres answers and terraform is where settings say; 503 names what is missing.

    With the LLM planner configured, `checks.llm` says whether its endpoint answers. It does
    not make the service unready (approvals, the console and runs past the design still
    work; runs waiting to be designed retry, then end BLOCKED): it is listed in `degraded`."""
    checks: dict[str, str] = {}
    try:
        async with services.pool.connection() as conn:
            await conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {exc}"
    try:
        services.context.terraform.check()
        checks["terraform"] = "ok"
    except CrewError as exc:
        checks["terraform"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    settings = services.settings
    degraded = []
    if settings.effective_planner == "llm":
        checks["llm"] = await probe_endpoint(settings.llm_base_url, settings.openai_api_key)
        if checks["llm"] != "ok":
            degraded.append("llm")
    return JSONResponse(
        status_code=200 if ready else 503,
        content={
            "status": "ready" if ready else "not ready",
            "checks": checks,
            "degraded": degraded,
        },
    )
