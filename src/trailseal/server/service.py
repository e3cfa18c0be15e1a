"""The service's logic, apart from HTTP: who may do what, for which tenant, and the
entries the log writes about its own use (every read, every principal change,
every refused or failed authentication, start and stop)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import msgspec

from trailseal.access import Decision, Permission, Principal, PrincipalStore, decide
from trailseal.errors import (
    ConfigError,
    EventError,
    StorageError,
    TrailsealError,
    VerificationError,
)
from trailseal.events import Event, EventLimits, event_from_mapping, parse_event
from trailseal.ledger import EntryView, Ledger
from trailseal.ledger.entry import utc_now
from trailseal.server.metrics import Metrics
from trailseal.server.problems import Problem, pointer
from trailseal.server.ratelimit import RateLimiter

FAILURES_LOGGED_PER_MINUTE = 5  # per source; beyond that they are counted, then logged once


def entry_tenant(event: dict[str, Any]) -> str | None:
    """The tenant an entry belongs to: its resource's, else its actor's."""
    resource = event.get("resource") or {}
    return resource.get("tenant") or (event.get("actor") or {}).get("tenant")


def event_tenant(event: Event) -> str | None:
    return (event.resource.tenant if event.resource else None) or event.actor.tenant


@dataclass
class _Flood:
    window: float = 0.0
    logged: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class Limits:
    """Request bounds; each refusal names the limit."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_batch: int = 10_000
    max_page: int = 1000
    rate: float = 200.0  # requests a second per principal
    burst: int = 400


@dataclass
class Service:
    """One log served over HTTP."""

    ledger: Ledger
    principals: PrincipalStore
    limits: Limits = field(default_factory=Limits)
    metrics: Metrics = field(default_factory=Metrics)
    rates: RateLimiter | None = None
    pool: Executor | None = None  # worker processes that prepare large batches
    instance: str = field(default_factory=lambda: secrets.token_hex(4))
    _floods: dict[str, _Flood] = field(default_factory=dict)
    _flood_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the log's own entries -------------------------------------------------

    def record(  # noqa: PLR0913 - the fields of an audit event, by name
        self,
        action: str,
        actor: Principal | None,
        *,
        source_ip: str | None = None,
        resource: dict[str, Any] | None = None,
        result: str = "success",
        reason: str | None = None,
        labels: dict[str, str | int] | None = None,
    ) -> int:
        """Append one entry about the service's own use; returns its index."""
        raw: dict[str, Any] = {
            "id": f"svc-{self.instance}-{secrets.token_hex(8)}",
            "time": utc_now(),
            "actor": (
                {"id": actor.id, "type": "user", "name": actor.name, "roles": [str(actor.role)]}
                | ({"tenant": actor.tenant} if actor.tenant != "*" else {})
                if actor
                else {"id": "trailseal", "type": "system"}
            ),
            "action": action,
            "outcome": {"result": result} | ({"reason": reason[:4096]} if reason else {}),
            "source": {"ip": source_ip, "service": "trailseal"}
            if source_ip
            else {"service": "trailseal"},
        }
        if resource:
            raw["resource"] = resource
        if labels:
            raw["context"] = {"labels": {key: str(value)[:256] for key, value in labels.items()}}
        try:
            return self.ledger.append([event_from_mapping(raw)]).indexes[0]
        except (StorageError, ConfigError, VerificationError) as exc:
            # Fail closed: what the log cannot record (a read of it, say) does not happen.
            raise Problem(
                503,
                "Cannot record",
                f"this request must be recorded in the log and the log cannot append: {exc}",
                headers={"Retry-After": "5"},
            ) from None

    def __post_init__(self) -> None:
        if self.rates is None:
            self.rates = RateLimiter(self.limits.rate, self.limits.burst)

    def authorize(self, principal: Principal, permission: Permission, ip: str | None) -> Decision:
        assert self.rates is not None
        self.rates.take(principal.id)
        decision = decide(principal.role, permission)
        if not decision.allowed:
            self.record(
                "auth.denied",
                principal,
                source_ip=ip,
                result="denied",
                reason=decision.reason,
                labels={"permission": str(permission)},
            )
            raise Problem(403, "Forbidden", decision.reason)
        return decision

    def authentication_failed(self, ip: str, why: str) -> None:
        """Record a failed authentication; a burst from one source is counted, not flooded."""
        now = time.monotonic()
        with self._flood_lock:
            flood = self._floods.setdefault(ip, _Flood(window=now))
            summary = 0
            if now - flood.window >= 60:
                summary, flood.window, flood.logged, flood.suppressed = flood.suppressed, now, 0, 0
            flood.logged += 1
            log_this = flood.logged <= FAILURES_LOGGED_PER_MINUTE
            if not log_this:
                flood.suppressed += 1
        if summary:
            self._flood_summary(ip, summary)
        if log_this:
            self.record("auth.failure", None, source_ip=ip, result="failure", reason=why)

    def _flood_summary(self, ip: str, count: int) -> None:
        self.record(
            "auth.failure",
            None,
            source_ip=ip,
            result="failure",
            reason=f"{count} more failed authentications from this source in one minute",
            resource={"type": "authentication", "count": count},
        )

    def flush_floods(self) -> None:
        with self._flood_lock:
            pending = [(ip, f.suppressed) for ip, f in self._floods.items() if f.suppressed]
            self._floods.clear()
        for ip, count in pending:
            self._flood_summary(ip, count)

    # -- tenants -------------------------------------------------------------

    def check_writes(
        self, principal: Principal, events: Sequence[tuple[int, Event]]
    ) -> list[dict[str, Any]]:
        """Problems (by position) for events outside the principal's tenant."""
        if principal.tenant == "*":
            return []
        return [
            {
                "pointer": f"/{position}/resource/tenant",
                "detail": f"a principal of tenant {principal.tenant!r} may only write that "
                "tenant's events; name it in resource.tenant or actor.tenant",
            }
            for position, event in events
            if event_tenant(event) != principal.tenant
        ]

    def visible(self, principal: Principal, view: EntryView) -> bool:
        return principal.sees(entry_tenant(view.entry["event"]))

    def get_visible(self, principal: Principal, index: int) -> EntryView:
        """The entry, or 404 whether it is missing or belongs to another tenant."""
        try:
            view = self.ledger.get(index)
        except TrailsealError:
            view = None
        if view is None or not self.visible(principal, view):
            raise Problem(404, "Not found", f"no entry {index} visible to this principal")
        return view


