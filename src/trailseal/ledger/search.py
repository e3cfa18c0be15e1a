"""Search over indexed event fields.

The search index is derived from the entries and filled after appends, not on
the append path: :func:`catch_up` indexes every entry not yet indexed before a
search runs, so results are always complete. It never searches ``detail``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from trailseal.access.tenants import tenant_of
from trailseal.errors import EventError
from trailseal.query import Between, Exact, Match, Node, Prefix, ResourceValue, both
from trailseal.storage.base import SearchFilter, SearchRow, Store, StoreReader

__all__ = [
    "SearchFilter",
    "catch_up",
    "filter_node",
    "fixed_width",
    "normalize_time",
    "pending",
    "search_fields",
    "search_row",
]

_CHUNK = 20_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")


def normalize_time(value: str, name: str = "time") -> str:
    """An RFC 3339 time or a date, as fixed-width UTC with microseconds (sorts as text)."""
    text = value.strip()
    if _DATE.match(text):
        text += "T00:00:00Z"
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise EventError(
            name, f"{value!r} is not an RFC 3339 time or a date (YYYY-MM-DD)"
        ) from None
    if moment.tzinfo is None:
        raise EventError(name, f"{value!r} has no time zone; add Z for UTC")
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise EventError(name, f"{value!r} is outside the years 0001-9999 in UTC") from None


class IndexedActor(msgspec.Struct, gc=False):
    id: str
    tenant: str | None = None


class IndexedResource(msgspec.Struct, gc=False):
    type: str | None = None
    id: str | None = None
    tenant: str | None = None


class IndexedOutcome(msgspec.Struct, gc=False):
    result: str | None = None


class _Event(msgspec.Struct, gc=False):
    """The indexed fields of an entry's event; msgspec skips the rest unparsed."""

    actor: IndexedActor
    action: str
    time: str
    resource: IndexedResource | None = None
    outcome: IndexedOutcome | None = None


class _Entry(msgspec.Struct, gc=False):
    event: _Event


_ENTRY = msgspec.json.Decoder(_Entry)
_NO_RESOURCE = IndexedResource()
_NO_OUTCOME = IndexedOutcome()


def fixed_width(time: str) -> str:
    """An event time (validated RFC 3339 UTC, 0-6 fraction digits) as fixed width."""
    if len(time) == 27:
        return time
    seconds, _, fraction = time[:-1].partition(".")
    return f"{seconds}.{fraction:0<6}Z"


def search_fields(index: int, entry: bytes) -> tuple[object, ...]:
    """What the search index holds for an entry, recomputed from the entry's bytes, as a
    plain tuple in the index's column order (verification compares millions of them)."""
    return fields_of(index, _ENTRY.decode(entry).event)


def fields_of(index: int, event: _Event | Any) -> tuple[object, ...]:
    """The search index's row for an event already decoded with the ``Indexed*`` parts
    (verification decodes each entry once, for its hashes and this)."""
    resource = event.resource or _NO_RESOURCE
    return (
        index,
        event.actor.id,
        event.action,
        resource.type,
        resource.id,
        (event.outcome or _NO_OUTCOME).result,
        tenant_of(resource.tenant, event.actor.tenant),
        fixed_width(event.time),
    )


def search_row(index: int, entry: bytes) -> SearchRow:
    """What the search index holds for an entry, recomputed from the entry's bytes."""
    return SearchRow(*search_fields(index, entry))  # type: ignore[arg-type]


def _text(value: str) -> Exact | Prefix:
    return Prefix(value[:-1]) if value.endswith("*") else Exact(value)


def filter_node(query: SearchFilter) -> Node | None:
    """The search's conditions as one query tree: its parsed query and its shorthands."""
    terms: list[Node | None] = [query.where]
    for qualifier, value in (
        ("actor", query.actor),
        ("outcome", query.outcome),
        ("tenant", query.tenant),
    ):
        if value is not None:
            terms.append(Match(qualifier, (Exact(value),)))
    if query.action is not None:
        terms.append(Match("action", (_text(query.action),)))
    if query.resource_type is not None or query.resource_id is not None:
        kind = Exact(query.resource_type) if query.resource_type is not None else Prefix("")
        resource_id = None if query.resource_id is None else Exact(query.resource_id)
        terms.append(Match("resource", (ResourceValue(kind, resource_id),)))
    if query.since is not None or query.until is not None:
        terms.append(Match("time", (Between(query.since, query.until),)))
    return both(*terms)


def pending(store: StoreReader) -> int:
    """How many entries the search index has not caught up with."""
    return store.size() - store.search_position()


def catch_up(store: Store, progress: Callable[[int], object] | None = None) -> int:
    """Index every entry appended since the last search; return how many.
    ``progress`` hears how many were indexed so far."""
    start = store.search_position()
    size = store.size()
    for offset in range(start, size, _CHUNK):
        rows = [  # a purged entry (no bytes) has no row: it is found by no search
            search_row(e.index, e.entry)
            for e in store.entries(offset, min(offset + _CHUNK, size))
            if e.entry
        ]
        store.index_for_search(rows)
        if progress is not None:
            progress(min(offset + _CHUNK, size) - start)
    return size - start
