"""POST /v1/events: append one event or a batch; 2xx only once every event is durable."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trailseal.access import Permission
from trailseal.errors import (
    ConfigError,
    IdConflictError,
    StorageError,
    StoreUnavailableError,
    VerificationError,
)
from trailseal.ledger.entry import Prepared
from trailseal.server.deps import CallerDep, ServiceDep, allow
from trailseal.server.problems import PROBLEM_RESPONSES, Problem
from trailseal.server.service import parse_body, validate_batch

router = APIRouter(responses=PROBLEM_RESPONSES)


async def _read_body(request: Request, limit: int) -> bytes:
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
    values = parse_body(raw, request.headers.get("content-type", ""), service.limits.max_batch)
    events, errors = validate_batch(values, service.ledger.limits)
    errors += service.check_writes(caller, events)
    bad = {int(error["pointer"].split("/")[1]) for error in errors}
    if errors and not partial:
        raise Problem(
            422,
            "Invalid events",
            f"{len(bad)} of {len(values)} events are invalid; nothing was appended",
            errors,
        )
    good = [(position, event) for position, event in events if position not in bad]
    started = time.perf_counter()
    try:
        result = service.ledger.append_prepared([Prepared.of(event) for _, event in good])
    except IdConflictError as exc:
        raise Problem(409, "Id conflict", exc.message) from None
    except StoreUnavailableError as exc:
        raise Problem(503, "Store unavailable", str(exc), headers={"Retry-After": "5"}) from None
    except (StorageError, ConfigError, VerificationError) as exc:
        # Fail closed: a store that cannot append durably, a key that cannot be used, or
        # a signer refusing an inconsistent checkpoint never yields a 2xx.
        raise Problem(503, "Cannot append", str(exc), headers={"Retry-After": "5"}) from None
    service.metrics.appended(result.appended, len(good), time.perf_counter() - started)
    body: dict[str, Any] = {
        "appended": result.appended,
        "size": result.size,
        "entries": [
            {"position": position, "index": index}
            for (position, _), index in zip(good, result.indexes, strict=True)
        ],
    }
    if errors:
        body["rejected"] = errors
    return JSONResponse(body, status_code=201)
