"""``document-trail DOC`` for a 21 CFR Part 11 inspection, and ``document verify``.

The trail lists every view, edit, state transition, e-signature and download of one
document across its versions, each with the version's SHA-256 (``resource.hash``) and
old and new values side by side. Signatures show the printed name, the time, the
meaning and the authentication method, as Part 11 (11.50) asks a signed record to.

Conventions read from events: ``resource.version`` and ``resource.hash`` name the
version; ``document.sign`` is a signature whose meaning is ``detail.after.meaning``,
``detail.meaning`` or ``context.reason``; a transition's new state is
``detail.after.state`` (or ``status``); a version counts as approved once a signature
means approval or a transition moves it to an approved or effective state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trailseal.errors import ConfigError
from trailseal.ledger import EntryView, SearchFilter
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
)
from trailseal.reports.history import resource_filter
from trailseal.reports.model import Cell, Column, Moment, Producer, Report, Section, Source

APPROVED_STATES = ("approved", "effective", "released", "signed")
APPROVAL_MEANINGS = ("approval", "approved", "approve", "release")


def kind(found: Mapping[str, Any]) -> str:
    """view, edit, transition, signature, download or other, from the action's verb."""
    verb = str(found.get("action", "")).rsplit(".", 1)[-1]
    return {
        "read": "view",
        "view": "view",
        "open": "view",
        "update": "edit",
        "edit": "edit",
        "create": "edit",
        "upload": "edit",
        "transition": "transition",
        "sign": "signature",
        "approve": "signature",
        "download": "download",
        "export": "download",
        "print": "download",
    }.get(verb, "other")


def _detail_field(view: EntryView, name: str) -> Any:
    detail = view.detail if isinstance(view.detail, Mapping) else {}
    after = detail.get("after")
    if isinstance(after, Mapping) and name in after:
        return after[name]
    return detail.get(name)


def meaning(view: EntryView) -> str | None:
    found = _detail_field(view, "meaning") or part(event(view), "context").get("reason")
    return None if found is None else str(found)


def new_state(view: EntryView) -> str | None:
    found = _detail_field(view, "state") or _detail_field(view, "status")
    return None if found is None else str(found)


def approves(view: EntryView) -> bool:
    found = event(view)
    if part(found, "outcome").get("result") not in (None, "success"):
        return False
    what = kind(found)
    if what == "signature":
        return (meaning(view) or "").lower() in APPROVAL_MEANINGS
    return what == "transition" and (new_state(view) or "").lower() in APPROVED_STATES


@dataclass
class Version:
    number: str
    hash: str | None
    first: Moment
    approvals: list[EntryView] = field(default_factory=list)


def _version(found: Mapping[str, Any]) -> str:
    value = part(found, "resource").get("version")
    return "" if value is None else str(value)


def versions(views: list[EntryView]) -> dict[str, Version]:
    found: dict[str, Version] = {}
    for view in views:
        each = event(view)
        number = _version(each)
        digest = part(each, "resource").get("hash")
        known = found.setdefault(number, Version(number, digest, moment(each)))
        if known.hash is None and digest:
            known.hash = str(digest)
        if approves(view):
            known.approvals.append(view)
    return found


def document_views(
    source: Source, doc: str, since: str | None, until: str | None
) -> list[EntryView]:
    return by_time(source.find(SearchFilter(where=resource_filter(doc), since=since, until=until)))


