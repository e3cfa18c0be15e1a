"""The log as a whole: checkpoint, proofs, export, verification."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from trailseal.access import Permission
from trailseal.errors import NotFoundError, ProofError, VerificationError
from trailseal.server.deps import CallerDep, ServiceDep, allow, client_ip
from trailseal.server.problems import PROBLEM_RESPONSES, Problem
from trailseal.server.service import entry_tenant

router = APIRouter(responses=PROBLEM_RESPONSES)
MAX_INDEX = 2**62  # beyond any log; keeps SQLite integers in range


@router.get("/v1/checkpoint", response_class=PlainTextResponse)
def checkpoint(request: Request, service: ServiceDep, caller: CallerDep) -> PlainTextResponse:
    """The latest signed checkpoint, a C2SP signed note."""
    allow(service, caller, Permission.CHECKPOINT, request)
    try:
        return PlainTextResponse(service.ledger.checkpoint())
    except NotFoundError as exc:
        raise Problem(404, "No checkpoint", str(exc)) from None


@router.get("/v1/proofs/inclusion")
def inclusion(
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    request: Request,
    service: ServiceDep,
    caller: CallerDep,
    size: Annotated[int | None, Query(ge=1, le=MAX_INDEX)] = None,
) -> dict[str, Any]:
    allow(service, caller, Permission.PROVE, request)
    service.get_visible(caller, index)
    try:
        proof = service.ledger.prove_inclusion(index, size)
    except ProofError as exc:
        raise Problem(400, "No such proof", exc.message) from None
    service.record(
        "audit.read",
        caller,
        source_ip=client_ip(request),
        resource={"type": "entry", "id": str(index)},
        labels={"proof": "inclusion"},
    )
    return proof.to_json()


@router.get("/v1/proofs/consistency")
def consistency(
    old: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    new: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    request: Request,
    service: ServiceDep,
    caller: CallerDep,
) -> dict[str, Any]:
    allow(service, caller, Permission.PROVE, request)
    try:
        proof = service.ledger.prove_consistency(old, new)
    except ProofError as exc:
        raise Problem(400, "No such proof", exc.message) from None
    service.record(
        "audit.read",
        caller,
        source_ip=client_ip(request),
        resource={"type": "log"},
        labels={"proof": "consistency"},
    )
    return proof.to_json()


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
    request: Request,
    service: ServiceDep,
    caller: CallerDep,
    start: Annotated[int, Query(alias="from", ge=0, le=MAX_INDEX)] = 0,
    end: Annotated[int | None, Query(alias="to", ge=0, le=MAX_INDEX)] = None,
) -> StreamingResponse:
    """JSON Lines, the shape of `trailseal export`; a tenant sees only its entries."""
    allow(service, caller, Permission.EXPORT, request)
    service.record(
        "audit.export",
        caller,
        source_ip=client_ip(request),
        resource={"type": "log"},
        labels={"from": start, "to": -1 if end is None else end},
    )
    ledger = service.ledger

    def lines() -> Iterator[bytes]:
        for line in ledger.export(start, end):
            if caller.tenant == "*" or caller.sees(
                entry_tenant(orjson.loads(line)["entry"]["event"])
            ):
                yield line

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post("/v1/verify")
def verify(request: Request, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """Verify the whole log; the report says ok, or the kind and first bad index."""
    allow(service, caller, Permission.VERIFY, request)
    try:
        report = service.ledger.verify().to_json()
    except VerificationError as exc:
        report = {"ok": False, "kind": exc.kind, "index": exc.index, "message": exc.message}
    service.metrics.verified(ok=bool(report["ok"]))
    if caller.tenant != "*":
        report.pop("detail_erased", None)  # indexes of other tenants' entries
    service.record(
        "audit.verify",
        caller,
        source_ip=client_ip(request),
        resource={"type": "log"},
        result="success" if report["ok"] else "failure",
    )
    return report
