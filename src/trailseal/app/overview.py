"""The state of one log at a glance: integrity, intake, open alerts and who opened the
most records. One operation for the dashboard's first page; it reads through the same
role table and tenant rule as every other, and is recorded as one ``audit.read``.

The windows (a shift, a week) end at an anchor: the newest application event, or now
if that is later than now (a log imported or replayed from last month still shows its
last week), or a moment the caller names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from trailseal.access import Permission
from trailseal.access.actions import RESERVED
from trailseal.app.alerts import Alerts, cases
from trailseal.app.caller import Caller
from trailseal.app.entries import Entries
from trailseal.app.recorder import Recorder
from trailseal.errors import NotFoundError
from trailseal.ledger import Ledger, SearchFilter
from trailseal.ledger.counting import Counts
from trailseal.ledger.search import fixed_width
from trailseal.query import Between, Exact, Match, Not, Prefix, both

if TYPE_CHECKING:
    from trailseal.detect.store import Alert

SHIFT = timedelta(hours=12)
WEEK = timedelta(days=7)
INTAKE_DAYS = 30
TOP = 10
# A record opened is an action ending in ".read", as the built-in rule record_read
# (which many_records_one_shift counts) defines it.
READ_SUFFIX = ".read"
OUTSIDE_UNIT_RULE = "access_outside_unit"


@dataclass(frozen=True)
class Integrity:
    """Whether the log is intact, as far as its own records say."""

    verified_at: str | None  # when the newest verification was recorded (None: never)
    verified: str | None  # its result: success or failure
    verified_reason: str | None
    verified_index: int | None  # the audit.verify entry
    checkpoint_size: int
    checkpoint_at: str | None  # when the log received the newest entry it covers
    key: str  # the verifier key (name+id+key) that checks every checkpoint
    fingerprint: str  # SHA-256 of the public key, in hex
    detection_position: int | None  # entries detection has evaluated (None: never ran)
    detection_lag: int | None


@dataclass(frozen=True)
class Overview:
    anchor: str  # the moment the windows end (fixed-width UTC)
    integrity: Integrity
    intake: list[tuple[str, int]]  # (day, entries received that day), today last
    severities: dict[str, int]  # alerts not closed, by severity
    cases: list[tuple[str, list[Alert]]]  # alerts not closed, by actor
    shift: Counts  # records opened by actor in the SHIFT before the anchor
    week: Counts  # the same over the WEEK
    outside_unit: list[Alert]  # alerts of access_outside_unit not closed


def fingerprint(public_key: bytes) -> str:
    digest = hashlib.sha256(public_key).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(moment: str) -> datetime:
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


_OWN = Not(Match("action", tuple(Prefix(f"{name}.") for name in RESERVED)))


@dataclass
class Overviews:
    ledger: Ledger
    recorder: Recorder
    entries: Entries
    alerts: Alerts

    def overview(self, caller: Caller, at: str | None = None) -> Overview:
        """The overview as ``caller`` may see it (``at``: RFC 3339 moment the windows end);
        recorded as one ``audit.read`` besides the ``alert.read`` of its alerts."""
        self.recorder.authorize(caller, Permission.READ)
        self.ledger.catch_up()
        anchor = fixed_width(at) if at else self._anchor(caller)
        integrity = self._integrity()
        open_alerts = [a for a in self.alerts.list(caller) if a.status != "resolved"]
        reads = tuple(Exact(a) for a in self.ledger.actions() if a.endswith(READ_SUFFIX))
        severities: dict[str, int] = {}
        for alert in open_alerts:
            severities[alert.severity] = severities.get(alert.severity, 0) + 1
        found = Overview(
            anchor=anchor,
            integrity=integrity,
            intake=self._intake(),
            severities=severities,
            cases=cases(open_alerts),
            shift=self._openers(caller, reads, anchor, SHIFT),
            week=self._openers(caller, reads, anchor, WEEK),
            outside_unit=[a for a in open_alerts if a.rule == OUTSIDE_UNIT_RULE],
        )
        self.recorder.record(
            "audit.read", caller, resource={"type": "log"}, reason="dashboard overview"
        )
        return found

    def _newest(self, where: Match | Not, caller: Caller | None) -> dict[str, object] | None:
        """The newest entry matching ``where`` (among those ``caller`` may see)."""
        query = SearchFilter(where=where, limit=1, newest_first=True)
        if caller is not None:
            query = self.entries.scoped(caller, query)
        return next((view.entry for view in self.ledger.find(query, details=False)), None)

    def _anchor(self, caller: Caller) -> str:
        now = _utc(datetime.now(UTC))
        newest = self._newest(_OWN, caller)
        if newest is None:
            return now
        event = newest["event"]
        assert isinstance(event, dict)
        return min(now, fixed_width(str(event["time"])))

    def _integrity(self) -> Integrity:
        # The log's own record, of no tenant: like its checkpoints, anyone may know it.
        verified = self._newest(Match("action", (Exact("audit.verify"),)), None)
        event = verified["event"] if verified else {}
        assert isinstance(event, dict)
        outcome = event.get("outcome") or {}
        size = self.ledger.size()
        try:
            note = self.ledger.checkpoint()
            signed = int(note.split("\n")[1])
        except NotFoundError:
            signed = 0
        received = None
        if signed:
            received = str(self.ledger.get(signed - 1).entry["received_at"])
        verifier = self.ledger.verifier
        position = self.alerts.position()
        return Integrity(
            verified_at=str(verified["received_at"]) if verified else None,
            verified=outcome.get("result") if verified else None,
            verified_reason=outcome.get("reason") if verified else None,
            verified_index=int(str(verified["index"])) if verified else None,
            checkpoint_size=signed,
            checkpoint_at=received,
            key=str(verifier),
            fingerprint=fingerprint(verifier.public_key),
            detection_position=position,
            detection_lag=None if position is None else max(0, size - position),
        )

    def _intake(self) -> list[tuple[str, int]]:
        """Entries the log received on each of the last INTAKE_DAYS days (UTC), today last:
        intake is when entries arrived, whatever time their events name."""
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        days = [end - timedelta(days=n) for n in range(INTAKE_DAYS - 1, -2, -1)]
        counts = self.ledger.received_counts([_utc(day) for day in days])
        return [(day.strftime("%Y-%m-%d"), n) for day, n in zip(days, counts, strict=False)]

    def _openers(
        self, caller: Caller, reads: tuple[Exact, ...], anchor: str, span: timedelta
    ) -> Counts:
        """Records opened by each actor in the ``span`` up to the anchor (included)."""
        if not reads:
            return Counts("actor", [], 0)
        end = _parse(anchor) + timedelta(microseconds=1)
        window = Match("time", (Between(_utc(end - span), _utc(end)),))
        query = SearchFilter(where=both(Match("action", reads), window))
        counts = self.ledger.count_by(self.entries.scoped(caller, query), "actor")
        return replace(counts, values=counts.values[:TOP])
