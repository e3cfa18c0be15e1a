"""WSGI middleware: the same events as the ASGI middleware, for Flask and other WSGI apps.

The route template and parameters come from ``environ["trailseal.route"]``, a
``(template, params)`` pair the framework integration leaves there once it has
routed the request (:func:`instrument_flask` does this for Flask); without it,
the raw path is the template.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from trailseal.capture import context
from trailseal.capture.request import Emitter, HttpRequest, RecordingMiddleware, Resource
from trailseal.capture.values import Clock, now

ROUTE_KEY = "trailseal.route"
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WSGIAuditMiddleware(RecordingMiddleware[WSGIApp, dict[str, Any]]):
    """Wrap a WSGI app: ``app.wsgi_app = WSGIAuditMiddleware(app.wsgi_app, client, ...)``;
    the ``actor`` resolver, if any, receives the WSGI environ."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        capture, token = context.begin()
        status = [500]
        started = time.monotonic()

        def watch(status_line: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, *rest)

        try:
            body = self.app(environ, watch)
            try:
                yield from body
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        finally:
            context.end(token)
            self._record(environ, status[0], capture, time.monotonic() - started)

    def _record(
        self, environ: dict[str, Any], status: int, capture: context.RequestCapture, seconds: float
    ) -> None:
        template, params = environ.get(ROUTE_KEY) or (environ.get("PATH_INFO", ""), {})
        request = HttpRequest(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            template=str(template),
            headers={
                key[5:].replace("_", "-").lower(): str(value)
                for key, value in environ.items()
                if key.startswith("HTTP_")
            },
            client=environ.get("REMOTE_ADDR"),
            params=params,
            status=status,
            seconds=seconds,
        )
        resolve = self.resolve_actor
        self.recorder.record(request, capture, (lambda: resolve(environ)) if resolve else None)


def instrument_flask(  # noqa: PLR0913 - the middleware's settings, passed through
    app: Any,
    emitter: Emitter,
    *,
    resources: Sequence[Resource],
    actor: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    trusted_proxies: Iterable[str] = (),
    service: str = "app",
    clock: Clock = now,
) -> WSGIAuditMiddleware:
    """Audit a Flask app: wraps its WSGI app and records each request's URL rule."""
    from flask import request  # noqa: PLC0415 - Flask is needed only by Flask apps

    def remember_route() -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_KEY] = (request.url_rule.rule, dict(request.view_args or {}))

    app.before_request(remember_route)

    middleware = WSGIAuditMiddleware(
        app.wsgi_app,
        emitter,
        resources=resources,
        actor=actor,
        trusted_proxies=trusted_proxies,
        service=service,
        clock=clock,
    )
    app.wsgi_app = middleware
    return middleware
