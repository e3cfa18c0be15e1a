"""The log as a whole: checkpoint, proofs, export, verification."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from trailseal.errors import VerificationError
from trailseal.query import MAX_QUERY
from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES

router = APIRouter(responses=PROBLEM_RESPONSES)
MAX_INDEX = 2**62  # beyond any log; keeps SQLite integers in range
MAX_NOTE_BYTES = 64 * 1024  # a checkpoint with 100 signatures is well under this


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
            "description": "JSON Lines: one {entry, detail, salt} object a line; with "
            "format=bundle, an evidence bundle (zip)",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def export(  # noqa: PLR0913, PLR0917 - the query parameters, by name
    service: ServiceDep,
    caller: CallerDep,
    start: Annotated[int, Query(alias="from", ge=0, le=MAX_INDEX)] = 0,
    end: Annotated[int | None, Query(alias="to", ge=0, le=MAX_INDEX)] = None,
    fmt: Annotated[Literal["jsonl", "bundle"], Query(alias="format")] = "jsonl",
    q: Annotated[str | None, Query(max_length=MAX_QUERY)] = None,
) -> Response:
    """JSON Lines, the shape of `trailseal export`; a tenant sees only its entries.
    ``format=bundle`` answers an evidence bundle (zip) of the entries ``q`` selects,
    which verifies on its own: a tenant's export can be checked by `verify-bundle`."""
    if fmt == "bundle":
        content = service.app.reports.export_bundle(caller, q)
        headers = {"Content-Disposition": 'attachment; filename="export.zip"'}
        return Response(content, media_type="application/zip", headers=headers)
    lines = service.app.entries.export(caller, start, end)
    return StreamingResponse(lines, media_type="application/x-ndjson")


class VerifyRequest(BaseModel):
    """Optional: ``since``, a checkpoint note an earlier verification covered, to check
    only what was appended after it (as `trailseal verify --since`)."""

    since: str | None = Field(default=None, max_length=MAX_NOTE_BYTES)


@router.post("/v1/verify")
def verify(
    service: ServiceDep, caller: CallerDep, body: VerifyRequest | None = None
) -> dict[str, Any]:
    """Verify the whole log (or, with ``since``, what came after a verified checkpoint);
    the report says ok, or the kind and first bad index. One verification of a log runs
    at a time: another meanwhile answers 429."""
    since = body.since if body is not None else None
    try:
        report = service.app.entries.verify(caller, since=since).to_json()
    except VerificationError as exc:
        report = {"ok": False, "kind": exc.kind, "index": exc.index, "message": exc.message}
    service.metrics.verified(ok=bool(report["ok"]))
    return report
