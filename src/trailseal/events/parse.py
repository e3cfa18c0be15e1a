"""Parsing at the boundary: bytes or mappings in, frozen :class:`Event` out."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from trailseal.errors import EventError
from trailseal.events.model import EVENT_FIELDS, Event, check_names

DEFAULT_MAX_EVENT_BYTES = 64 * 1024

_MSGSPEC_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")
_PATTERN_HINTS = {
    "$.time": "must be RFC 3339 in UTC ending in Z with at most 6 fractional digits, "
    "e.g. 2026-03-01T14:05:09.123456Z",
    "$.action": "must be a dotted verb of letters, digits, '_' and '-', e.g. record.read",
}
_CHOICES = {
    "$.actor.type": "user, service or system",
    "$.outcome.result": "success, failure or denied",
}


@dataclass(frozen=True)
class EventLimits:
    """Bounds on one event; the size is of its JSON text as received."""

    max_bytes: int = DEFAULT_MAX_EVENT_BYTES

    def __post_init__(self) -> None:
        if self.max_bytes < 256:
            raise ValueError(f"max_bytes must be at least 256, not {self.max_bytes}")


_DECODER = msgspec.json.Decoder(Event)


def _translate(exc: msgspec.ValidationError) -> EventError:
    match = _MSGSPEC_ERROR.match(str(exc))
    message, path = (match["message"], match["path"] or "$") if match else (str(exc), "$")
    unknown = _UNKNOWN_FIELD.match(message)
    if unknown:
        field = f"{path}.{unknown['name']}"
        if path == "$":
            accepted = ", ".join(EVENT_FIELDS)
            return EventError(
                field,
                f"unknown field; an event has only {accepted} "
                "(free-form data goes in context.labels or detail)",
            )
        return EventError(field, "unknown field")
    if message.startswith("Object missing required field"):
        name = message.rsplit("`", 2)[-2]
        return EventError(f"{path}.{name}", "required field is missing")
    if message.startswith("Invalid enum value") and path in _CHOICES:
        return EventError(
            path, f"{message.removeprefix('Invalid enum value ')} is not one of {_CHOICES[path]}"
        )
    if "matching regex" in message and path in _PATTERN_HINTS:
        return EventError(path, _PATTERN_HINTS[path])
    return EventError(path, message)


def _unsealed(event: Event) -> Event:
    if event.detail_commitment is not None:
        raise EventError(
            "$.detail_commitment",
            "unknown field; trailseal computes the commitment, send the detail itself",
        )
    return event


# An integer of 19 digits or more may be past 64 bits, which orjson reads as a float
# (inexact); the match may also be inside a string, which only costs a slower parse.
_BIG_INTEGER = re.compile(rb"[-\[:,]\s*-?\d{19}")


def exact_json(text: bytes | str) -> Any:
    """A JSON value read exactly: orjson, or the standard library for what orjson reads
    inexactly or refuses and JSON allows (integers past 64 bits, lone surrogates).
    ValueError for text that is not JSON."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _BIG_INTEGER.search(raw):
        return json.loads(text)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(text)


def event_from_mapping(value: Any) -> Event:
    """Validate an already-decoded JSON value as an event."""
    if not isinstance(value, Mapping):
        raise EventError("$", f"an event is a JSON object, not {type(value).__name__}")
    try:
        event = _unsealed(msgspec.convert(value, Event))
    except msgspec.ValidationError as exc:
        raise _translate(exc) from None
    check_names(event)
    return event


def parse_event(data: bytes | str, limits: EventLimits | None = None) -> Event:
    """Parse one event from JSON text, enforcing the size limit first."""
    limits = limits or EventLimits()
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > limits.max_bytes:
        raise EventError("$", f"event is {len(raw)} bytes; the limit is {limits.max_bytes} bytes")
    try:
        event = _unsealed(_DECODER.decode(raw))
    except msgspec.ValidationError as exc:
        raise _translate(exc) from None
    except RecursionError:
        raise EventError("$", "JSON nested too deeply") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    else:
        if b"\\" in raw:  # JSON holds a control character only as an escape
            check_names(event)
        return event
    # msgspec's decode errors are terse; orjson names the line and column.
    try:
        value = orjson.loads(raw)
    except RecursionError:
        raise EventError("$", "JSON nested too deeply") from None
    except orjson.JSONDecodeError as exc:
        raise EventError("$", f"malformed JSON: {exc}") from None
    return event_from_mapping(value)
