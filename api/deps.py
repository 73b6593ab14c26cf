"""Dependencies of route handlers, as `Annotated` aliases: services and the caller's identity.

Every /v1 request is authenticated by its bearer token (`CREW_API_TOKENS`, compared by hash;
see crew/access.py). Without configured tokens, which settings only allow on a loopback
address, every caller is the principal `local` with the approver role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from crew.access import LOCAL_PRINCIPAL, Principal, Role, authenticate
from crew.container import Services
from schemas.errors import ForbiddenError, UnauthenticatedError


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def current_principal(request: Request, services: ServicesDep) -> Principal:
    """Who is calling: the principal of the presented bearer token (401 without one)."""
    tokens = services.settings.api_tokens
    if not tokens:
        return Principal(name=LOCAL_PRINCIPAL, role=Role.APPROVER)
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    principal = authenticate(tokens, presented.strip()) if scheme.lower() == "bearer" else None
    if principal is None:
        raise UnauthenticatedError(
            "missing or unknown bearer token (send Authorization: Bearer <token>)"
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_role(role: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets through callers whose role includes `role` (403 otherwise)."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.role.allows(role):
            raise ForbiddenError(
                f"'{principal.name}' has the {principal.role.value} role; this needs {role.value}"
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(require_role(Role.VIEWER))]
Submitter = Annotated[Principal, Depends(require_role(Role.SUBMITTER))]
Approver = Annotated[Principal, Depends(require_role(Role.APPROVER))]
