"""POST /v1/events: append one event or a batch; 2xx only once every event is durable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trailseal.access import Permission, Principal
from trailseal.errors import (
    ConfigError,
    IdConflictError,
    LineProblem,
    StorageError,
    VerificationError,
)
from trailseal.ledger import AppendResult
from trailseal.ledger.bulk import PreparedChunk, prepare_lines
from trailseal.ledger.entry import Prepared
from trailseal.server.deps import CallerDep, ServiceDep, allow
from trailseal.server.problems import PROBLEM_RESPONSES, Problem, pointer
from trailseal.server.service import Service, parse_body, validate_batch

router = APIRouter(responses=PROBLEM_RESPONSES)
POOL_FROM = 1000  # batches at least this large are prepared in worker processes


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # refuse before reading any of it
        raise Problem(413, "Body too large", f"the body exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise Problem(413, "Body too large", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/v1/events", status_code=201)
async def post_events(
    request: Request, service: ServiceDep, caller: CallerDep, partial: bool = False
) -> JSONResponse:
    """Append a JSON object, a JSON array or JSON Lines (``application/x-ndjson``).

    A batch with invalid events is refused whole, every problem listed with a
    JSON pointer, unless ``partial=true``: then the good events are appended
    and the bad ones listed.
    """
    allow(service, caller, Permission.APPEND, request)
    raw = await _read_body(request, service.limits.max_body_bytes)
    items = parse_body(raw, request.headers.get("content-type", ""), service.limits.max_batch)
    started = time.perf_counter()
    if service.pool is not None and caller.tenant == "*" and len(items) >= POOL_FROM:
        body = await asyncio.to_thread(_append_in_workers, service, items, partial=partial)
    else:
        body = await asyncio.to_thread(_append_here, service, caller, items, partial=partial)
    service.metrics.appended(body["appended"], len(items), time.perf_counter() - started)
    return JSONResponse(body, status_code=201)


def _refuse(errors: list[dict[str, Any]], count: int) -> Problem:
    bad = {int(str(error["pointer"]).split("/")[1]) for error in errors}
    return Problem(
        422,
        "Invalid events",
        f"{len(bad)} of {count} events are invalid; nothing was appended",
        errors,
    )


def _append(service: Service, prepared: list[Prepared]) -> AppendResult:
    """Append durably, or say why not (never a 2xx for what is not durable)."""
    try:
        return service.ledger.append_prepared(prepared)
    except IdConflictError as exc:
        raise Problem(409, "Id conflict", exc.message) from None
    except (StorageError, ConfigError, VerificationError) as exc:
        # Fail closed: a store that cannot append durably, a key that cannot be used, or
        # a signer refusing an inconsistent checkpoint never yields a 2xx.
        raise Problem(503, "Cannot append", str(exc), headers={"Retry-After": "5"}) from None


def _append_here(
    service: Service, caller: Principal, items: list[bytes], *, partial: bool
) -> dict[str, Any]:
    """Parse and prepare on this process; tenant-bound callers are checked event by event."""
    events, errors = validate_batch(items, service.ledger.limits)
    errors += service.check_writes(caller, events)
    if errors and not partial:
        raise _refuse(errors, len(items))
    bad = {int(str(error["pointer"]).split("/")[1]) for error in errors}
    good = [(position, event) for position, event in events if position not in bad]
    result = _append(service, [Prepared.of(event) for _, event in good])
    entries = [
        {"position": position, "index": index}
        for (position, _), index in zip(good, result.indexes, strict=True)
    ]
    return _answer(result.appended, result.size, entries, errors)


def _append_in_workers(service: Service, items: list[bytes], *, partial: bool) -> dict[str, Any]:
    """Large batches: worker processes prepare chunks while the sequencer commits the
    previous one. All or nothing needs every chunk checked before the first commit."""
    chunks: Iterator[PreparedChunk] = prepare_lines(
        items, service.ledger.limits, pool=service.pool, chunk_lines=1000
    )
    if not partial:
        chunks = iter(checked := list(chunks))
        errors = [_pointer(problem) for chunk in checked for problem in chunk.problems]
        if errors:
            raise _refuse(errors, len(items))
    errors, entries, appended, size = [], [], 0, service.ledger.size()
    for chunk in chunks:
        errors += [_pointer(problem) for problem in chunk.problems]
        result = _append(service, chunk.prepared)
        appended, size = appended + result.appended, result.size
        entries += [
            {"position": line - 1, "index": index}
            for line, index in zip(chunk.line_numbers, result.indexes, strict=True)
        ]
    return _answer(appended, size, entries, errors)


def _pointer(problem: LineProblem) -> dict[str, Any]:
    return {
        "pointer": f"/{problem.line - 1}{pointer(problem.error.field)}",
        "detail": problem.error.message,
    }


def _answer(
    appended: int, size: int, entries: list[dict[str, int]], errors: list[dict[str, Any]]
) -> dict[str, Any]:
    body: dict[str, Any] = {"appended": appended, "size": size, "entries": entries}
    if errors:
        body["rejected"] = errors
    return body
