"""Canonical bytes: RFC 8785 (JSON Canonicalization Scheme) for event values.

Events hold only strings, integers within the IEEE-754 safe range, booleans,
null, arrays and objects, so JCS reduces to: shortest escapes, UTF-8, no
whitespace, and object keys sorted by their UTF-16 code units. orjson emits
exactly that, except that it sorts keys by code point; the two orders differ
only between characters at or above U+E000 and astral-plane characters
(surrogate pairs sort below U+E000 in UTF-16). Those are rare in audit data,
so the fast path checks the output for any such character and only then
re-sorts in pure Python.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson

from trailseal.errors import EventError

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
# UTF-8 lead bytes of U+E000..U+FFFF (0xEE, 0xEF) and of astral characters (0xF0..0xF4).
_ORDER_MAY_DIFFER = re.compile(rb"[\xee-\xf4]")


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _utf16_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _utf16_sorted(value[k]) for k in sorted(value, key=_utf16_key)}
    if isinstance(value, list):
        return [_utf16_sorted(item) for item in value]
    return value


_STRUCT_ENCODER = msgspec.json.Encoder(order="sorted")


def canonical_struct(value: msgspec.Struct) -> bytes:
    """RFC 8785 bytes of a validated struct (fields with None left out).

    msgspec escapes strings exactly as RFC 8785 does and sorts keys by code
    point; the same check as in :func:`canonical` catches the rare keys where
    that differs from UTF-16 order.
    """
    out = _STRUCT_ENCODER.encode(value)
    if out.isascii() or _ORDER_MAY_DIFFER.search(out) is None:
        return out
    return canonical(msgspec.to_builtins(value))


def canonical(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value`` (no floats; integers within +/-(2**53 - 1)).

    Raises :class:`EventError` for a value JCS cannot represent exactly here.
    """
    try:
        out = orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise EventError("$", f"cannot be canonicalized: {exc}") from None
    if out.isascii() or _ORDER_MAY_DIFFER.search(out) is None:
        return out
    return orjson.dumps(_utf16_sorted(value), option=orjson.OPT_STRICT_INTEGER)
