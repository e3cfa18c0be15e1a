"""Names and texts taken from another system's record into an event's own fields.

The record itself is kept whole in the detail; what goes into the event's bounded fields
(names of 256 characters, texts of 4096, actions of ``[A-Za-z0-9_-]`` parts) is cut to
fit, with control characters and lone surrogates replaced.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]|[\ud800-\udfff]")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def fit(value: Any, limit: int = 256) -> str | None:
    """A text fit for one of the event's names (or, with ``limit=4096``, texts); None
    for nothing usable (absent, empty, an object, a boolean)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", str(value)).strip()
    return text[:limit] or None


def clean(value: str) -> bool:
    """Whether ``value`` holds no control character (usable as an event id as it is)."""
    return _CONTROL.search(value) is None


def part(value: Any, limit: int) -> str:
    """One dotted part of an action: the characters an action allows, ``_`` for others."""
    return (_UNSAFE.sub("_", str(value)).strip("_") or "_")[:limit]
