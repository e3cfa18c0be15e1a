"""What every route needs: the service, the authenticated caller, the client address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trailseal.access import Permission, Principal
from trailseal.server.problems import Problem
from trailseal.server.service import Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "0.0.0.0"  # noqa: S104 - a label, not a bind


def authenticate(request: Request, service: Annotated[Service, Depends(get_service)]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    found = service.principals.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        why = "no bearer token" if not header else "unknown, malformed or revoked token"
        service.authentication_failed(client_ip(request), why)
        raise Problem(
            401,
            "Unauthorized",
            f"{why}; send Authorization: Bearer tsk_...",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


ServiceDep = Annotated[Service, Depends(get_service)]
CallerDep = Annotated[Principal, Depends(authenticate)]


def allow(service: Service, caller: Principal, permission: Permission, request: Request) -> None:
    """Raise 403 (and record the refusal in the log) unless the caller's role may."""
    service.authorize(caller, permission, client_ip(request))
