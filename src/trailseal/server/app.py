"""The HTTP API, versioned under /v1: a thin layer over the ledger and the access rules.

Every route but /healthz and /metrics authenticates, asks
:func:`~trailseal.access.decide` for its permission, keeps tenants apart, and
records reads of the log in the log itself. Errors are RFC 9457 problem details.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from trailseal.access import PrincipalStore
from trailseal.events import Event
from trailseal.ledger import Ledger
from trailseal.ledger.bulk import worker_pool
from trailseal.server import problems
from trailseal.server.problems import Problem
from trailseal.server.routes import alerts, entries, events, log, principals
from trailseal.server.service import Limits, Service


def create_app(ledger: Ledger, store: PrincipalStore, limits: Limits | None = None) -> FastAPI:
    """The ASGI app serving one log; it records its own start and stop in the log."""
    service = Service(ledger, store, limits or Limits())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.pool = worker_pool()
        service.record("audit.started", None, reason="the service started")
        try:
            yield
        finally:
            service.flush_floods()
            service.record("audit.stopped", None, reason="the service stopped")
            if service.pool is not None:
                service.pool.shutdown(cancel_futures=True)

    app = FastAPI(title="trailseal", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.add_exception_handler(Problem, problems.on_problem)
    app.add_exception_handler(HTTPException, problems.on_http)
    app.add_exception_handler(RequestValidationError, problems.on_validation)
    app.add_exception_handler(Exception, problems.on_unexpected)
    for module in (events, entries, log, principals, alerts):
        app.include_router(module.router)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness only: no authentication, no data."""
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        text = service.metrics.text(service.ledger.size(), service.ledger.queue_depth())
        return Response(text, media_type="text/plain; version=0.0.4")

    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the event schema for the body of POST /v1/events
    (which the route reads itself, to take JSON Lines as well as JSON)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    (event,), components = msgspec.json.schema_components(
        [Event], ref_template="#/components/schemas/{name}"
    )
    components["Event"]["properties"].pop("detail_commitment", None)  # set only by the log
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    document["paths"]["/v1/events"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [event, {"type": "array", "items": event}]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
    app.openapi_schema = document
    return document
