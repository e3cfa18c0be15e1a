"""/v1/principals: admins create, list, rotate and revoke principals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from trailseal.access import Permission, Role
from trailseal.errors import ConfigError, NotFoundError
from trailseal.server.deps import CallerDep, ServiceDep, allow, client_ip
from trailseal.server.problems import PROBLEM_RESPONSES, Problem

router = APIRouter(responses=PROBLEM_RESPONSES)


class PrincipalRequest(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    role: Role
    tenant: str = Field(default="*", min_length=1, max_length=128)


@router.get("/v1/principals")
def list_principals(request: Request, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    allow(service, caller, Permission.MANAGE_PRINCIPALS, request)
    return {"principals": [p.to_json() for p in service.principals.list()]}


@router.post("/v1/principals", status_code=201)
def create_principal(
    body: PrincipalRequest, request: Request, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    """A new principal; its token is in this response and nowhere else, ever."""
    allow(service, caller, Permission.MANAGE_PRINCIPALS, request)
    try:
        created, token = service.principals.create(body.name, body.role, body.tenant)
    except ConfigError as exc:
        status = 409 if "exists" in str(exc) else 400
        raise Problem(status, "Cannot create principal", str(exc)) from None
    service.record(
        "principal.create",
        caller,
        source_ip=client_ip(request),
        resource={"type": "principal", "id": created.id},
        labels={"role": str(created.role), "tenant": created.tenant},
    )
    return {**created.to_json(), "token": token}


@router.post("/v1/principals/{principal_id}/rotate")
def rotate(
    principal_id: str, request: Request, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    """A new token for the principal; the old one stops working at once."""
    allow(service, caller, Permission.MANAGE_PRINCIPALS, request)
    try:
        rotated, token = service.principals.rotate(principal_id)
    except NotFoundError as exc:
        raise Problem(404, "Not found", str(exc)) from None
    service.record(
        "principal.rotate",
        caller,
        source_ip=client_ip(request),
        resource={"type": "principal", "id": rotated.id},
    )
    return {**rotated.to_json(), "token": token}


@router.delete("/v1/principals/{principal_id}")
def revoke(
    principal_id: str, request: Request, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    allow(service, caller, Permission.MANAGE_PRINCIPALS, request)
    try:
        revoked = service.principals.revoke(principal_id)
    except NotFoundError as exc:
        raise Problem(404, "Not found", str(exc)) from None
    service.record(
        "principal.revoke",
        caller,
        source_ip=client_ip(request),
        resource={"type": "principal", "id": revoked.id},
    )
    return revoked.to_json()
