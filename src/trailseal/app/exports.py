"""The exporter as principals use it: follow the log to a destination, see how each
destination is doing, and send its dead letters again.

Exporting is reading the log out: it needs the export right (the auditor's), sends only
the entries of the caller's tenant, and is recorded (``audit.export``, naming the
destination and its query) when it starts. A destination falling behind its
``max_lag`` is recorded too (``trailseal.export.lagging``, then
``trailseal.export.caught_up``), which the built-in rule ``export_lagging`` alerts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trailseal.access import Permission, entry_tenant
from trailseal.app.caller import Caller
from trailseal.app.recorder import Recorder
from trailseal.errors import NotFoundError
from trailseal.export.config import DestinationConfig, load_destinations
from trailseal.export.exporter import Exporter, State, read_dead
from trailseal.layout import DataLayout
from trailseal.ledger import Ledger

LAGGING = "trailseal.export.lagging"
CAUGHT_UP = "trailseal.export.caught_up"


@dataclass
class Exports:
    """The destinations ``DATA/exports.yaml`` names, and their exporters."""

    ledger: Ledger
    recorder: Recorder
    layout: DataLayout

    def destinations(self) -> dict[str, DestinationConfig]:
        return load_destinations(self.layout.exports_config)

    def _named(self, name: str) -> DestinationConfig:
        found = self.destinations()
        if name not in found:
            known = ", ".join(sorted(found)) or f"none: add them to {self.layout.exports_config}"
            raise NotFoundError(f"no destination named {name!r}; configured: {known}")
        return found[name]

    def exporter(self, caller: Caller, name: str) -> Exporter:
        """An exporter for destination ``name``, recorded as a read of the log."""
        self.recorder.authorize(caller, Permission.EXPORT)
        config = self._named(name)
        destination = config.open()
        self.recorder.record(
            "audit.export",
            caller,
            resource={"type": "destination", "id": name},
            labels={
                "destination": name,
                "query": config.query or "",
                "details": "yes" if config.details else "no",
            },
        )

        def on_lag(lagging: bool, behind: int) -> None:
            self.recorder.record(
                LAGGING if lagging else CAUGHT_UP,
                caller,
                resource={"type": "destination", "id": name, "count": behind},
                result="failure" if lagging else "success",
                reason=f"{behind} entries behind (max_lag {config.max_lag})",
                labels={"destination": name},
            )

        def visible(event: dict[str, Any]) -> bool:
            return caller.sees(entry_tenant(event))

        return Exporter(
            self.ledger,
            destination,
            self.layout.export_state(name),
            self.layout.export_dead(name),
            where=config.where,
            details=config.details,
            batch=config.batch,
            max_lag=config.max_lag,
            on_lag=on_lag,
            visible=None if caller.sees_all else visible,
        )

    def status(self, caller: Caller) -> list[dict[str, Any]]:
        """Each destination: where its cursor is, how far behind, what it delivered and
        refused, and the last error (counts only: no event is shown)."""
        self.recorder.authorize(caller, Permission.EXPORT)
        size = self.ledger.size()
        rows = []
        for name, config in sorted(self.destinations().items()):
            state = State.load(self.layout.export_state(name))
            rows.append(
                {
                    "destination": name,
                    "type": config.kind,
                    "cursor": state.cursor,
                    "lag": max(0, size - 1 - state.cursor),
                    "delivered": state.delivered,
                    "dead": sum(1 for _ in read_dead(self.layout.export_dead(name))),
                    "last_error": state.last_error,
                    "last_error_at": state.last_error_at,
                    "updated_at": state.updated_at,
                    "max_lag": config.max_lag,
                }
            )
        return rows

    def lags(self) -> dict[str, tuple[int, int]]:
        """Each destination's lag and dead letters, for the metrics (counts only; no
        caller, like the log's size)."""
        size = self.ledger.size()
        found = {}
        for name in self.destinations():
            state = State.load(self.layout.export_state(name))
            dead = sum(1 for _ in read_dead(self.layout.export_dead(name)))
            found[name] = (max(0, size - 1 - state.cursor), dead)
        return found

    def dead(self, caller: Caller, name: str) -> list[dict[str, Any]]:
        """A destination's dead letters: the entries it refused for good, and why."""
        self.recorder.authorize(caller, Permission.EXPORT)
        self._named(name)
        return list(read_dead(self.layout.export_dead(name)))

    def replay(self, caller: Caller, name: str) -> tuple[int, int]:
        """Send a destination's dead letters again: (delivered, refused again)."""
        exporter = self.exporter(caller, name)
        try:
            return exporter.replay()
        finally:
            exporter.destination.close()
