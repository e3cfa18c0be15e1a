"""``record-history RESOURCE``: every entry that touched one resource, in time order.

Two tables: the access report a patient may ask for (date, time, person, action: the
form HIPAA's proposed access-report right describes), and the full history with role,
outcome, source and before/after. List views (a list or search that happened to include
the record) are collapsed into one row per person and day unless asked for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from trailseal.errors import ConfigError
from trailseal.ledger import EntryView, SearchFilter
from trailseal.query import Exact, Match, Prefix, ResourceValue
from trailseal.reports.common import (
    begin,
    bounds,
    by_time,
    change,
    event,
    moment,
    outcome,
    part,
    person,
    roles,
    where_from,
)
from trailseal.reports.model import Column, Producer, Report, Section, Source

LIST_VERBS = ("list", "search", "query", "browse", "index")


def is_list_view(found: Mapping[str, Any]) -> bool:
    """A read of many records at once that happened to include this one: a list or search
    action, or a read whose resource counts more than one record."""
    verb = str(found.get("action", "")).rsplit(".", 1)[-1]
    count = part(found, "resource").get("count")
    return verb in LIST_VERBS or (verb == "read" and isinstance(count, int) and count > 1)


def resource_filter(resource: str) -> Match:
    """``TYPE/ID``, or a bare ``ID`` of any type."""
    kind, slash, ident = resource.partition("/")
    if not resource.strip() or (slash and not (kind and ident)):
        raise ConfigError(f"resource {resource!r}: give TYPE/ID (patient/p-88123) or an ID")
    if not slash:
        return Match("resource", (ResourceValue(Prefix(""), Exact(resource)),))
    return Match("resource", (ResourceValue(Exact(kind), Exact(ident)),))


_ACCESS = [
    Column("date", "Date"),
    Column("time", "Time"),
    Column("person", "Person"),
    Column("action", "Action"),
    Column("index", "Entry"),
]
_HISTORY = [
    Column("time", "Time"),
    Column("person", "Person"),
    Column("role", "Role"),
    Column("action", "Action"),
    Column("outcome", "Outcome"),
    Column("source", "Source"),
    Column("before", "Before"),
    Column("after", "After"),
    Column("index", "Entry"),
]


def record_history(source: Source, params: Mapping[str, str], who: Producer) -> Report:
    resource = params.get("resource", "")
    where = resource_filter(resource)
    since, until = bounds(params.get("from"), params.get("to"))
    show_lists = params.get("lists", "collapsed") == "shown"
    report = begin(
        "record-history",
        f"Record history: {resource}",
        {
            "resource": resource,
            "from": params.get("from"),
            "to": params.get("to"),
            "lists": "shown" if show_lists else "collapsed",
        },
        source,
        who,
    )
    views = by_time(source.find(SearchFilter(where=where, since=since, until=until)))
    zone = report.zone
    access = Section("access", "Access report (date, time, person, action)", _ACCESS)
    history = Section("history", "Full history", _HISTORY)
    collapsed: dict[tuple[str, str], list[EntryView]] = defaultdict(list)
    for view in views:
        found = event(view)
        when = moment(found)
        if is_list_view(found) and not show_lists:
            collapsed[(person(found), when.local(zone)[:10])].append(view)
            continue
        report.cite(view)
        local = when.local(zone)
        access.add(
            {
                "date": local[:10],
                "time": local[11:],
                "person": person(found),
                "action": str(found.get("action")),
                "index": view.index,
            }
        )
        before, after = change(view)
        history.add(
            {
                "time": when,
                "person": person(found),
                "role": roles(found),
                "action": str(found.get("action")),
                "outcome": outcome(found),
                "source": where_from(found),
                "before": before,
                "after": after,
                "index": view.index,
            }
        )
    lists = Section(
        "list_views",
        "List views that included the record (collapsed: one row per person and day)",
        [
            Column("day", "Day"),
            Column("person", "Person"),
            Column("count", "List views"),
            Column("first", "First"),
            Column("last", "Last"),
            Column("entries", "Entries"),
        ],
        note="Run with lists=shown (--show-lists) to see each one.",
    )
    for (who_, day), group in sorted(collapsed.items(), key=lambda item: item[0][1]):
        report.cite(*group)
        lists.add(
            {
                "day": day,
                "person": who_,
                "count": len(group),
                "first": moment(event(group[0])),
                "last": moment(event(group[-1])),
                "entries": " ".join(str(view.index) for view in group[:50])
                + (" …" if len(group) > 50 else ""),
            }
        )
    report.sections = [access, history] + ([lists] if collapsed else [])
    people = {person(event(view)) for view in views}
    report.summary = [
        ("entries", len(views)),
        ("people", len(people)),
        ("list views collapsed", sum(len(group) for group in collapsed.values())),
        ("first", moment(event(views[0])) if views else None),
        ("last", moment(event(views[-1])) if views else None),
    ]
    if not views:
        report.notes.append(
            f"No entry in this log touched {resource}"
            + (" in the period asked for" if since or until else "")
            + f" ({report.log_size:,} entries searched). An empty history is an answer, "
            "not an error: check the resource's type and id if one was expected."
        )
    return report


__all__ = ["is_list_view", "record_history", "resource_filter"]
