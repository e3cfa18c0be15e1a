"""Retention: what the policies would move to the cold tier and purge, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from trailseal.access import Permission
from trailseal.app.caller import Caller
from trailseal.app.recorder import Recorder
from trailseal.errors import PermissionDeniedError
from trailseal.ledger import Ledger
from trailseal.retention.plan import Plan, plan
from trailseal.retention.policy import RetentionConfig, load_config


@dataclass
class Retention:
    ledger: Ledger
    recorder: Recorder

    def config(self) -> RetentionConfig:
        """The policies in ``DATA/retention.yaml`` (none: everything is kept)."""
        return load_config(self.ledger.settings.layout.retention_config)

    def plan(self, caller: Caller, at: datetime | None = None) -> Plan:
        """What a run at ``at`` (default now) would do, per policy; recorded as
        ``audit.read``. It spans every tenant, so only a principal of every tenant may."""
        self.recorder.authorize(caller, Permission.RETENTION)
        if not caller.sees_all:
            reason = "a retention plan spans every tenant's entries"
            self.recorder.refused(caller, reason, resource={"type": "retention"})
            raise PermissionDeniedError(f"{reason}; it needs a principal of every tenant")
        moment = at or datetime.now(UTC)
        found = plan(self.ledger, self.config(), moment)
        self.recorder.record(
            "audit.read",
            caller,
            resource={"type": "retention", "count": found.size},
            reason=f"retention plan at {found.at}",
        )
        return found
