"""/v1/logs/NAME/...: each log of a deployment behind the same routes as the default
log's /v1/...

The router is plain ASGI in front of one API app per log: it takes the log's name out of
the path, hands the request to that log's app as /v1/..., and marks the scope with the
name (so an append there is held to the log's routing, and a principal bound to a
tenant reaches only the logs it may see). Everything else goes to the default log's app
(which also holds the dashboard). The lifespan of every app runs in its turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import orjson
from fastapi import FastAPI

from trailseal.server.deps import LOG_KEY
from trailseal.server.problems import PROBLEM

Scope = dict[str, Any]
PREFIX = "/v1/logs/"


class LogRouter:
    """An ASGI app: ``/v1/logs/NAME/REST`` to log NAME's app as ``/v1/REST``."""

    def __init__(self, default: FastAPI, logs: Mapping[str, FastAPI]) -> None:
        self.default, self.logs = default, dict(logs)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(PREFIX):
            name, slash, rest = path[len(PREFIX) :].partition("/")
            if slash and rest:
                target = self.logs.get(name)
                if target is None:
                    await _not_found(send, name)
                    return
                inner = f"/v1/{rest}"
                scope = {**scope, "path": inner, "raw_path": inner.encode(), LOG_KEY: name}
                await target(scope, receive, send)
                return
        await self.default(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        async with AsyncExitStack() as stack:
            try:
                for app in {id(a): a for a in (self.default, *self.logs.values())}.values():
                    await stack.enter_async_context(app.router.lifespan_context(app))
            except Exception as exc:  # noqa: BLE001 - said to the server, which stops
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


async def _not_found(send: Any, name: str) -> None:
    """Before any authentication: the names of the logs are not told here."""
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": "Not found",
            "status": 404,
            "detail": f"no log {name[:60]!r} here; GET /v1/logs lists the logs you may see",
        }
    )
    headers = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})
