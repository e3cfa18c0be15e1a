"""Counts of search results by one field (``search --count-by actor``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from trailseal.errors import QueryError
from trailseal.ledger.matching import READERS, Entry
from trailseal.ledger.search import fixed_width

_UNCOUNTED = ("index", "time", "received", "detail", "impersonator")


def _resource(entry: Entry) -> list[object]:
    resource = entry["event"].get("resource")
    if not isinstance(resource, dict) or not resource.get("type"):
        return []
    return [f"{resource['type']}/{resource['id']}" if resource.get("id") else resource["type"]]


def _resource_type(entry: Entry) -> list[object]:
    resource = entry["event"].get("resource")
    return [resource.get("type")] if isinstance(resource, dict) else []


def _time_part(length: int) -> Callable[[Entry], list[object]]:
    return lambda entry: [fixed_width(entry["event"]["time"])[:length]]


# Every field a search can be counted by, and what it reads from an entry.
COUNTERS: dict[str, Callable[[Entry], list[object]]] = {
    **{name: read for name, read in READERS.items() if name not in _UNCOUNTED},
    "resource": _resource,
    "resource_type": _resource_type,
    "month": _time_part(7),
    "day": _time_part(10),
    "hour": _time_part(13),
}


def check_field(field: str) -> str:
    if field not in COUNTERS:
        raise QueryError(
            field, 0, f"cannot count by {field!r}; count by one of {', '.join(COUNTERS)}"
        )
    return field


@dataclass(frozen=True)
class Counts:
    """``(value, count)`` pairs, most frequent first (None: entries without the field),
    and how many entries were counted."""

    field: str
    values: list[tuple[Any, int]]
    total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "counts": [{"value": value, "count": count} for value, count in self.values],
            "total": self.total,
        }


def tally(entries: Iterable[Entry], field: str) -> Counts:
    """Count ``entries`` by ``field``; an entry with several values (roles) counts once
    for each, and one without any counts under None."""
    read = COUNTERS[check_field(field)]
    counter: Counter[Any] = Counter()
    total = 0
    for entry in entries:
        total += 1
        values = read(entry) or [None]
        for value in values:
            counter[value] += 1
    return ordered_counts(field, counter.items(), total)


def ordered_counts(
    field: str, counts: Iterable[tuple[Any, int]], total: int | None = None
) -> Counts:
    """``(value, count)`` pairs as :class:`Counts`: most frequent first, then by value."""
    ordered = sorted(counts, key=lambda item: (-item[1], str(item[0])))
    return Counts(field, ordered, sum(n for _, n in ordered) if total is None else total)
