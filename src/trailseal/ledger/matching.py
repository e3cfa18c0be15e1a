"""Whether an entry meets a parsed query: the one definition of what each qualifier means.

The stores narrow a search with SQL over the search index, which no hash covers; every
candidate is then checked here against the entry's own (hashed) bytes, so an edited
index row can hide nothing and show nothing it should not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from trailseal.access.tenants import entry_tenant
from trailseal.ledger.search import fixed_width
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

Entry = Mapping[str, Any]  # a decoded entry: {"event", "index", "received_at", ...}


def _part(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = event.get(name)
    return part if isinstance(part, dict) else {}


def _units(entry: Entry) -> list[object]:
    event = entry["event"]
    units = (_part(event, "actor").get("unit"), _part(event, "resource").get("unit"))
    return [unit for unit in units if unit]


def _roles(entry: Entry) -> list[object]:
    roles = _part(entry["event"], "actor").get("roles")
    return list(roles) if isinstance(roles, list) else []


def _getter(*path: str) -> Callable[[Entry], object]:
    first, *rest = path

    def get(entry: Entry) -> object:
        value: Any = entry["event"].get(first)
        for name in rest:
            value = value.get(name) if isinstance(value, dict) else None
        return value

    return get


def _listed(get: Callable[[Entry], object]) -> Callable[[Entry], list[object]]:
    """A single-valued getter as a reader: its value in a list, or none when absent."""

    def read(entry: Entry) -> list[object]:
        value = get(entry)
        return [] if value is None else [value]

    return read


def _field(*path: str) -> Callable[[Entry], list[object]]:
    return _listed(_getter(*path))


# The qualifiers with at most one value per entry, read straight (None when absent):
# matching them needs no list (a search of a month's log reads a million entries).
GETTERS: dict[str, Callable[[Entry], object]] = {
    "actor": _getter("actor", "id"),
    "session": _getter("actor", "session_id"),
    "tenant": lambda entry: entry_tenant(entry["event"]) or None,
    "action": _getter("action"),
    "resource": _getter("resource"),
    "outcome": _getter("outcome", "result"),
    "status": _getter("outcome", "status"),
    "ip": _getter("source", "ip"),
    "country": _getter("source", "geo", "country"),
    "ticket": _getter("context", "ticket"),
    "index": lambda entry: entry["index"],
    "time": lambda entry: fixed_width(entry["event"]["time"]),
    "received": lambda entry: fixed_width(entry["received_at"]),
    "impersonator": _getter("actor", "impersonator_id"),
}

# What each qualifier (and has:/no: field) reads from an entry: every value it has
# there, none when absent.
READERS: dict[str, Callable[[Entry], list[object]]] = {
    **{name: _listed(get) for name, get in GETTERS.items()},
    "role": _roles,
    "unit": _units,
    "detail": lambda entry: [1] if "detail_commitment" in entry["event"] else [],
}


Predicate = Callable[[Entry], bool]
Test = Callable[[object], bool]


def _text(wanted: Exact | Prefix) -> Test:
    text = wanted.text
    if isinstance(wanted, Exact):
        return lambda found: found == text  # str == only for equal strings
    return lambda found: isinstance(found, str) and found.startswith(text)


def _resource(wanted: ResourceValue) -> Test:
    kind = _text(wanted.type)
    ident = None if wanted.id is None else _text(wanted.id)

    def test(found: object) -> bool:
        if not isinstance(found, dict) or not kind(found.get("type")):
            return False
        return ident is None or ident(found.get("id"))

    return test


def _address(wanted: Network) -> Test:
    network = wanted.network

    def test(found: object) -> bool:
        try:
            return isinstance(found, str) and ipaddress.ip_address(found) in network
        except ValueError:  # an address the event schema let through that is not an IP
            return False

    return test


def _between(wanted: Between) -> Test:
    """Numbers against numbers, times (fixed-width text) against times."""
    low, high = wanted.low, wanted.high
    bound = low if low is not None else high
    if bound is None:
        return lambda found: isinstance(found, int | str)
    kind = type(bound)

    def test(found: object) -> bool:
        if type(found) is not kind:  # never a bool for an int, nor text for a number
            return False
        return (low is None or found >= low) and (high is None or found < high)  # type: ignore[operator]

    return test


def _value(wanted: Value) -> Test:
    if isinstance(wanted, Exact | Prefix):
        return _text(wanted)
    if isinstance(wanted, ResourceValue):
        return _resource(wanted)
    if isinstance(wanted, Network):
        return _address(wanted)
    return _between(wanted)


def value_matches(wanted: Value, found: object) -> bool:
    return _value(wanted)(found)


def _match(node: Match) -> Predicate:
    get = GETTERS.get(node.qualifier)
    if get is not None and len(node.values) == 1:
        test = _value(node.values[0])
        return lambda entry: test(get(entry))  # every test is False for None
    read = READERS[node.qualifier]
    if all(isinstance(value, Exact) for value in node.values):
        wanted = frozenset(value.text for value in node.values)  # type: ignore[union-attr]
        return lambda entry: any(isinstance(f, str) and f in wanted for f in read(entry))
    tests = [_value(value) for value in node.values]
    return lambda entry: any(test(found) for found in read(entry) for test in tests)


def _free_text(text: str) -> Predicate:
    needle = text.casefold()
    readers = [_field(*path.split(".")) for path in TEXT_FIELDS]

    def test(entry: Entry) -> bool:
        return any(
            isinstance(found, str) and needle in found.casefold()
            for read in readers
            for found in read(entry)
        )

    return test


@lru_cache(maxsize=256)
def compiled(node: Node) -> Predicate:
    """The query's tree as one function of a decoded entry, built once per tree."""
    if isinstance(node, Match):
        return _match(node)
    if isinstance(node, Presence):
        read, present = READERS[node.field], node.present
        return lambda entry: bool(read(entry)) == present
    if isinstance(node, FreeText):
        return _free_text(node.text)
    if isinstance(node, Not):
        inner = compiled(node.node)
        return lambda entry: not inner(entry)
    parts = [compiled(part) for part in node.nodes]
    if isinstance(node, And):
        return lambda entry: all(part(entry) for part in parts)
    return lambda entry: any(part(entry) for part in parts)


def entry_matches(node: Node | None, entry: Entry) -> bool:
    """Whether the decoded entry meets the query's tree (None: every entry)."""
    return node is None or compiled(node)(entry)
