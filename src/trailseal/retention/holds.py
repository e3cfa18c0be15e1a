"""Legal holds: what no retention may purge (and, if asked, move to the cold tier) until
the hold is released.

A hold is an entry (``retention.hold``) and so is its release (``retention.release``): the
active holds are read back from the log, which only the log itself may write those
actions into, so a hold cannot be lifted by editing a table. A hold names what it covers
in the search language: a tenant, an actor, a record, a time range, or any query over
them (``tenant:acme``, ``actor:u-7 time:2026-03``, ``resource:patient/MRN-0001``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trailseal.access.actions import trusted
from trailseal.errors import ConfigError, QueryError
from trailseal.query import Node, parse

HOLD, RELEASE = "retention.hold", "retention.release"
MAX_QUERY = 256  # a hold's query is kept whole in its entry's labels
_ID = re.compile(r"^h-[0-9a-f]{12}\Z")


@dataclass(frozen=True)
class Hold:
    id: str
    query: str
    node: Node | None
    stops_cold: bool  # also keeps what it covers hot
    reason: str
    placed_by: str
    placed_at: str  # when the log received the hold
    index: int  # the retention.hold entry

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "query": self.query,
            "stops_cold": self.stops_cold,
            "reason": self.reason,
            "placed_by": self.placed_by,
            "placed_at": self.placed_at,
            "index": self.index,
        }


def hold_query(text: str) -> Node | None:
    """The query a hold covers, checked: it must parse and fit its entry."""
    if not text.strip():
        raise ConfigError("a hold names what it covers: a query such as tenant:acme")
    if len(text) > MAX_QUERY:
        raise ConfigError(f"a hold's query is at most {MAX_QUERY} characters, not {len(text)}")
    try:
        return parse(text).root
    except QueryError as exc:
        raise ConfigError(f"hold query: {exc.diagnostics()}") from None


def check_id(hold_id: str) -> str:
    if not _ID.match(hold_id):
        raise ConfigError(f"{hold_id[:40]!r} is not a hold's id (h- and 12 hex digits)")
    return hold_id


def active(entries: Iterable[tuple[int, dict[str, Any]]]) -> list[Hold]:
    """The holds placed and not released, in the order they were placed, from the log's
    own ``retention.hold`` and ``retention.release`` entries (index, entry)."""
    holds: dict[str, Hold] = {}
    for index, entry in entries:
        event = entry.get("event") or {}
        action = event.get("action")
        if action not in (HOLD, RELEASE) or not trusted(action, entry.get("submitter")):
            continue
        labels = (event.get("context") or {}).get("labels") or {}
        hold_id = str((event.get("resource") or {}).get("id", ""))
        if action == RELEASE:
            holds.pop(hold_id, None)
            continue
        text = str(labels.get("query", ""))
        holds[hold_id] = Hold(
            id=hold_id,
            query=text,
            node=parse(text).root,
            stops_cold=labels.get("cold") == "stop",
            reason=str((event.get("outcome") or {}).get("reason", "")),
            placed_by=str((event.get("actor") or {}).get("id", "")),
            placed_at=str(entry.get("received_at", "")),
            index=index,
        )
    return list(holds.values())
