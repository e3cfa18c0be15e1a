"""``hipaa-access --period 2026-10``: a month of access to protected health information.

PHI access is what the ``phi`` query selects (by default every entry on a patient,
note or record resource); exports are every export, download or print in the month,
whatever the resource; for each access the roster (when configured) says the
person's unit, shift and end date. Tables: by user, by patient, by unit; access outside
the user's unit; after-hours access; exports; access after the roster's end date; the
alerts raised in the period and their state; totals.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from trailseal.detect.context import Shift
from trailseal.errors import ConfigError
from trailseal.ledger import SearchFilter
from trailseal.ledger.matching import compiled
from trailseal.ledger.search import fixed_width
from trailseal.reports.common import (
    begin,
    event,
    moment,
    part,
    period,
    person,
    query_param,
    resource_label,
)
from trailseal.reports.model import Cell, Column, Moment, Producer, Report, Section, Source

DEFAULT_PHI = "resource:patient,patients,note,notes,record,records,chart,charts"
DEFAULT_HOURS = "07:00-19:00"  # business hours, for people the roster does not name
EXPORT_VERBS = ("export", "download", "print")
NO_SINGLE_RECORD = "(lists and searches: no single record)"


def _hours(text: str) -> tuple[time, time]:
    try:
        first, _, last = text.partition("-")
        return time.fromisoformat(first.strip()), time.fromisoformat(last.strip())
    except ValueError:
        raise ConfigError(f"hours: {text!r} is not HH:MM-HH:MM") from None


def is_export(found: Mapping[str, Any]) -> bool:
    action = str(found.get("action", ""))
    return any(verb in action.split(".") for verb in EXPORT_VERBS)


def _when(found: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(found.get("time", "")))
    except ValueError:
        return None


class _Tally:
    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.others: dict[str, set[str]] = defaultdict(set)

    def add(self, key: str, other: str) -> None:
        self.count[key] += 1
        if other:
            self.others[key].add(other)

    def rows(self, key: str, other: str) -> list[dict[str, Any]]:
        ordered = sorted(self.count.items(), key=lambda item: (-item[1], item[0]))
        return [{key: name, "accesses": n, other: len(self.others[name])} for name, n in ordered]


def hipaa_access(  # noqa: C901, PLR0912, PLR0915 - one pass over the month fills every table
    source: Source, params: Mapping[str, str], who: Producer
) -> Report:
    month = params.get("period", "")
    if not month:
        raise ConfigError("period is required: a month (2026-10) or FROM..TO")
    start, end = period(month)
    phi_text = params.get("phi") or DEFAULT_PHI
    phi = query_param(phi_text, "phi")
    opening, closing = _hours(params.get("hours") or DEFAULT_HOURS)
    report = begin(
        "hipaa-access",
        f"PHI access report: {month}",
        {"period": month, "phi": phi_text, "hours": params.get("hours") or DEFAULT_HOURS},
        source,
        who,
    )
    zone = report.zone
    roster: Mapping[str, Shift] = source.roster()
    by_user, by_patient, by_unit = _Tally(), _Tally(), _Tally()
    outside = Section(
        "outside_unit",
        "Access outside the user's unit",
        [
            Column("time", "Time"),
            Column("person", "Person"),
            Column("user_unit", "User's unit"),
            Column("record", "Record"),
            Column("record_unit", "Record's unit"),
            Column("action", "Action"),
            Column("index", "Entry"),
        ],
    )
    after_hours = Section(
        "after_hours",
        "After-hours access (outside the person's rostered shift, or business hours)",
        [
            Column("time", "Time"),
            Column("person", "Person"),
            Column("shift", "Shift"),
            Column("record", "Record"),
            Column("action", "Action"),
            Column("index", "Entry"),
        ],
    )
    exports = Section(
        "exports",
        "Exports, downloads and prints",
        [
            Column("time", "Time"),
            Column("person", "Person"),
            Column("action", "Action"),
            Column("resource", "Resource"),
            Column("records", "Records"),
            Column("outcome", "Outcome"),
            Column("index", "Entry"),
        ],
    )
    after_end = Section(
        "after_end_date",
        "Access after the person's end date in the roster",
        [
            Column("time", "Time"),
            Column("person", "Person"),
            Column("end_date", "End date"),
            Column("record", "Record"),
            Column("action", "Action"),
            Column("index", "Entry"),
        ],
    )
    total = exported = 0
    is_phi = compiled(phi.root) if phi.root is not None else (lambda _entry: True)
    # One pass over the month: PHI access by the query, exports of anything.
    for view in source.find(SearchFilter(since=start, until=end), details=False):
        found = event(view)
        if is_export(found):
            resource = part(found, "resource")
            count = resource.get("count")
            exported += count if isinstance(count, int) else 1
            exports.add(
                {
                    "time": moment(found),
                    "person": person(found),
                    "action": str(found.get("action", "")),
                    "resource": resource_label(found),
                    "records": count if isinstance(count, int) else 1,
                    "outcome": str(part(found, "outcome").get("result") or ""),
                    "index": view.index,
                }
            )
            report.cite(view)
        if not is_phi(view.entry):
            continue
        total += 1
        actor = part(found, "actor")
        user = str(actor.get("id", ""))
        shift = roster.get(user)
        unit = shift.unit if shift else actor.get("unit")
        resource = part(found, "resource")
        record = resource_label(found)
        by_user.add(person(found), record)
        by_patient.add(record if resource.get("id") else NO_SINGLE_RECORD, user)
        by_unit.add(str(unit or "(unknown)"), user)
        when = _when(found)
        row: dict[str, Cell] = {"time": moment(found), "person": person(found), "record": record}
        action = str(found.get("action", ""))
        cited = False
        record_unit = resource.get("unit")
        if unit and record_unit and unit != record_unit:
            outside.add(
                row
                | {"user_unit": unit, "record_unit": record_unit, "action": action}
                | {"index": view.index}
            )
            cited = True
        if when is not None:
            if shift is not None:
                _started, on_shift = shift.around(when)
                label = f"{shift.start:%H:%M}-{shift.end:%H:%M} {shift.zone.key}"
            else:
                local = when.astimezone(zone).time()
                on_shift = opening <= local < closing
                label = f"business hours {opening:%H:%M}-{closing:%H:%M}"
            if not on_shift:
                after_hours.add(row | {"shift": label, "action": action, "index": view.index})
                cited = True
            if shift is not None and shift.end_date is not None:
                local_day: date = when.astimezone(shift.zone).date()
                if local_day > shift.end_date:
                    after_end.add(
                        row
                        | {"end_date": shift.end_date.isoformat(), "action": action}
                        | {"index": view.index}
                    )
                    cited = True
        if cited:
            report.cite(view)
    users = Section(
        "by_user",
        "Access by user",
        [Column("person", "Person"), Column("accesses", "Accesses"), Column("records", "Records")],
    )
    users.rows = by_user.rows("person", "records")
    patients = Section(
        "by_patient",
        "Access by patient record",
        [Column("record", "Record"), Column("accesses", "Accesses"), Column("users", "Users")],
    )
    patients.rows = by_patient.rows("record", "users")
    units = Section(
        "by_unit",
        "Access by the user's unit",
        [Column("unit", "Unit"), Column("accesses", "Accesses"), Column("users", "Users")],
    )
    units.rows = by_unit.rows("unit", "users")
    alerts = Section(
        "alerts",
        "Alerts raised in the period",
        [
            Column("id", "Alert"),
            Column("rule", "Rule"),
            Column("severity", "Severity"),
            Column("group", "Who / what"),
            Column("first_seen", "First seen"),
            Column("status", "State"),
            Column("reason", "Resolution"),
            Column("evidence", "Evidence"),
        ],
    )
    for alert in source.alerts():
        if alert.first_seen and start <= fixed_width(alert.first_seen) < end:
            alerts.add(
                {
                    "id": alert.id,
                    "rule": alert.rule,
                    "severity": alert.severity,
                    "group": alert.group,
                    "first_seen": Moment(alert.first_seen),
                    "status": alert.status,
                    "reason": alert.reason,
                    "evidence": " ".join(str(i) for i in alert.evidence[:20]),
                }
            )
            report.cite(*alert.evidence)
    report.sections = [users, patients, units, outside, after_hours, exports, after_end, alerts]
    report.summary = [
        ("PHI accesses", total),
        ("users", len(by_user.count)),
        ("patient records", len(by_patient.count) - (NO_SINGLE_RECORD in by_patient.count)),
        ("units", len(by_unit.count)),
        ("outside the user's unit", len(outside.rows)),
        ("after hours", len(after_hours.rows)),
        ("exports", len(exports.rows)),
        ("records exported", exported),
        ("after the end date", len(after_end.rows)),
        ("alerts raised", len(alerts.rows)),
        ("alerts still open", sum(1 for row in alerts.rows if row["status"] == "open")),
    ]
    if not roster:
        report.notes.append(
            "No staff roster is configured: units come from the events' actor.unit, after "
            "hours means outside business hours in the report's time zone, and end dates "
            "are unknown."
        )
    if total == 0:
        report.notes.append(
            f"No PHI access in {month} (selected by {phi_text!r}). An empty month is an "
            "answer, not an error."
        )
    return report
