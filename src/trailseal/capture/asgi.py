"""ASGI middleware: one audit event per request to a configured resource, reads included.

Each event carries the method, the route template (``/patients/{patient_id}``,
not the raw path), the status and outcome, the actor (from a resolver, or set
by the handler with :func:`trailseal.capture.set_actor` when authentication
happens inside it), the client address (``X-Forwarded-For`` is honoured only
from trusted proxies), the request id, the resource type and id from route
parameters, and for lists the number of records returned.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from trailseal.capture import context

logger = logging.getLogger("trailseal.capture")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

VERBS = {
    "GET": "read",
    "HEAD": "read",
    "POST": "create",
    "PUT": "update",
    "PATCH": "update",
    "DELETE": "delete",
}


class Emitter(Protocol):
    """Where events go: :class:`trailseal.client.Client`, or :class:`MemoryEmitter` in tests."""

    def emit(self, event: dict[str, Any]) -> str: ...


class MemoryEmitter:
    """Keeps events in a list: for testing code instrumented with trailseal."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> str:
        self.events.append(event)
        return str(event["id"])


@dataclass(frozen=True)
class Resource:
    """Requests whose route template starts with ``prefix`` concern ``type``; its id is
    the route parameter ``id_param``. ``action`` overrides ``TYPE.VERB`` (record.read)."""

    prefix: str
    type: str
    id_param: str | None = None
    action: str | None = None


ActorResolver = Callable[[Scope], dict[str, Any] | None]


def _new_id() -> str:
    from trailseal.client import new_event_id  # noqa: PLC0415 - avoids a cycle at import

    return new_event_id()


class AuditMiddleware:
    """Wrap an ASGI app: ``app = AuditMiddleware(app, client, resources=[...])``."""

    def __init__(  # noqa: PLR0913 - every setting is named at the call site
        self,
        app: ASGIApp,
        emitter: Emitter,
        *,
        resources: Sequence[Resource],
        actor: ActorResolver | None = None,
        trusted_proxies: Iterable[str] = (),
        service: str = "app",
    ) -> None:
        self.app = app
        self.emitter = emitter
        self.resources = sorted(resources, key=lambda r: len(r.prefix), reverse=True)
        self.resolve_actor = actor
        self.trusted = [ipaddress.ip_network(net, strict=False) for net in trusted_proxies]
        self.service = service
        self.failures = 0  # events that could not be emitted (logged, never silent)

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
            self._record(scope, status, capture, time.monotonic() - started)

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None) or getattr(route, "path_format", None)
        return str(path or scope.get("path", ""))

    def _match(self, template: str) -> Resource | None:
        return next((r for r in self.resources if template.startswith(r.prefix)), None)

    def _record(
        self, scope: Scope, status: int, capture: context.RequestCapture, seconds: float
    ) -> None:
        template = self._template(scope)
        resource = self._match(template)
        if resource is None:
            return
        try:
            self.emitter.emit(self._event(scope, status, capture, resource, template, seconds))
        except Exception:
            self.failures += 1
            logger.exception("trailseal: could not record %s %s", scope.get("method"), template)

    def _event(  # noqa: PLR0913, PLR0917 - the parts of one event
        self,
        scope: Scope,
        status: int,
        capture: context.RequestCapture,
        resource: Resource,
        template: str,
        seconds: float,
    ) -> dict[str, Any]:
        method = str(scope.get("method", "GET"))
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        params = scope.get("path_params") or {}
        target: dict[str, Any] = {"type": resource.type}
        if resource.id_param and resource.id_param in params:
            target["id"] = str(params[resource.id_param])[:256]
        if capture.count is not None:
            target["count"] = capture.count
        target.update(capture.resource)
        actor = capture.actor or (self.resolve_actor(scope) if self.resolve_actor else None)
        outcome = "success" if status < 400 else "denied" if status in (401, 403) else "failure"
        source: dict[str, Any] = {"service": self.service}
        if ip := self._client_ip(scope, headers):
            source["ip"] = ip
        if agent := headers.get("user-agent"):
            source["user_agent"] = agent[:4096]
        event: dict[str, Any] = {
            "id": _new_id(),
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": actor or {"id": "anonymous", "type": "user"},
            "action": resource.action or f"{resource.type}.{VERBS.get(method, method.lower())}",
            "resource": target,
            "outcome": {"result": outcome, "status": status},
            "source": source,
            "request": {
                "method": method,
                "path": template[:4096],
                "request_id": headers.get("x-request-id", "")[:256] or secrets.token_hex(8),
            },
            "context": {"labels": {"duration_us": str(int(seconds * 1e6)), **capture.labels}},
        }
        return event

    def _client_ip(self, scope: Scope, headers: dict[str, str]) -> str | None:
        """The peer address; behind trusted proxies, the nearest address they vouch for."""
        client = scope.get("client")
        if not client or not _is_ip(str(client[0])):
            return None  # a unix socket, or a test client's placeholder name
        peer = str(client[0])
        chain = [peer]
        forwarded = headers.get("x-forwarded-for")
        if forwarded and self._trusted(peer):
            chain = [part.strip() for part in forwarded.split(",") if part.strip()] + [peer]
        for address in reversed(chain):  # walk back from us while the hop is a trusted proxy
            if not self._trusted(address):
                return address if _is_ip(address) else peer
        return chain[0] if _is_ip(chain[0]) else peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
