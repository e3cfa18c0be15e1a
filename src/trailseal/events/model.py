"""The event as applications report it (DESIGN.md, "The event").

Frozen, validated objects built only through :func:`trailseal.events.parse_event`
and :func:`trailseal.events.parse_json`. Names follow OCSF/ECS audit vocabulary.
Absent and ``null`` optional fields are the same thing and are left out of the
canonical bytes.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec

from trailseal.errors import EventError

SAFE_INT = 2**53 - 1

Int = Annotated[int, msgspec.Meta(ge=-SAFE_INT, le=SAFE_INT)]
Count = Annotated[int, msgspec.Meta(ge=0, le=SAFE_INT)]
Text = Annotated[str, msgspec.Meta(max_length=4096)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Action = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z",
        description="a dotted verb such as record.read",
    ),
]
Time = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z",
        description="RFC 3339 in UTC with a Z, at most microseconds",
    ),
]
Label = str | Int | bool | None
DETAIL_MAX_DEPTH = 32


class _Part(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    kw_only=True,
    gc=False,
):
    """Common configuration: immutable, strict, nulls omitted from the canonical form."""


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"^(?:{_OCTET}\.){{3}}{_OCTET}\Z")


@lru_cache(maxsize=4096)
def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 (dotted quad) or IPv6 address; a regex is 10x cheaper."""
    return _IPV4.match(text) is not None or (":" in text and _is_ipv6(text))


class Actor(_Part, frozen=True, gc=False):
    id: Name
    type: Literal["user", "service", "system"] | None = None
    name: Text | None = None
    roles: list[Name] | None = None
    session_id: Name | None = None
    token_id: Name | None = None
    tenant: Name | None = None
    unit: Name | None = None
    auth_method: Name | None = None
    impersonator_id: Name | None = None


class Resource(_Part, frozen=True, gc=False):
    type: Name | None = None
    id: Name | None = None
    tenant: Name | None = None
    unit: Name | None = None
    version: Name | Int | None = None
    hash: Name | None = None
    count: Count | None = None


class Outcome(_Part, frozen=True, gc=False):
    result: Literal["success", "failure", "denied"] | None = None
    status: Int | None = None
    reason: Text | None = None


class Geo(_Part, frozen=True, gc=False):
    country: Name | None = None
    region: Name | None = None
    city: Name | None = None


class Source(_Part, frozen=True, gc=False):
    ip: Name | None = None
    user_agent: Text | None = None
    geo: Geo | None = None
    host: Name | None = None
    service: Name | None = None

    def __post_init__(self) -> None:
        if self.ip is not None and not is_ip(self.ip):
            raise EventError("$.source.ip", f"{self.ip!r} is not an IPv4 or IPv6 address")


class Request(_Part, frozen=True, gc=False):
    method: Name | None = None
    path: Text | None = None
    request_id: Name | None = None


class Context(_Part, frozen=True, gc=False):
    ticket: Name | None = None
    reason: Text | None = None
    labels: dict[Name, Label] | None = None


class Event(_Part, frozen=True, gc=False):
    """One audit event. Required: ``id``, ``time``, ``actor.id``, ``action``."""

    id: Name
    time: Time
    actor: Actor
    action: Action
    resource: Resource | None = None
    outcome: Outcome | None = None
    source: Source | None = None
    request: Request | None = None
    context: Context | None = None
    detail: Any = None
    detail_commitment: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")] | None = None
    """Set only when the ledger seals the event; refused from callers."""

    def __post_init__(self) -> None:
        try:
            datetime.fromisoformat(self.time)
        except ValueError:
            raise EventError(
                "$.time", f"{self.time!r} is not a real date and time (RFC 3339 UTC)"
            ) from None
        if self.detail is not None:
            _check_detail(self.detail, "$.detail", 1)


def _check_detail(value: Any, path: str, depth: int) -> None:
    """Detail is free-form JSON without floats, at most DETAIL_MAX_DEPTH levels deep."""
    if depth > DETAIL_MAX_DEPTH:
        raise EventError(path, f"nested deeper than {DETAIL_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_detail(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _check_detail(item, f"{path}[{position}]", depth + 1)
    elif isinstance(value, float):
        raise EventError(path, f"{value!r} is a floating-point number; use an integer or a string")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > SAFE_INT:
        raise EventError(path, f"{value} is outside the exact integer range +/-(2**53 - 1)")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The identifiers and names of an event (every ``Name`` field): no control characters, so
# that a newline cannot slip past an exact rule and an escape cannot rewrite a terminal.
_NAMES = {
    "actor": ("id", "session_id", "token_id", "tenant", "unit", "auth_method", "impersonator_id"),
    "resource": ("type", "id", "tenant", "unit", "version", "hash"),
    "source": ("ip", "host", "service"),
    "request": ("method", "request_id"),
    "context": ("ticket",),
}


def check_names(event: Event) -> None:
    """Refuse control characters in the event's identifiers and names."""
    found: list[tuple[str, object]] = [("$.id", event.id)]
    for part, names in _NAMES.items():
        value = getattr(event, part)
        if value is not None:
            found += [(f"$.{part}.{name}", getattr(value, name)) for name in names]
    found += [(f"$.actor.roles[{n}]", role) for n, role in enumerate(event.actor.roles or ())]
    geo = event.source.geo if event.source else None
    if geo is not None:
        found += [(f"$.source.geo.{n}", getattr(geo, n)) for n in ("country", "region", "city")]
    labels = event.context.labels if event.context else None
    found += [("$.context.labels", key) for key in labels or ()]
    for path, value in found:
        if isinstance(value, str) and _CONTROL.search(value):
            raise EventError(path, f"{value[:60]!r} holds a control character; names may not")


EVENT_FIELDS = tuple(f for f in Event.__struct_fields__ if f != "detail_commitment")
