"""What a handler knows that the middleware cannot see: who the caller turned out to be
(token or JWT checked inside the handler), how many records a list returned."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from trailseal.capture.values import safe_name

logger = logging.getLogger("trailseal.capture")


@dataclass
class RequestCapture:
    """Filled during one request; read by the middleware when the response is done."""

    actor: dict[str, Any] | None = None
    count: int | None = None
    resource: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


_current: ContextVar[RequestCapture | None] = ContextVar("trailseal_capture", default=None)


def current() -> RequestCapture | None:
    return _current.get()


def begin() -> tuple[RequestCapture, object]:
    capture = RequestCapture()
    return capture, _current.set(capture)


def end(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def set_actor(  # noqa: PLR0913 - the actor fields, by name
    actor_id: str,
    *,
    roles: list[str] | None = None,
    session_id: str | None = None,
    tenant: str | None = None,
    unit: str | None = None,
    actor_type: str = "user",
) -> None:
    """Name the caller of the current request, e.g. once the handler checked its token."""
    capture = _current.get()
    if capture is None:
        return
    extra = {"roles": roles, "session_id": session_id, "tenant": tenant, "unit": unit}
    capture.actor = {"id": actor_id, "type": actor_type} | {k: v for k, v in extra.items() if v}


def set_count(count: int) -> None:
    """How many records the current request returned (list and export endpoints).
    A value that is not a whole number is ignored with a warning: the request goes on."""
    capture = _current.get()
    if capture is None:
        return
    try:
        capture.count = min(max(0, int(count)), 2**53 - 1)
    except (TypeError, ValueError, OverflowError):
        logger.warning("trailseal: set_count(%r) is not a count; the event will have none", count)


def set_resource(
    *,
    resource_id: str | None = None,
    unit: str | None = None,
    tenant: str | None = None,
) -> None:
    """What the handler learned about the record the request touched: its id when the
    route does not carry it, the unit that owns it, its tenant."""
    capture = _current.get()
    if capture is None:
        return
    fields = {"id": resource_id, "unit": unit, "tenant": tenant}
    capture.resource.update({k: safe_name(v) for k, v in fields.items() if v})