_JSON_TYPES = ("", "application/json")
_LINES_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_ONE = msgspec.json.Decoder(msgspec.Raw)


def parse_body(raw: bytes, content_type: str, max_count: int) -> list[bytes]:
    """A JSON object, a JSON array, or JSON Lines, as the raw bytes of each event.

    Events are not parsed here, only split, so each is parsed once, by the
    event parser, and a malformed one is reported at its position.
    """
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media not in _JSON_TYPES + _LINES_TYPES:
        raise Problem(
            415,
            "Unsupported media type",
            f"{media!r} is not accepted; send application/json or application/x-ndjson",
        )
    if media in _LINES_TYPES:
        items = [line for line in raw.splitlines() if line.strip()]
    elif not raw.strip():
        items = []
    else:
        try:
            decoded = (_RAW_LIST if raw.lstrip()[:1] == b"[" else _RAW_ONE).decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError) as exc:
            raise Problem(400, "Malformed JSON", f"the body is not JSON: {exc}") from None
        items = [bytes(item) for item in decoded] if isinstance(decoded, list) else [raw]
    if not items:
        raise Problem(400, "Empty batch", "the body holds no events")
    if len(items) > max_count:
        raise Problem(
            413, "Batch too large", f"{len(items)} events in one request; the limit is {max_count}"
        )
    return items


def validate_batch(
    items: list[bytes], limits: EventLimits
) -> tuple[list[tuple[int, Event]], list[dict[str, Any]]]:
    """Every item as (its position, the event), or its problem with a JSON pointer."""
    events: list[tuple[int, Event]] = []
    errors: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        try:
            events.append((position, parse_event(item, limits)))
        except EventError as exc:
            errors.append({"pointer": f"/{position}{pointer(exc.field)}", "detail": exc.message})
    return events, errors
