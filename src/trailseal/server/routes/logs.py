"""The deployment's logs: which there are, and the signed checkpoint of them all."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from trailseal.app.deployment import Deployment
from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES, Problem
from trailseal.server.service import Service

router = APIRouter(responses=PROBLEM_RESPONSES)


def _deployment(service: Service) -> Deployment:
    if service.deployment is None:
        raise Problem(404, "Not found", "this service serves one log, not a deployment")
    return service.deployment


@router.get("/v1/logs")
def list_logs(service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """The logs this principal may see: name, origin, size (and, for a principal of every
    tenant, the tenants routed to each). Each is served under /v1/logs/NAME/..."""
    found = _deployment(service).describe(caller)
    return {"logs": [log.to_json() for log in found]}


@router.get("/v1/deployment/checkpoint", response_class=PlainTextResponse)
def deployment_checkpoint(service: ServiceDep, caller: CallerDep) -> PlainTextResponse:
    """A signed note listing every log's latest size, root and verifier key, signed with
    the default log's key (for a principal of every tenant: it names every log)."""
    return PlainTextResponse(_deployment(service).checkpoint(caller))
