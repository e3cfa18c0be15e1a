"""What every route needs: the service, and the authenticated caller with its address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trailseal.app import Caller
from trailseal.server.service import Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "0.0.0.0"  # noqa: S104 - a label, not a bind


def authenticate(request: Request, service: Annotated[Service, Depends(get_service)]) -> Caller:
    """The caller of this request (401 otherwise), within its rate limit (429 otherwise)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    ip = client_ip(request)
    given = (token if scheme.lower() == "bearer" else "") if header else None
    principal = service.app.principals.authenticate(given, ip)
    assert service.rates is not None
    service.rates.take(principal.id)
    return Caller(principal, ip)


ServiceDep = Annotated[Service, Depends(get_service)]
CallerDep = Annotated[Caller, Depends(authenticate)]
