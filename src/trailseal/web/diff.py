"""An entry's before and after state as a list of changes, field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

_MISSING = object()


@dataclass(frozen=True)
class Change:
    path: str  # dotted, e.g. ``address.city``; list items as ``[2]``
    before: str | None  # JSON text; None where the field was absent
    after: str | None
    kind: str  # added, removed, changed or same


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for key in value:
            _flat(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix or "(value)"] = value
    return out


def _text(value: Any) -> str | None:
    return None if value is _MISSING else orjson.dumps(value).decode()


def changes(before: Any, after: Any) -> list[Change]:
    """Every leaf field of ``before`` and ``after`` (either may be None: nothing before a
    creation, nothing after a deletion), in the order they first appear."""
    if before is None and after is None:
        return []
    old = _flat(before, "", {}) if before is not None else {}
    new = _flat(after, "", {}) if after is not None else {}
    found = []
    for path in dict.fromkeys([*old, *new]):
        was, now = old.get(path, _MISSING), new.get(path, _MISSING)
        if was is _MISSING:
            kind = "added"
        elif now is _MISSING:
            kind = "removed"
        else:
            kind = "same" if was == now else "changed"
        found.append(Change(path, _text(was), _text(now), kind))
    return found
