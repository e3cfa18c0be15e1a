"""Turning what host applications hand us into event JSON: safely, or refused clearly.

Events hold no floating-point numbers and no binary, so: floats and decimals
become strings (exactly as Python prints them), bytes become
``{"base64": ...}``, aware datetimes become RFC 3339 UTC, dates ISO 8601,
UUIDs and enums their text. A naive datetime is refused (its time zone would
be a guess), and so is anything else with no JSON form, naming where it was.
"""

from __future__ import annotations

import base64
import enum
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from trailseal.errors import EventError

SAFE_INT = 2**53 - 1


Clock = Callable[[], datetime]  # when an event happened; datetime.now(UTC) unless told


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe_name(value: object, limit: int = 256) -> str:
    """A host value as an event name or identifier: text, its control characters written
    out as escapes (the log refuses them raw), at most ``limit`` characters."""
    text = str(value)
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    return text[:limit]


def now() -> datetime:
    return datetime.now(UTC)


def stamp(clock: Clock) -> str:
    """The clock's time as an event's ``time`` (RFC 3339 UTC, microseconds)."""
    moment = clock()
    if moment.tzinfo is None:
        raise EventError("$.time", "the capture clock returned a datetime without a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("a datetime without a time zone; make it aware (e.g. UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Order matters: bool before int (a bool is an int), datetime before date.
_LEAVES: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    ((str, bool, type(None)), lambda v: v),
    (int, lambda v: v if abs(v) <= SAFE_INT else str(v)),
    ((float, Decimal), str),
    ((bytes, bytearray, memoryview), lambda v: {"base64": base64.b64encode(bytes(v)).decode()}),
    (datetime, _datetime),
    (date, lambda v: v.isoformat()),
    (enum.Enum, lambda v: str(v.value)),
    (uuid.UUID, str),
)


def json_safe(value: Any, path: str = "$.detail", depth: int = 0) -> Any:
    """``value`` as event JSON, or EventError naming the first thing that has no form."""
    if depth > 32:
        raise EventError(path, "nested deeper than 32 levels")
    for kinds, convert in _LEAVES:
        if isinstance(value, kinds):
            try:
                return convert(value)
            except ValueError as exc:
                raise EventError(path, str(exc)) from None
    if isinstance(value, Mapping):
        return {
            str(key): json_safe(item, f"{path}.{key}", depth + 1) for key, item in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [json_safe(item, f"{path}[{n}]", depth + 1) for n, item in enumerate(items)]
    raise EventError(path, f"a {type(value).__name__} has no JSON form; pass a str or a dict")
