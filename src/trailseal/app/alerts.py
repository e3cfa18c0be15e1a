"""Alerts raised by detection: list and read (recorded as ``alert.read``); triage them
(acknowledge: under review; resolve: closed, with a disposition; notes), each change an
entry in the log, which is also where an alert's history is read from."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trailseal.access import Permission
from trailseal.app.caller import Caller
from trailseal.app.recorder import Recorder
from trailseal.errors import AccessError, ConfigError, NotFoundError
from trailseal.ledger import EntryView, Ledger, SearchFilter
from trailseal.query import Exact, Match, ResourceValue

if TYPE_CHECKING:
    from trailseal.detect.engine import StateCheck
    from trailseal.detect.store import Alert, DetectionStore

STATUSES = ("open", "acknowledged", "resolved")
# How a closed alert was closed: the activity had a legitimate explanation, the rule
# fired on what it should not have, or the activity was a violation.
DISPOSITIONS = ("explained", "false-positive", "confirmed")
_NO_ACTOR = "(no actor)"
# What an alert's history shows: the log's records of the alert itself and of its triage
# (not the alert.read entries of everyone who looked at it).
_HISTORY = frozenset(
    {"alert.raised", "alert.updated", "alert.acknowledged", "alert.noted", "alert.resolved"}
)


def case_of(alert: Alert) -> str:
    """The actor an alert is about (its ``actor.id=`` group), which makes its case; alerts
    about the log itself (integrity, silence) share one case."""
    for part in alert.group.split(","):
        name, _, value = part.partition("=")
        if name == "actor.id" and value:
            return value
    return _NO_ACTOR


def cases(alerts: list[Alert]) -> list[tuple[str, list[Alert]]]:
    """Alerts grouped by actor: the actor with the most severe, then the most alerts first."""
    grouped: dict[str, list[Alert]] = {}
    for alert in alerts:
        grouped.setdefault(case_of(alert), []).append(alert)
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    return sorted(
        grouped.items(),
        key=lambda item: (min(rank.get(a.severity, 4) for a in item[1]), -len(item[1]), item[0]),
    )


@dataclass
class Alerts:
    """The detection engine's alerts, as principals may see and act on them."""

    ledger: Ledger
    recorder: Recorder
    opener: Callable[[], DetectionStore]

    @contextmanager
    def _store(self) -> Iterator[DetectionStore]:
        store = self.opener()
        try:
            yield store
        finally:
            store.close()

    def list(
        self, caller: Caller, status: str | None = None, rule: str | None = None
    ) -> list[Alert]:
        """Alerts, oldest first, each with the entry indexes that are its evidence."""
        self.recorder.authorize(caller, Permission.READ_ALERTS)
        with self._store() as store:
            found = [a for a in store.alerts(status=status, rule=rule) if caller.sees(a.tenant)]
        self.recorder.record("alert.read", caller, resource={"type": "alert"})
        return found

    def position(self) -> int | None:
        """How many entries detection has evaluated (None: it never ran on this log); a
        position in the log, no event data."""
        with self._store() as store:
            cursor = store.get_state("cursor")
        return None if cursor is None else int(cursor)

    def _visible(self, caller: Caller, store: DetectionStore, alert_id: int) -> Alert:
        """The alert, if it is of the caller's tenant; another tenant's is refused (and the
        refusal recorded) as if it did not exist."""
        found = store.alert(alert_id)
        if not caller.sees(found.tenant):
            self.recorder.refused(
                caller,
                f"alert {alert_id} belongs to another tenant than {caller.principal.tenant!r}",
                resource={"type": "alert", "id": str(alert_id)},
            )
            raise NotFoundError(f"no alert {alert_id}")
        return found

    def get(self, caller: Caller, alert_id: int) -> Alert:
        self.recorder.authorize(caller, Permission.READ_ALERTS)
        with self._store() as store:
            found = self._visible(caller, store, alert_id)
        self.recorder.record("alert.read", caller, resource={"type": "alert", "id": str(alert_id)})
        return found

    def change(
        self,
        caller: Caller,
        alert_id: int,
        status: str,
        reason: str | None,
        disposition: str | None = None,
    ) -> dict[str, Any]:
        """Acknowledge (under review) or resolve (closed, with a disposition) an alert; the
        change is written into the log."""
        from trailseal.detect.engine import record_status  # noqa: PLC0415 - pySigma on first use

        if disposition is not None and disposition not in DISPOSITIONS:
            raise ConfigError(
                f"disposition {disposition[:40]!r} is not one of {', '.join(DISPOSITIONS)}"
            )
        if disposition is not None and status != "resolved":
            raise ConfigError("only closing an alert (resolve) takes a disposition")
        self.recorder.authorize(caller, Permission.MANAGE_ALERTS)
        with self._store() as store:
            self._visible(caller, store, alert_id)
            return record_status(
                self.ledger,
                store,
                alert_id,
                status=status,
                reason=reason,
                actor=caller.id,
                disposition=disposition,
            )

    def note(self, caller: Caller, alert_id: int, text: str) -> dict[str, Any]:
        """Add a note to an alert's triage without changing its state (``alert.noted``)."""
        from trailseal.detect.engine import record_status  # noqa: PLC0415 - see change()

        if not text.strip():
            raise ConfigError("a note needs some text")
        self.recorder.authorize(caller, Permission.MANAGE_ALERTS)
        with self._store() as store:
            self._visible(caller, store, alert_id)
            return record_status(
                self.ledger, store, alert_id, status="noted", reason=text, actor=caller.id
            )

    def history(self, caller: Caller, alert_id: int) -> builtins.list[EntryView]:
        """The log's entries about one alert (raised, merged, acknowledged, noted,
        resolved), oldest first; recorded as ``alert.read``."""
        self.recorder.authorize(caller, Permission.READ_ALERTS)
        with self._store() as store:
            self._visible(caller, store, alert_id)
        about = Match("resource", (ResourceValue(Exact("alert"), Exact(str(alert_id))),))
        self.ledger.catch_up()
        found = [
            view
            for view in self.ledger.find(SearchFilter(where=about, limit=10_000), details=False)
            if view.entry["event"]["action"] in _HISTORY
        ]
        self.recorder.record(
            "alert.read", caller, resource={"type": "alert", "id": str(alert_id)}, reason="history"
        )
        return found

    def check(self, caller: Caller) -> StateCheck:
        """How the detection database disagrees with the log's own records of alerts and of
        the entries evaluated (recorded as ``alert.read``). Every tenant's alerts are
        compared, so only a principal of every tenant may ask."""
        from trailseal.detect.engine import check_state  # noqa: PLC0415 - see change()

        self.recorder.authorize(caller, Permission.READ_ALERTS)
        self._every_tenant(caller, "checking alert state")
        with self._store() as store:
            found = check_state(self.ledger, store)
        self.recorder.record(
            "alert.read", caller, resource={"type": "alert"}, reason="checked against the log"
        )
        return found

    def dead(self, caller: Caller) -> builtins.list[dict[str, Any]]:
        """Deliveries that kept failing until they were given up (recorded as
        ``alert.read``); a tenant-bound principal sees its tenant's only."""
        self.recorder.authorize(caller, Permission.READ_ALERTS)
        with self._store() as store:
            tenants = {alert.id: alert.tenant for alert in store.alerts()}
            rows = [
                {"delivery": d, "alert": a, "sink": s, "attempts": n, "last_error": e}
                for d, a, s, n, e in store.dead()
                if caller.sees(tenants.get(a))
            ]
        self.recorder.record(
            "alert.read", caller, resource={"type": "alert"}, reason="dead deliveries"
        )
        return rows

    def redeliver(self, caller: Caller) -> int:
        """Queue every dead letter again (the sinks send them); recorded as
        ``alert.redelivered``. It acts on every tenant's deliveries, so only a principal
        of every tenant may."""
        self.recorder.authorize(caller, Permission.MANAGE_ALERTS)
        self._every_tenant(caller, "redelivering alerts")
        with self._store() as store, store.transaction():
            count = store.replay_dead()
        self.recorder.record(
            "alert.redelivered", caller, resource={"type": "alert"}, labels={"deliveries": count}
        )
        return count

    def _every_tenant(self, caller: Caller, doing: str) -> None:
        """Refuse (and record) a tenant-bound caller for what spans every tenant's alerts."""
        if not caller.sees_all:
            self.recorder.refused(caller, f"{doing} spans every tenant's alerts")
            raise AccessError(f"{doing} needs a principal of every tenant")
