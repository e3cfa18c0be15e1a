"""/v1/principals: admins create, list, rotate and revoke principals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from trailseal.access import TOKEN_ROLES, Role
from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES

router = APIRouter(responses=PROBLEM_RESPONSES)


class PrincipalRequest(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    role: Role = Field(description=f"one of {', '.join(TOKEN_ROLES)}")
    tenant: str = Field(default="*", min_length=1, max_length=128)


@router.get("/v1/principals")
def list_principals(service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    return {"principals": [p.to_json() for p in service.app.principals.list(caller)]}


@router.post("/v1/principals", status_code=201)
def create_principal(
    body: PrincipalRequest, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    """A new principal; its token is in this response and nowhere else, ever."""
    created, token = service.app.principals.create(caller, body.name, body.role, body.tenant)
    return {**created.to_json(), "token": token}


@router.post("/v1/principals/{principal_id}/rotate")
def rotate(principal_id: str, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """A new token for the principal; the old one stops working at once."""
    rotated, token = service.app.principals.rotate(caller, principal_id)
    return {**rotated.to_json(), "token": token}


@router.delete("/v1/principals/{principal_id}")
def revoke(principal_id: str, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    return service.app.principals.revoke(caller, principal_id).to_json()
