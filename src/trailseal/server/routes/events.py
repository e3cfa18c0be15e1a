"""POST /v1/events: append one event or a batch; 2xx only once every event is durable."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trailseal.app import AppendOutcome, Caller
from trailseal.app.deployment import RoutedOutcome
from trailseal.server.deps import CallerDep, ServiceDep, named_log
from trailseal.server.problems import PROBLEM_RESPONSES, Problem, line_pointer
from trailseal.server.service import Service, parse_body

router = APIRouter(responses=PROBLEM_RESPONSES)
POOL_FROM = 1000  # batches at least this large are prepared in worker processes
POOL_CHUNK = 1000  # lines a worker prepares at a time


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
    service.app.entries.authorize_append(caller)  # before reading a body it may not send
    raw = await _read_body(request, service.limits.max_body_bytes)
    items = parse_body(raw, request.headers.get("content-type", ""), service.limits.max_batch)
    started = time.perf_counter()
    deployment = service.deployment
    if deployment is not None and len(deployment.names) > 1:
        large = service.pool is not None and len(items) >= POOL_FROM
        routed = await asyncio.to_thread(
            deployment.append,
            caller,
            items,
            partial=partial,
            only=named_log(request),
            pool=service.pool if large else None,
            chunk_lines=POOL_CHUNK if large else None,
        )
        service.metrics.appended(routed.appended, len(items), time.perf_counter() - started)
        return JSONResponse(_routed_answer(routed), status_code=201)
    outcome = await asyncio.to_thread(_append, service, caller, items, partial=partial)
    service.metrics.appended(outcome.appended, len(items), time.perf_counter() - started)
    return JSONResponse(_answer(outcome), status_code=201)


def _append(
    service: Service, caller: Caller, items: list[bytes], *, partial: bool
) -> AppendOutcome:
    large = service.pool is not None and len(items) >= POOL_FROM
    batch = service.app.entries.check(
        caller,
        items,
        pool=service.pool if large else None,
        chunk_lines=POOL_CHUNK if large else None,
    )
    return service.app.entries.commit(batch, partial=partial)


def _routed_answer(outcome: RoutedOutcome) -> dict[str, Any]:
    """As :func:`_answer`, each entry naming its log; ``size`` is said when the batch
    reached one log, and ``logs`` gives each log's count and size."""
    body: dict[str, Any] = {
        "appended": outcome.appended,
        "entries": [
            {"position": line - 1, "log": log, "index": index}
            for line, log, index in outcome.placed
        ],
        "logs": {
            name: {"appended": part.appended, "size": part.size}
            for name, part in outcome.logs.items()
        },
    }
    if len(outcome.logs) == 1:
        body["size"] = next(iter(outcome.logs.values())).size
    if outcome.problems:
        body["rejected"] = [line_pointer(problem) for problem in outcome.problems]
    return body


def _answer(outcome: AppendOutcome) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appended": outcome.appended,
        "size": outcome.size,
        "entries": [{"position": line - 1, "index": index} for line, index in outcome.placed],
    }
    if outcome.problems:
        body["rejected"] = [line_pointer(problem) for problem in outcome.problems]
    return body
