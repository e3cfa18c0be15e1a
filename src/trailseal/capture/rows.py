"""A database row's values as event JSON, whatever the host application stored.

Change capture runs inside the application's transaction, so it must never
fail on a value the database accepted. Unlike the explicit API (which refuses
what it cannot represent, so the developer fixes the call), a row value
always gets a safe form:

- a value named in the sensitive policy is dropped (``"[dropped]"``) or
  replaced by a keyed HMAC-SHA256, so equal values can be matched without
  being revealed;
- a naive datetime keeps its wall-clock text with no zone (``2026-03-01T14:05:09``),
  as the database holds it; inventing a zone would be a guess;
- bytes and text longer than :data:`MAX_VALUE_BYTES` become their SHA-256 and
  length, so the event stays small but a change is still visible and provable;
- a value with no JSON form (a pickled object, a custom type) becomes its type
  name and a short ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from trailseal.capture.values import json_safe
from trailseal.errors import EventError

DROP = object()  # a column policy: leave the value out, record only that it changed
MAX_VALUE_BYTES = 2048


def _digest(data: bytes, kind: str) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), kind: len(data)}


def column_value(value: Any, policy: object | None = None) -> Any:  # noqa: PLR0911 - one case each
    """One column's value in an event."""
    if value is None:
        return None
    if policy is DROP:
        return "[dropped]"
    if policy is not None:
        data = bytes(value) if isinstance(value, bytes | bytearray) else str(value).encode()
        key = policy if isinstance(policy, bytes) else str(policy).encode()
        return "hmac-sha256:" + hmac.new(key, data, hashlib.sha256).hexdigest()
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return _digest(data, "bytes") if len(data) > MAX_VALUE_BYTES else json_safe(data)
    if isinstance(value, str):
        encoded = value.encode("utf-8", "backslashreplace")  # a lone surrogate is not UTF-8
        return _digest(encoded, "chars") if len(encoded) > MAX_VALUE_BYTES else encoded.decode()
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat()
    try:
        safe = json_safe(value, "$")
    except EventError:
        return {"type": type(value).__name__, "repr": repr(value)[:200]}
    if isinstance(safe, dict | list) and len(repr(safe)) > MAX_VALUE_BYTES:
        return _digest(repr(safe).encode(), "chars")  # a large JSON column
    return safe
