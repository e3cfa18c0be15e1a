"""The HTTP API, versioned under /v1: a thin door over the application layer.

Every route but /healthz and /metrics authenticates and calls one operation of
:class:`~trailseal.app.App`, which decides, keeps tenants apart and records reads
in the log itself. Domain errors become RFC 9457 problem details here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from trailseal.app import App
from trailseal.app.deployment import Deployment
from trailseal.errors import TrailsealError
from trailseal.events import Event
from trailseal.server import problems
from trailseal.server.logs import LogRouter
from trailseal.server.problems import Problem
from trailseal.server.routes import (
    alerts,
    entries,
    events,
    log,
    logs,
    principals,
    reports,
    retention,
)
from trailseal.server.service import Limits, Service


def create_app(
    application: App,
    limits: Limits | None = None,
    detection: Callable[[int], dict[str, Any]] | None = None,
    deployment: Deployment | None = None,
) -> FastAPI:
    """The ASGI app serving one log; it records its own start and stop in the log.
    ``detection`` reports how detection running in this process is doing (``--watch``),
    given the log's size. With ``deployment`` (the logs beside it), appends are routed
    by tenant and /v1/logs lists the logs: :func:`serve_deployment` serves them all.
    `serve` mounts the dashboard (:mod:`trailseal.web`) beside it."""
    service = Service(application, limits or Limits(), deployment=deployment)
    recorder = application.recorder

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.pool = application.worker_pool()
        recorder.record("audit.started", None, reason="the service started")
        try:
            yield
        finally:
            recorder.flush_floods()
            recorder.record("audit.stopped", None, reason="the service stopped")
            if service.pool is not None:
                service.pool.shutdown(cancel_futures=True)

    app = FastAPI(title="trailseal", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.add_exception_handler(Problem, problems.on_problem)
    app.add_exception_handler(TrailsealError, problems.on_domain)
    app.add_exception_handler(HTTPException, problems.on_http)
    app.add_exception_handler(RequestValidationError, problems.on_validation)
    app.add_exception_handler(Exception, problems.on_unexpected)
    for module in (events, entries, log, logs, principals, alerts, reports, retention):
        app.include_router(module.router)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        """No authentication, no log data: ``ok``, or ``degraded`` with the problem when
        detection in this process is stopped or behind longer than its bound (the
        service itself still answers, so the status code stays 200)."""
        if detection is None:
            return {"status": "ok"}
        report = detection(application.entries.size())
        return {"status": "degraded" if report["problem"] else "ok", "detection": report}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        size, depth = application.entries.size(), application.queue_depth()
        try:
            lags = application.exports.lags()
        except TrailsealError:  # a broken exports.yaml: said by export-to, not here
            lags = {}
        text = service.metrics.text(size, depth, detection(size) if detection else None, lags)
        return Response(text, media_type="text/plain; version=0.0.4")

    return app


def serve_deployment(
    default: FastAPI,
    deployment: Deployment,
    limits: Limits | None = None,
    detection: Mapping[str, Callable[[int], dict[str, Any]]] | None = None,
) -> LogRouter:
    """Every log of ``deployment``: ``default`` (made with :func:`create_app` over its
    default log) at /v1/..., and each log at /v1/logs/NAME/... too."""
    apps = {deployment.default.log: default}
    for application in deployment.apps():
        if application is not deployment.default:
            found = (detection or {}).get(application.log)
            apps[application.log] = create_app(application, limits, found, deployment)
    return LogRouter(default, apps)


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
