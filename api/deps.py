"""Dependencies of route handlers, as `Annotated` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from crew.container import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def require_token(request: Request) -> None:
    """When CREW_API_TOKENS is set, every /v1 call needs `Authorization: Bearer <token>`.

    (Roles and hashed tokens come with the approval-gate work; this is the minimum that
    makes binding beyond loopback safe.)"""
    services: Services = request.app.state.services
    tokens = services.settings.api_tokens
    if not tokens:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and any(
        hmac.compare_digest(presented.encode(), t.get_secret_value().encode()) for t in tokens
    ):
        return
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or unknown bearer token (send Authorization: Bearer <token>)",
        headers={"WWW-Authenticate": "Bearer"},
    )
