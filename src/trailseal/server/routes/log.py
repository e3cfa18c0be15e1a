"""The log as a whole: checkpoint, proofs, export, verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, StreamingResponse

from trailseal.errors import VerificationError
from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES

router = APIRouter(responses=PROBLEM_RESPONSES)
MAX_INDEX = 2**62  # beyond any log; keeps SQLite integers in range


@router.get("/v1/checkpoint", response_class=PlainTextResponse)
def checkpoint(service: ServiceDep, caller: CallerDep) -> PlainTextResponse:
    """The latest signed checkpoint, a C2SP signed note."""
    return PlainTextResponse(service.app.entries.checkpoint(caller))


@router.get("/v1/proofs/inclusion")
def inclusion(
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    service: ServiceDep,
    caller: CallerDep,
    size: Annotated[int | None, Query(ge=1, le=MAX_INDEX)] = None,
) -> dict[str, Any]:
    return service.app.entries.prove_inclusion(caller, index, size).to_json()


@router.get("/v1/proofs/consistency")
def consistency(
    old: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    new: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    service: ServiceDep,
    caller: CallerDep,
) -> dict[str, Any]:
    return service.app.entries.prove_consistency(caller, old, new).to_json()


@router.get(
    "/v1/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "JSON Lines: one {entry, detail, salt} object a line",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def export(
    service: ServiceDep,
    caller: CallerDep,
    start: Annotated[int, Query(alias="from", ge=0, le=MAX_INDEX)] = 0,
    end: Annotated[int | None, Query(alias="to", ge=0, le=MAX_INDEX)] = None,
) -> StreamingResponse:
    """JSON Lines, the shape of `trailseal export`; a tenant sees only its entries."""
    lines = service.app.entries.export(caller, start, end)
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.post("/v1/verify")
def verify(service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """Verify the whole log; the report says ok, or the kind and first bad index."""
    try:
        report = service.app.entries.verify(caller).to_json()
    except VerificationError as exc:
        report = {"ok": False, "kind": exc.kind, "index": exc.index, "message": exc.message}
    service.metrics.verified(ok=bool(report["ok"]))
    return report
