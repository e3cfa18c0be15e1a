"""Building one audit event from one HTTP request, whatever the framework."""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from trailseal.capture.context import RequestCapture
from trailseal.capture.values import Clock, now, safe_name, stamp
from trailseal.errors import EventError
from trailseal.events import event_from_mapping

logger = logging.getLogger("trailseal.capture")

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


@dataclass(frozen=True)
class HttpRequest:
    """What the recorder needs to know of one finished request."""

    method: str
    template: str
    headers: Mapping[str, str]  # lower-case names
    client: str | None
    params: Mapping[str, Any]
    status: int
    seconds: float


_ACTOR_FIELDS = (
    "name",
    "session_id",
    "token_id",
    "tenant",
    "unit",
    "auth_method",
    "impersonator_id",
)


def safe_actor(raw: object) -> dict[str, Any] | None:
    """An actor from the host application (a resolver's answer, ``set_actor``) in a form
    the log accepts: known fields only, text of at most 256 characters, roles as text."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        return {"id": safe_name(raw) or "unknown", "type": "user"}
    actor: dict[str, Any] = {"id": safe_name(raw.get("id") or "") or "unknown"}
    kind = raw.get("type")
    actor["type"] = kind if kind in ("user", "service", "system") else "user"
    roles = raw.get("roles")
    if isinstance(roles, list | tuple | set | frozenset):
        actor["roles"] = sorted(safe_name(role) for role in roles if str(role))[:64]
    for name in _ACTOR_FIELDS:
        if (value := raw.get(name)) not in (None, ""):
            actor[name] = safe_name(value)
    return actor


def _valid_or_repaired(event: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The event if the log would accept it; else the same request's event without the
    parts the host supplied, saying why, so a request is never left unrecorded."""
    try:
        event_from_mapping(event)
    except EventError as exc:
        problems.append(f"{exc.field}: {exc.message}"[:256])
        event["resource"] = {"type": event["resource"]["type"]}
        event["context"] = {"labels": {}}
    if problems:
        event.setdefault("context", {}).setdefault("labels", {})["capture_problem"] = "; ".join(
            problems
        )[:256]
        event_from_mapping(event)
    return event


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Recorder:
    """Matches requests to resources and emits their events; shared by the middlewares."""

    def __init__(
        self,
        emitter: Emitter,
        resources: Sequence[Resource],
        trusted_proxies: Iterable[str],
        service: str,
        clock: Clock = now,
    ) -> None:
        self.emitter = emitter
        self.resources = sorted(resources, key=lambda r: len(r.prefix), reverse=True)
        self.trusted = [ipaddress.ip_network(net, strict=False) for net in trusted_proxies]
        self.service = service
        self.clock = clock
        self.failures = 0  # events that could not be emitted (logged, never silent)

    def record(
        self,
        request: HttpRequest,
        capture: RequestCapture,
        resolve_actor: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        resource = next((r for r in self.resources if request.template.startswith(r.prefix)), None)
        if resource is None:
            return
        problems: list[str] = []
        actor = capture.actor
        if actor is None and resolve_actor is not None:
            try:
                actor = resolve_actor()
            except Exception as exc:  # noqa: BLE001 - the host's resolver must not fail the request
                problems.append(f"actor resolver failed: {type(exc).__name__}")
        try:
            event = self.event(request, capture, resource, safe_actor(actor))
            event = _valid_or_repaired(event, problems)
            self.emitter.emit(event)
        except Exception:
            self.failures += 1
            logger.exception("trailseal: could not record %s %s", request.method, request.template)

    def event(
        self,
        request: HttpRequest,
        capture: RequestCapture,
        resource: Resource,
        actor: dict[str, Any] | None,
    ) -> dict[str, Any]:
        from trailseal.client import new_event_id  # noqa: PLC0415 - avoids an import cycle

        target: dict[str, Any] = {"type": resource.type}
        if resource.id_param and resource.id_param in request.params:
            target["id"] = safe_name(request.params[resource.id_param])
        if capture.count is not None:
            target["count"] = capture.count
        target.update(capture.resource)
        status = request.status
        outcome = "success" if status < 400 else "denied" if status in (401, 403) else "failure"
        source: dict[str, Any] = {"service": self.service}
        if ip := self.client_ip(request.client, request.headers.get("x-forwarded-for")):
            source["ip"] = ip
        if agent := request.headers.get("user-agent"):
            source["user_agent"] = agent[:4096]
        method = request.method
        return {
            "id": new_event_id(),
            "time": stamp(self.clock),
            "actor": actor or {"id": "anonymous", "type": "user"},
            "action": resource.action or f"{resource.type}.{VERBS.get(method, method.lower())}",
            "resource": target,
            "outcome": {"result": outcome, "status": status},
            "source": source,
            "request": {
                "method": method,
                "path": request.template[:4096],
                "request_id": safe_name(request.headers.get("x-request-id", ""))
                or secrets.token_hex(8),
            },
            "context": {
                "labels": {"duration_us": str(int(request.seconds * 1e6)), **capture.labels}
            },
        }

    def client_ip(self, peer: str | None, forwarded: str | None) -> str | None:
        """The peer address; behind trusted proxies, the nearest address they vouch for."""
        if peer is None or not _is_ip(peer):
            return None  # a unix socket, or a test client's placeholder name
        chain = [peer]
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


App = TypeVar("App")
Raw = TypeVar("Raw")  # what a framework's actor resolver receives: an ASGI scope, a WSGI environ


class RecordingMiddleware(Generic[App, Raw]):
    """What the ASGI and WSGI middlewares share: the wrapped app, the recorder and the
    actor resolver; each subclass only turns its framework's request into an HttpRequest."""

    def __init__(  # noqa: PLR0913 - every setting is named at the call site
        self,
        app: App,
        emitter: Emitter,
        *,
        resources: Sequence[Resource],
        actor: Callable[[Raw], dict[str, Any] | None] | None = None,
        trusted_proxies: Iterable[str] = (),
        service: str = "app",
        clock: Clock = now,
    ) -> None:
        self.app = app
        self.recorder = Recorder(emitter, resources, trusted_proxies, service, clock)
        self.resolve_actor = actor

    @property
    def failures(self) -> int:
        """Events that could not be emitted (each was logged)."""
        return self.recorder.failures
