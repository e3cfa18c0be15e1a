"""What every route needs: the service, and the authenticated caller with its address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trailseal.app import Caller
from trailseal.server.service import Service

LOG_KEY = "trailseal.log"  # set by the log router for /v1/logs/NAME/...


def named_log(request: Request) -> str | None:
    """The log the request named in its path (/v1/logs/NAME/...), if it named one."""
    found = request.scope.get(LOG_KEY)
    return found if isinstance(found, str) else None


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
    caller = Caller(principal, ip)
    if service.deployment is not None and request.scope.get(LOG_KEY):
        service.deployment.readable(caller, service.app.log)  # another tenant's log: 404
    return caller


ServiceDep = Annotated[Service, Depends(get_service)]
CallerDep = Annotated[Caller, Depends(authenticate)]
