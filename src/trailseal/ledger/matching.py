"""Whether an entry meets a parsed query: the one definition of what each qualifier means.

The stores narrow a search with SQL over the search index, which no hash covers; every
candidate is then checked here against the entry's own (hashed) bytes, so an edited
index row can hide nothing and show nothing it should not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from trailseal.access.tenants import entry_tenant
from trailseal.query import (
    TEXT_FIELDS,
    And,
    Between,
    Exact,
    FreeText,
    Match,
    Network,
    Node,
    Not,
    Prefix,
    Presence,
    ResourceValue,
    Value,
)
from trailseal.query.times import TIME_FORMAT

Entry = Mapping[str, Any]  # a decoded entry: {"event", "index", "received_at", ...}


def _part(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = event.get(name)
    return part if isinstance(part, Mapping) else {}


def fixed_width(time: str) -> str:
    """A stored RFC 3339 UTC time (0-6 fraction digits) as fixed-width text."""
    if len(time) == len("2026-01-01T00:00:00.000000Z"):
        return time
    seconds, _, fraction = time[:-1].partition(".")
    return f"{seconds}.{fraction:0<6}Z"


def _time(entry: Entry) -> list[object]:
    return [fixed_width(entry["event"]["time"])]


def _received(entry: Entry) -> list[object]:
    return [fixed_width(entry["received_at"])]


def _units(entry: Entry) -> list[object]:
    event = entry["event"]
    units = (_part(event, "actor").get("unit"), _part(event, "resource").get("unit"))
    return [unit for unit in units if unit]


def _roles(entry: Entry) -> list[object]:
    roles = _part(entry["event"], "actor").get("roles")
    return list(roles) if isinstance(roles, list) else []


def _field(*path: str) -> Callable[[Entry], list[object]]:
    def read(entry: Entry) -> list[object]:
        value: Any = entry["event"]
        for name in path:
            value = value.get(name) if isinstance(value, Mapping) else None
        return [] if value is None else [value]

    return read


# What each qualifier reads from an entry: every value it has there (none when absent).
READERS: dict[str, Callable[[Entry], list[object]]] = {
    "actor": _field("actor", "id"),
    "role": _roles,
    "session": _field("actor", "session_id"),
    "tenant": lambda entry: [t] if (t := entry_tenant(entry["event"])) else [],
    "unit": _units,
    "action": _field("action"),
    "resource": _field("resource"),
    "outcome": _field("outcome", "result"),
    "status": _field("outcome", "status"),
    "ip": _field("source", "ip"),
    "country": _field("source", "geo", "country"),
    "ticket": _field("context", "ticket"),
    "index": lambda entry: [entry["index"]],
    "time": _time,
    "received": _received,
    "detail": lambda entry: [1] if "detail_commitment" in entry["event"] else [],
    "impersonator": _field("actor", "impersonator_id"),
}


def _text(wanted: Exact | Prefix, found: object) -> bool:
    if not isinstance(found, str):
        return False
    return found == wanted.text if isinstance(wanted, Exact) else found.startswith(wanted.text)


def _resource(wanted: ResourceValue, found: object) -> bool:
    if not isinstance(found, Mapping) or not _text(wanted.type, found.get("type")):
        return False
    return wanted.id is None or _text(wanted.id, found.get("id"))


def _address(wanted: Network, found: object) -> bool:
    try:
        return isinstance(found, str) and ipaddress.ip_address(found) in wanted.network
    except ValueError:  # an address the event schema let through that is not an IP
        return False


def _between(wanted: Between, found: object) -> bool:
    """Numbers against numbers, times (fixed-width text) against times."""
    low, high = wanted.low, wanted.high
    bound = low if low is not None else high
    if bound is None:
        return isinstance(found, int | str)
    if isinstance(found, bool) or type(found) is not type(bound):
        return False
    return (low is None or found >= low) and (high is None or found < high)  # type: ignore[operator]


def value_matches(wanted: Value, found: object) -> bool:
    if isinstance(wanted, Exact | Prefix):
        return _text(wanted, found)
    if isinstance(wanted, ResourceValue):
        return _resource(wanted, found)
    if isinstance(wanted, Network):
        return _address(wanted, found)
    return _between(wanted, found)


def _free_text(text: str, entry: Entry) -> bool:
    needle = text.casefold()
    for path in TEXT_FIELDS:
        for found in _field(*path.split("."))(entry):
            if isinstance(found, str) and needle in found.casefold():
                return True
    return False


def entry_matches(node: Node | None, entry: Entry) -> bool:  # noqa: PLR0911 - one per kind
    """Whether the decoded entry meets the query's tree (None: every entry)."""
    if node is None:
        return True
    if isinstance(node, Match):
        found = READERS[node.qualifier](entry)
        return any(value_matches(value, item) for value in node.values for item in found)
    if isinstance(node, Presence):
        return bool(READERS[node.field](entry)) == node.present
    if isinstance(node, FreeText):
        return _free_text(node.text, entry)
    if isinstance(node, Not):
        return not entry_matches(node.node, entry)
    if isinstance(node, And):
        return all(entry_matches(part, entry) for part in node.nodes)
    return any(entry_matches(part, entry) for part in node.nodes)


__all__ = ["READERS", "TIME_FORMAT", "entry_matches", "fixed_width", "value_matches"]
