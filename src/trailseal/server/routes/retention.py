"""/v1/retention: what the retention policies would do, and legal holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from trailseal.query.times import span
from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES, Problem

router = APIRouter(responses=PROBLEM_RESPONSES)


@router.get("/v1/retention/plan")
def retention_plan(
    service: ServiceDep,
    caller: CallerDep,
    at: Annotated[str | None, Query(max_length=64, description="a moment; default now")] = None,
) -> dict[str, Any]:
    """Per policy: entries governed, hot, to move to the cold tier, to purge and held,
    with the cutoffs (counts only; privacy, auditor, admin). Recorded."""
    moment = None
    if at is not None:
        try:
            moment = span(at, datetime.now(UTC))[0]
        except ValueError as exc:
            raise Problem(400, "Bad request", f"at: {exc}", [{"pointer": "/at"}]) from None
    return service.app.retention.plan(caller, moment).to_json()


@router.get("/v1/retention/receipts")
def purge_receipts(service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """The signed purge receipts (privacy, auditor, admin): each body as signed, and the
    log's signed note over its SHA-256. Recorded."""
    return {"receipts": service.app.retention.receipts(caller)}


@router.post("/v1/retention/run")
def retention_run(service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """Run retention now (privacy role): seal what is past its hot period into the cold
    tier and purge what is past its total period, honouring legal holds. Each purge
    leaves a signed receipt and an entry. Runs one at a time; large runs take a while."""
    return service.app.retention.run(caller).to_json()


class HoldRequest(BaseModel):
    query: str = Field(min_length=1, max_length=256, description="what the hold covers")
    reason: str = Field(min_length=1, max_length=2000)
    stops_cold: bool = Field(default=False, description="also keep what it covers hot")


class Release(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/v1/retention/holds")
def list_holds(service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """The legal holds in force, read back from the log."""
    return {"holds": [hold.to_json() for hold in service.app.retention.holds(caller)]}


@router.post("/v1/retention/holds", status_code=201)
def place_hold(body: HoldRequest, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """Place a legal hold (privacy role); it is an entry in the log."""
    placed = service.app.retention.hold(caller, body.query, body.reason, stops_cold=body.stops_cold)
    return placed.to_json()


@router.post("/v1/retention/holds/{hold_id}/release")
def release_hold(
    hold_id: Annotated[str, PathParam(max_length=64, description="h- and 12 hex digits")],
    body: Release,
    service: ServiceDep,
    caller: CallerDep,
) -> dict[str, Any]:
    """Release a legal hold (privacy role), with a reason; an entry in the log."""
    return service.app.retention.release(caller, hold_id, body.reason).to_json()
