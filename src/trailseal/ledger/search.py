"""Search over indexed event fields.

The search index is derived from the entries and filled after appends, not on
the append path: :func:`catch_up` indexes every entry not yet indexed before a
search runs, so results are always complete. It never searches ``detail``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from trailseal.access.tenants import tenant_of
from trailseal.errors import EventError
from trailseal.storage.base import SearchFilter, SearchRow, Store, StoreReader

__all__ = ["SearchFilter", "catch_up", "normalize_time", "pending"]

_CHUNK = 20_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Actor(msgspec.Struct, gc=False):
    id: str
    tenant: str | None = None


class _Resource(msgspec.Struct, gc=False):
    type: str | None = None
    id: str | None = None
    tenant: str | None = None


class _Outcome(msgspec.Struct, gc=False):
    result: str | None = None


class _Event(msgspec.Struct, gc=False):
    """The indexed fields of an entry's event; msgspec skips the rest unparsed."""

    actor: _Actor
    action: str
    time: str
    resource: _Resource | None = None
    outcome: _Outcome | None = None


class _Entry(msgspec.Struct, gc=False):
    event: _Event


_ENTRY = msgspec.json.Decoder(_Entry)
_NO_RESOURCE = _Resource()
_NO_OUTCOME = _Outcome()


def _fixed_width(time: str) -> str:
    """An event time (validated RFC 3339 UTC, 0-6 fraction digits) as fixed width."""
    if len(time) == 27:
        return time
    seconds, _, fraction = time[:-1].partition(".")
    return f"{seconds}.{fraction:0<6}Z"


def _row(index: int, entry: bytes) -> SearchRow:
    event = _ENTRY.decode(entry).event
    resource = event.resource or _NO_RESOURCE
    return SearchRow(
        index=index,
        actor=event.actor.id,
        action=event.action,
        resource_type=resource.type,
        resource_id=resource.id,
        outcome=(event.outcome or _NO_OUTCOME).result,
        tenant=tenant_of(resource.tenant, event.actor.tenant),
        time=_fixed_width(event.time),
    )


def pending(store: StoreReader) -> int:
    """How many entries the search index has not caught up with."""
    return store.size() - store.search_position()


def catch_up(store: Store, progress: Callable[[int], object] | None = None) -> int:
    """Index every entry appended since the last search; return how many.
    ``progress`` hears how many were indexed so far."""
    start = store.search_position()
    size = store.size()
    for offset in range(start, size, _CHUNK):
        rows = [_row(e.index, e.entry) for e in store.entries(offset, min(offset + _CHUNK, size))]
        store.index_for_search(rows)
        if progress is not None:
            progress(min(offset + _CHUNK, size) - start)
    return size - start
