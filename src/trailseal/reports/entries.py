"""``entries``: the entries a query selects, as a report, so that an export of part of
the log (one tenant's, one month's) travels as an evidence bundle that verifies on its
own. A plain export needs every entry from 0 to verify against a checkpoint; a bundle
proves each entry it holds."""

from __future__ import annotations

from collections.abc import Mapping

from trailseal.ledger import SearchFilter
from trailseal.reports.common import (
    begin,
    bounds,
    event,
    moment,
    outcome,
    person,
    query_param,
    resource_label,
)
from trailseal.reports.model import Column, Producer, Report, Section, Source


def entries_report(source: Source, params: Mapping[str, str], who: Producer) -> Report:
    text = params.get("query", "")
    where = query_param(text, "query").root if text else None
    since, until = bounds(params.get("from"), params.get("to"))
    report = begin(
        "entries",
        f"Entries: {text or 'all'}",
        {"query": text, "from": params.get("from"), "to": params.get("to")},
        source,
        who,
    )
    section = Section(
        "entries",
        "Entries, in the order the log received them",
        [
            Column("index", "Entry"),
            Column("time", "Time"),
            Column("person", "Actor"),
            Column("action", "Action"),
            Column("resource", "Resource"),
            Column("outcome", "Outcome"),
        ],
    )
    for view in source.find(SearchFilter(where=where, since=since, until=until), details=False):
        found = event(view)
        report.cite(view)
        section.add(
            {
                "index": view.index,
                "time": moment(found),
                "person": person(found),
                "action": str(found.get("action", "")),
                "resource": resource_label(found),
                "outcome": outcome(found),
            }
        )
    report.sections = [section]
    report.summary = [("entries", len(section.rows))]
    return report
