"""``change-management --period … --changes QUERY --tickets FILE``: every change the query
selects, joined with the change tickets, over the whole population (not a sample).

A change is linked to a ticket when its ``context.ticket`` is the ticket's id, or the
ticket's change reference names the change (its event id or request id). Exceptions:
no ticket, a ticket that is not approved, approved after the change, or approved by the
person who made the change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from trailseal.errors import ConfigError
from trailseal.ledger import SearchFilter
from trailseal.reports.common import (
    begin,
    event,
    fixed_time,
    moment,
    part,
    period,
    person,
    query_param,
    resource_label,
)
from trailseal.reports.model import Column, Moment, Producer, Report, Section, Source
from trailseal.reports.tickets import Ticket, parse_tickets

NO_TICKET = "no ticket"
NOT_APPROVED = "ticket not approved"
APPROVED_LATE = "approved after the change"
SELF_APPROVED = "approver made the change"
KINDS = (NO_TICKET, NOT_APPROVED, APPROVED_LATE, SELF_APPROVED)


def _linked(
    found: Mapping[str, object], tickets: dict[str, Ticket], refs: dict[str, Ticket]
) -> Ticket | None:
    named = part(found, "context").get("ticket")
    if isinstance(named, str) and named in tickets:
        return tickets[named]
    for key in (found.get("id"), part(found, "request").get("request_id")):
        if isinstance(key, str) and key in refs:
            return refs[key]
    return None


def exceptions(found: Mapping[str, object], ticket: Ticket | None) -> list[str]:
    """Why a change fails the control (none: it had an approved ticket in time)."""
    if ticket is None:
        return [NO_TICKET]
    problems = []
    if not ticket.approved:
        problems.append(f"{NOT_APPROVED} ({ticket.status or 'no status'})")
    if ticket.approved_at is not None and ticket.approved_at > fixed_time(found):
        problems.append(APPROVED_LATE)
    actor = part(found, "actor")
    makers = {str(actor.get("id", "")).lower(), str(actor.get("name", "") or "").lower()} - {""}
    if ticket.approver and ticket.approver.strip().lower() in makers:
        problems.append(SELF_APPROVED)
    return problems


def change_management(source: Source, params: Mapping[str, str], who: Producer) -> Report:
    window = params.get("period", "")
    changes_text = params.get("changes", "")
    if not window or not changes_text:
        raise ConfigError("period and changes (a query selecting the changes) are required")
    start, end = period(window)
    selection = query_param(changes_text, "changes")
    text = params.get("tickets", "")
    name = params.get("tickets_name", "tickets")
    tickets = parse_tickets(text, name)
    refs = {ticket.change_ref: ticket for ticket in tickets.values() if ticket.change_ref}
    report = begin(
        "change-management",
        f"Change management: {window}",
        {
            "period": window,
            "changes": changes_text,
            "tickets": f"{name} (SHA-256 {hashlib.sha256(text.encode()).hexdigest()})",
        },
        source,
        who,
    )
    everything = Section(
        "changes",
        "Every change and its ticket",
        [
            Column("time", "Time"),
            Column("person", "Made by"),
            Column("action", "Change"),
            Column("resource", "Resource"),
            Column("ticket", "Ticket"),
            Column("status", "Ticket status"),
            Column("approver", "Approver"),
            Column("approved_at", "Approved"),
            Column("result", "Result"),
            Column("index", "Entry"),
        ],
    )
    failing = Section(
        "exceptions",
        "Exceptions",
        [
            Column("time", "Time"),
            Column("person", "Made by"),
            Column("action", "Change"),
            Column("ticket", "Ticket"),
            Column("problem", "Exception"),
            Column("index", "Entry"),
        ],
    )
    total = compliant = 0
    kinds: dict[str, int] = {}
    query = SearchFilter(where=selection.root, since=start, until=end)
    for view in source.find(query, details=False):
        found = event(view)
        total += 1
        report.cite(view)
        ticket = _linked(found, tickets, refs)
        problems = exceptions(found, ticket)
        compliant += not problems
        named = part(found, "context").get("ticket")
        everything.add(
            {
                "time": moment(found),
                "person": person(found),
                "action": str(found.get("action", "")),
                "resource": resource_label(found),
                "ticket": ticket.id if ticket else (str(named) if named else None),
                "status": ticket.status if ticket else None,
                "approver": ticket.approver if ticket else None,
                "approved_at": Moment(ticket.approved_at)
                if ticket and ticket.approved_at
                else None,
                "result": "; ".join(problems) or "approved in time",
                "index": view.index,
            }
        )
        for problem in problems:
            kind = problem.split(" (")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
            failing.add(
                {
                    "time": moment(found),
                    "person": person(found),
                    "action": str(found.get("action", "")),
                    "ticket": ticket.id if ticket else (str(named) if named else None),
                    "problem": problem,
                    "index": view.index,
                }
            )
    share = f"{100 * compliant / total:.1f}%" if total else "n/a"
    report.sections = [failing, everything]
    report.summary = [
        ("changes", total),
        ("with an approved ticket in time", compliant),
        ("share", share),
        ("exceptions", len(failing.rows)),
        *[
            (kind, kinds.get(kind, 0))
            for kind in (NO_TICKET, NOT_APPROVED, APPROVED_LATE, SELF_APPROVED)
        ],
        ("tickets in the file", len(tickets)),
    ]
    if total == 0:
        report.notes.append(
            f"The query {changes_text!r} selects no change in {window}. An empty population "
            "is an answer, not an error: check the query with trailseal search."
        )
    return report
