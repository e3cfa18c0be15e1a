"""ASGI middleware: one audit event per request to a configured resource, reads included.

Each event carries the method, the route template (``/patients/{patient_id}``,
not the raw path), the status and outcome, the actor (from a resolver, or set
by the handler with :func:`trailseal.capture.set_actor` when authentication
happens inside it), the client address (``X-Forwarded-For`` is honoured only
from trusted proxies), the request id, the resource type and id from route
parameters, and for lists the number of records returned.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from trailseal.capture import context
from trailseal.capture.request import HttpRequest, RecordingMiddleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AuditMiddleware(RecordingMiddleware[ASGIApp, Scope]):
    """Wrap an ASGI app: ``app = AuditMiddleware(app, client, resources=[...])``; the
    ``actor`` resolver, if any, receives the ASGI scope."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        capture, token = context.begin()
        status = 500
        started = time.monotonic()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            context.end(token)
            route = scope.get("route")
            template = getattr(route, "path", None) or scope.get("path", "")
            client = scope.get("client")
            request = HttpRequest(
                method=str(scope.get("method", "GET")),
                template=str(template),
                headers={
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in scope.get("headers", [])
                },
                client=str(client[0]) if client else None,
                params=scope.get("path_params") or {},
                status=status,
                seconds=time.monotonic() - started,
            )
            resolve = self.resolve_actor
            self.recorder.record(request, capture, (lambda: resolve(scope)) if resolve else None)
