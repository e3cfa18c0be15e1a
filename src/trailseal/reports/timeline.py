"""``actor-timeline ACTOR --from --to``: everything one actor did, and what was done to
their account, as one sequence: sessions, tokens and source addresses; role and
permission changes with before and after; the alerts raised. An escalation followed by
an export reads in order, with both marked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from trailseal.errors import ConfigError
from trailseal.ledger import EntryView, SearchFilter
from trailseal.query import Exact, Match, Or, Prefix, ResourceValue
from trailseal.reports.common import (
    begin,
    bounds,
    by_time,
    change,
    event,
    moment,
    outcome,
    part,
    resource_label,
)
from trailseal.reports.hipaa import is_export
from trailseal.reports.model import Column, Moment, Producer, Report, Section, Source

PRIVILEGE_WORDS = ("role", "roles", "permission", "permissions", "grant", "privilege", "apikey")


def is_privilege_change(found: Mapping[str, Any]) -> bool:
    """A change of roles, permissions, groups or credentials (``iam.*`` and the like)."""
    action = str(found.get("action", ""))
    words = action.replace("_", ".").split(".")
    return action.startswith("iam.") or any(word in words for word in PRIVILEGE_WORDS)


def actor_timeline(source: Source, params: Mapping[str, str], who: Producer) -> Report:
    actor = params.get("actor", "").strip()
    if not actor:
        raise ConfigError("actor is required: the actor.id to follow")
    since, until = bounds(params.get("from"), params.get("to"))
    report = begin(
        "actor-timeline",
        f"Actor timeline: {actor}",
        {"actor": actor, "from": params.get("from"), "to": params.get("to")},
        source,
        who,
    )
    where = Or(
        (
            Match("actor", (Exact(actor),)),
            Match("resource", (ResourceValue(Prefix(""), Exact(actor)),)),
        )
    )
    views = by_time(source.find(SearchFilter(where=where, since=since, until=until)))
    sequence = Section(
        "sequence",
        "Everything, in order (★ privilege change, ⇪ export, ⚠ alert evidence)",
        [
            Column("time", "Time"),
            Column("mark", ""),
            Column("actor", "By"),
            Column("action", "Action"),
            Column("resource", "Resource"),
            Column("outcome", "Outcome"),
            Column("ip", "Address"),
            Column("session", "Session"),
            Column("index", "Entry"),
        ],
    )
    changes = Section(
        "privilege_changes",
        "Role and permission changes (by or to this actor)",
        [
            Column("time", "Time"),
            Column("actor", "By"),
            Column("action", "Action"),
            Column("resource", "Resource"),
            Column("before", "Before"),
            Column("after", "After"),
            Column("index", "Entry"),
        ],
    )
    alerts = [
        alert
        for alert in source.alerts()
        if f"actor.id={actor}" in alert.group.split(",")
        or any(view.index in alert.evidence for view in views)
    ]
    evidence = {index for alert in alerts for index in alert.evidence}
    sessions: dict[str, list[EntryView]] = defaultdict(list)
    tokens: dict[str, list[EntryView]] = defaultdict(list)
    addresses: dict[str, list[EntryView]] = defaultdict(list)
    for view in views:
        found = event(view)
        actor_part, source_part = part(found, "actor"), part(found, "source")
        mine = actor_part.get("id") == actor
        privilege = is_privilege_change(found)
        mark = ("★" if privilege else "") + ("⇪" if is_export(found) else "")
        mark += "⚠" if view.index in evidence else ""
        sequence.add(
            {
                "time": moment(found),
                "mark": mark,
                "actor": "" if mine else str(actor_part.get("id", "")),
                "action": str(found.get("action", "")),
                "resource": resource_label(found),
                "outcome": outcome(found),
                "ip": str(source_part.get("ip") or ""),
                "session": str(actor_part.get("session_id") or ""),
                "index": view.index,
            }
        )
        report.cite(view)
        if privilege:
            before, after = change(view)
            changes.add(
                {
                    "time": moment(found),
                    "actor": str(actor_part.get("id", "")),
                    "action": str(found.get("action", "")),
                    "resource": resource_label(found),
                    "before": before,
                    "after": after,
                    "index": view.index,
                }
            )
        if mine:
            for key, groups in (
                (actor_part.get("session_id"), sessions),
                (actor_part.get("token_id"), tokens),
                (source_part.get("ip"), addresses),
            ):
                if key:
                    groups[str(key)].append(view)
    report.sections = [
        sequence,
        changes,
        _grouped("sessions", "Sessions", "session", sessions),
        _grouped("tokens", "Tokens (fingerprints)", "token", tokens),
        _grouped("addresses", "Source addresses", "ip", addresses),
    ]
    raised = Section(
        "alerts",
        "Alerts about this actor",
        [
            Column("id", "Alert"),
            Column("rule", "Rule"),
            Column("severity", "Severity"),
            Column("first_seen", "First seen"),
            Column("status", "State"),
            Column("evidence", "Evidence"),
        ],
    )
    for alert in alerts:
        raised.add(
            {
                "id": alert.id,
                "rule": alert.rule,
                "severity": alert.severity,
                "first_seen": Moment(alert.first_seen),
                "status": alert.status,
                "evidence": " ".join(str(i) for i in alert.evidence[:20]),
            }
        )
    report.sections.append(raised)
    report.summary = [
        ("entries", len(views)),
        ("sessions", len(sessions)),
        ("source addresses", len(addresses)),
        ("privilege changes", len(changes.rows)),
        ("exports", sum(1 for view in views if is_export(event(view)))),
        ("alerts", len(alerts)),
        ("first", moment(event(views[0])) if views else None),
        ("last", moment(event(views[-1])) if views else None),
    ]
    if not views:
        report.notes.append(
            f"No entry by or about {actor!r} in this log"
            + (" in the period asked for" if since or until else "")
            + ". An empty timeline is an answer, not an error."
        )
    return report


def _grouped(key: str, title: str, label: str, groups: dict[str, list[EntryView]]) -> Section:
    section = Section(
        key,
        title,
        [
            Column(label, title.split(" ", maxsplit=1)[0].rstrip("s").capitalize()),
            Column("entries", "Entries"),
            Column("first", "First"),
            Column("last", "Last"),
            Column("ips", "Addresses"),
        ],
    )
    for name, views in groups.items():
        ips = sorted({str(part(event(v), "source").get("ip")) for v in views} - {"None"})
        section.add(
            {
                label: name,
                "entries": len(views),
                "first": moment(event(views[0])),
                "last": moment(event(views[-1])),
                "ips": ", ".join(ips),
            }
        )
    return section