def document_trail(source: Source, params: Mapping[str, str], who: Producer) -> Report:
    doc = params.get("document", "").strip()
    if not doc:
        raise ConfigError("document is required: TYPE/ID (document/SOP-12) or an ID")
    since, until = bounds(params.get("from"), params.get("to"))
    report = begin(
        "document-trail",
        f"Document audit trail: {doc}",
        {"document": doc, "from": params.get("from"), "to": params.get("to")},
        source,
        who,
    )
    views = document_views(source, doc, since, until)
    cover = Section(
        "cover",
        "Scope",
        [Column("field", "Field"), Column("value", "Value")],
    )
    for name, value in (
        ("document", doc),
        ("scope", "every version; every view, edit, transition, signature and download"),
        ("filters", f"from {params.get('from') or 'the start'} to {params.get('to') or 'now'}"),
        ("time zone", f"{report.timezone} (times printed with their UTC offset)"),
        ("produced", f"{Moment(report.produced_at).local(report.zone)} by {report.produced_by}"),
        ("log", f"{report.origin}, {report.log_size:,} entries"),
    ):
        cover.add({"field": name, "value": value})
    trail = Section(
        "trail",
        "Audit trail (old and new values side by side)",
        [
            Column("time", "Time"),
            Column("kind", "Kind"),
            Column("person", "Person"),
            Column("action", "Action"),
            Column("version", "Version"),
            Column("sha256", "Version SHA-256"),
            Column("outcome", "Outcome"),
            Column("before", "Old value"),
            Column("after", "New value"),
            Column("index", "Entry"),
        ],
    )
    signatures = Section(
        "signatures",
        "Electronic signatures",
        [
            Column("name", "Printed name"),
            Column("user", "User id"),
            Column("time", "Signed"),
            Column("meaning", "Meaning"),
            Column("auth", "Authentication"),
            Column("version", "Version"),
            Column("sha256", "Version SHA-256"),
            Column("index", "Entry"),
        ],
    )
    for view in views:
        found = event(view)
        report.cite(view)
        resource = part(found, "resource")
        before, after = change(view)
        row: dict[str, Cell] = {
            "time": moment(found),
            "kind": kind(found),
            "person": person(found),
            "action": str(found.get("action", "")),
            "version": _version(found),
            "sha256": str(resource.get("hash") or ""),
            "outcome": outcome(found),
            "before": before,
            "after": after,
            "index": view.index,
        }
        trail.add(row)
        if kind(found) == "signature":
            actor = part(found, "actor")
            signatures.add(
                {
                    "name": str(actor.get("name") or ""),
                    "user": str(actor.get("id") or ""),
                    "time": moment(found),
                    "meaning": meaning(view),
                    "auth": str(actor.get("auth_method") or ""),
                    "version": _version(found),
                    "sha256": str(resource.get("hash") or ""),
                    "index": view.index,
                }
            )
    table = Section(
        "versions",
        "Versions",
        [
            Column("version", "Version"),
            Column("sha256", "SHA-256"),
            Column("first", "First recorded"),
            Column("approved", "Approved by"),
        ],
    )
    for version in versions(views).values():
        table.add(
            {
                "version": version.number,
                "sha256": version.hash,
                "first": version.first,
                "approved": "; ".join(
                    f"{person(event(v))} at {moment(event(v)).local(report.zone)}"
                    for v in version.approvals
                ),
            }
        )
    report.sections = [cover, table, signatures, trail]
    report.summary = [
        ("entries", len(views)),
        ("versions", len(table.rows)),
        ("signatures", len(signatures.rows)),
        ("views", sum(1 for row in trail.rows if row["kind"] == "view")),
        ("downloads", sum(1 for row in trail.rows if row["kind"] == "download")),
    ]
    if not views:
        report.notes.append(
            f"No entry in this log names the document {doc!r}. An empty trail is an answer, "
            "not an error: check the document's type and id."
        )
    return report


@dataclass(frozen=True)
class DocumentCheck:
    """Whether a file is the approved version of a document, and who signed it."""

    document: str
    sha256: str
    matches: list[Version]
    approved: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "sha256": self.sha256,
            "approved": self.approved,
            "versions": [
                {
                    "version": version.number,
                    "first_recorded": version.first.utc,
                    "approvals": [
                        {
                            "index": view.index,
                            "name": part(event(view), "actor").get("name"),
                            "user": part(event(view), "actor").get("id"),
                            "time": event(view).get("time"),
                            "action": event(view).get("action"),
                            "meaning": meaning(view) or new_state(view),
                            "auth_method": part(event(view), "actor").get("auth_method"),
                        }
                        for view in version.approvals
                    ],
                }
                for version in self.matches
            ],
        }


def check_document(
    source: Source, doc: str, digest: str, version: str | None = None
) -> DocumentCheck:
    """Which recorded versions of ``doc`` have this SHA-256 (or is it ``version``'s)."""
    if not doc.strip():
        raise ConfigError("document is required")
    known = versions(document_views(source, doc, None, None))
    matches = [
        v
        for v in known.values()
        if v.hash and v.hash.lower() == digest.lower() and (version is None or v.number == version)
    ]
    return DocumentCheck(doc, digest, matches, any(v.approvals for v in matches))
