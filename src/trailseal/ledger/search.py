"""Search over indexed event fields.

The search index is derived from the entries and filled after appends, not on
the append path: :func:`catch_up` indexes every entry not yet indexed before a
search runs, so results are always complete. It never searches ``detail``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson

from trailseal.errors import EventError
from trailseal.ledger.store import SearchFilter, SearchRow, Store

__all__ = ["SearchFilter", "catch_up", "normalize_time"]

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


def _row(index: int, entry: bytes) -> SearchRow:
    event = orjson.loads(entry)["event"]
    actor = event["actor"]
    resource = event.get("resource") or {}
    outcome = event.get("outcome") or {}
    return SearchRow(
        index=index,
        actor=actor["id"],
        action=event["action"],
        resource_type=resource.get("type"),
        resource_id=resource.get("id"),
        outcome=outcome.get("result"),
        tenant=resource.get("tenant") or actor.get("tenant"),
        time=normalize_time(event["time"]),
    )


def catch_up(store: Store) -> int:
    """Index every entry appended since the last search; return how many."""
    start = store.search_position()
    size = store.size()
    for offset in range(start, size, _CHUNK):
        rows = [_row(e.index, e.entry) for e in store.entries(offset, min(offset + _CHUNK, size))]
        store.index_for_search(rows)
    return size - start
