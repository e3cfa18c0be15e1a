"""Alert state and detection progress as the log itself tells them.

The detection database is a working copy: fast to query and to update, but a
file anyone with access can edit. What counts is in the log, where nobody can
change it unseen: every alert change is an entry (``alert.raised`` with the
alert as its detail, ``alert.updated`` with the alert after a merge,
``alert.acknowledged`` and ``alert.resolved`` with the reason), and every batch
the engine evaluated is a ``trailseal.detection.progress`` entry naming its
range and the chain hash it ended on. This module folds those entries into the
alerts they describe and the ranges they cover, and compares both with the
working copy; it is pure, so the engine, `trailseal alerts verify` and tests
share one reading.

Only entries the log itself submitted count (:func:`trailseal.access.actions.trusted`):
a writer cannot add an alert or a range by writing the names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from trailseal.access.actions import trusted

if TYPE_CHECKING:
    from trailseal.detect.store import Alert

PROGRESS_ACTION = "trailseal.detection.progress"
SNAPSHOTS = ("alert.raised", "alert.updated")
STATUSES = {"alert.acknowledged": "acknowledged", "alert.resolved": "resolved"}
ALERT_ACTIONS = (*SNAPSHOTS, *STATUSES)  # the entries alert state is folded from


@dataclass(frozen=True)
class Logged:
    """One trusted entry of the log, as the projection reads it."""

    index: int
    id: str
    action: str
    labels: dict[str, str]
    reason: str | None
    detail: Any


def logged(index: int, entry: dict[str, Any], detail: Any) -> Logged | None:
    """The parts of a stored entry the projection reads, or None for an entry that is not
    the log's own record of detection (or claims to be without the log having written it)."""
    event = entry.get("event") or {}
    action = event.get("action")
    if not isinstance(action, str) or not trusted(action, entry.get("submitter")):
        return None
    if action not in SNAPSHOTS and action not in STATUSES and action != PROGRESS_ACTION:
        return None
    labels = (event.get("context") or {}).get("labels") or {}
    outcome = event.get("outcome") or {}
    return Logged(index, str(event.get("id", "")), action, labels, outcome.get("reason"), detail)


def alert_key(event_id: str) -> tuple[str, int] | None:
    """(engine instance, alert id) of an alert entry's event id, ``alert:INSTANCE:ID:…``."""
    parts = event_id.split(":")
    if len(parts) < 4 or parts[0] != "alert" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def project(entries: Iterable[Logged], instance: str) -> dict[int, Alert]:
    """The alerts of engine ``instance`` as its entries, in log order, describe them.

    A snapshot (raised, updated) sets everything but the status, which only a status
    entry changes (one written before the alert's snapshot applies when it comes)."""
    from trailseal.detect.store import Alert  # noqa: PLC0415 - the store imports this module

    alerts: dict[int, Alert] = {}
    statuses: dict[int, dict[str, Any]] = {}
    for found in entries:
        key = alert_key(found.id)
        if key is None or key[0] != instance:
            continue
        alert_id = key[1]
        if found.action in STATUSES:
            statuses[alert_id] = {
                "status": STATUSES[found.action],
                "reason": found.reason,
                "disposition": found.labels.get("disposition"),
            }
            if alert_id in alerts:
                alerts[alert_id] = replace(alerts[alert_id], **statuses[alert_id])
        elif isinstance(found.detail, dict):
            snapshot = Alert.from_json(found.detail, version=_version(found))
            status = statuses.get(alert_id, {"status": "open", "reason": None})
            alerts[alert_id] = replace(snapshot, **status)
    return alerts


def _version(found: Logged) -> int:
    tail = found.id.rsplit(":", 1)[-1]
    return int(tail[1:]) if tail.startswith("v") and tail[1:].isdigit() else 1


@dataclass(frozen=True)
class Span:
    """A range of the log the engine recorded as evaluated."""

    start: int
    end: int
    chain: str


def spans(entries: Iterable[Logged], instance: str | None = None) -> list[Span]:
    """The ranges the engine recorded, in the order it recorded them."""
    found: list[Span] = []
    for entry in entries:
        if entry.action != PROGRESS_ACTION:
            continue
        labels = entry.labels
        if instance is not None and labels.get("instance") not in (None, instance):
            continue
        start, end = labels.get("from", ""), labels.get("to", "")
        if start.isdigit() and end.isdigit():
            found.append(Span(int(start), int(end), labels.get("chain", "")))
    return found


def gaps(recorded: list[Span], until: int) -> list[tuple[int, int]]:
    """Ranges below ``until`` that no recorded span covers: entries nobody evaluated."""
    missing: list[tuple[int, int]] = []
    covered = 0
    for span in sorted(recorded, key=lambda s: s.start):
        if span.start > covered:
            missing.append((covered, min(span.start, until)))
        covered = max(covered, span.end)
        if covered >= until:
            break
    if covered < until:
        missing.append((covered, until))
    return [(a, b) for a, b in missing if a < b]


COMPARED = ("status", "reason", "disposition", "evidence", "last_seen", "rule", "group", "tenant")


@dataclass(frozen=True)
class Comparison:
    """How the database's alerts differ from the log's, and what puts them right."""

    problems: list[str]  # one sentence each
    restore: list[Alert]  # alerts to put back as the log has them
    forget: list[int]  # rows the log never recorded


def compare(stored: dict[int, Alert], logged_alerts: dict[int, Alert]) -> Comparison:
    """Compare the database's alerts with the log's. Alerts whose latest change is not
    in the log yet (the engine writes it right after its batch) are compared as of
    their last logged version."""
    problems: list[str] = []
    restore: list[Alert] = []
    for alert_id, want in sorted(logged_alerts.items()):
        have = stored.get(alert_id)
        if have is None:
            problems.append(f"alert {alert_id} is in the log but missing from the database")
            restore.append(want)
            continue
        if have.version > want.version:
            continue  # changed since, and not yet written: the engine logs it next
        fields = [name for name in COMPARED if getattr(have, name) != getattr(want, name)]
        problems.extend(
            f"alert {alert_id}: its {name} in the database is {getattr(have, name)!r}, "
            f"the log says {getattr(want, name)!r}"
            for name in fields
        )
        if fields:
            restore.append(want)
    forget = [i for i, have in sorted(stored.items()) if i not in logged_alerts and have.logged]
    problems.extend(f"alert {i} is in the database but not in the log" for i in forget)
    return Comparison(problems, restore, forget)


def own_record(action: object) -> bool:
    """Whether an action is the engine's own record (an alert change, or progress): those
    are never evaluated, so a range holding only them needs no progress entry."""
    return isinstance(action, str) and (action.startswith("alert.") or action == PROGRESS_ACTION)
