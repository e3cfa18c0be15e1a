"""Retention: what the policies would move to the cold tier and purge, and when; and the
legal holds that stop it (placed and released by the privacy role, with a reason, each an
entry in the log, and read back from the log)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from croniter import croniter

from trailseal.access import Permission
from trailseal.app.caller import Caller
from trailseal.app.recorder import Recorder
from trailseal.errors import BusyError, ConfigError, NotFoundError, PermissionDeniedError
from trailseal.ledger import Ledger, SearchFilter
from trailseal.query import Exact, Match
from trailseal.reports.render import write_whole
from trailseal.retention.holds import HOLD, RELEASE, Hold, active, check_id, hold_query
from trailseal.retention.plan import Plan, plan
from trailseal.retention.policy import RetentionConfig, load_config
from trailseal.retention.run import Fault, Runner, RunReport, cold_location
from trailseal.storage.lease import Lease, open_lease

_HOLD_ACTIONS = Match("action", (Exact(HOLD), Exact(RELEASE)))


@contextmanager
def _one_run(lease: Lease) -> Iterator[None]:
    """Hold the retention lease: one run at a time across processes (the CLI beside
    `serve`'s schedule, or several `serve` processes on one PostgreSQL database); a
    second is refused, never queued."""
    if not lease.acquire():
        raise BusyError(
            "a retention run is already in progress on this log; try again when it is done"
        )
    try:
        yield
    finally:
        lease.release()


def _last_run(state: Path) -> datetime | None:
    try:
        return datetime.fromisoformat(orjson.loads(state.read_bytes())["last"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ConfigError(
            f"{state} is unreadable ({exc}); delete it to start the schedule anew"
        ) from None


@dataclass
class Retention:
    ledger: Ledger
    recorder: Recorder
    _running: threading.Lock = field(default_factory=threading.Lock)  # one run at a time

    def config(self) -> RetentionConfig:
        """The policies in ``DATA/retention.yaml`` (none: everything is kept)."""
        return load_config(self.ledger.settings.layout.retention_config)

    def plan(self, caller: Caller, at: datetime | None = None) -> Plan:
        """What a run at ``at`` (default now) would do, per policy; recorded as
        ``audit.read``. It spans every tenant, so only a principal of every tenant may."""
        self.recorder.authorize(caller, Permission.RETENTION)
        self._every_tenant(caller, "a retention plan", "retention")
        moment = at or datetime.now(UTC)
        found = plan(self.ledger, self.config(), moment, self._active())
        self.recorder.record(
            "audit.read",
            caller,
            resource={"type": "retention", "count": found.size},
            reason=f"retention plan at {found.at}",
        )
        return found

    def run(
        self,
        caller: Caller,
        at: datetime | None = None,
        *,
        fault: Fault | None = None,
        progress: Callable[[str], object] | None = None,
    ) -> RunReport:
        """Seal what is past its hot period into the cold tier and purge what is past its
        total period, at ``at`` (default now), honouring the holds in force. Every purge
        is an entry with a signed receipt; the run itself is recorded too."""
        self.recorder.authorize(caller, Permission.PURGE)
        self._every_tenant(caller, "a retention run", "retention")
        config = self.config()
        location = cold_location(config, self.ledger.settings.data_dir)
        now = datetime.fromisoformat(self.ledger.clock())
        moment = at or now
        if moment > now + timedelta(minutes=1):
            raise ConfigError(
                f"a retention run cannot be dated after now ({now.isoformat()}): at "
                f"{moment.isoformat()} it would purge entries before their time"
            )

        def record(
            action: str, resource: dict[str, Any], reason: str, labels: dict[str, str]
        ) -> None:
            self.recorder.record(
                action, caller, resource=resource, reason=reason, labels={**labels}
            )

        runner = Runner(
            self.ledger,
            config,
            location,
            self._active(),
            record,
            runner=caller.id,
            fault=fault or (lambda _step: None),
            progress=progress,
        )
        settings = self.ledger.settings
        lease = open_lease("retention", settings.store, settings.data_dir)
        with self._running, _one_run(lease):
            return runner.run(moment)

    def run_due(self, now: datetime | None = None) -> RunReport | None:
        """Run retention if its schedule (``schedule:`` in retention.yaml) is due; as
        ``host:retention``. A schedule seen for the first time starts now."""
        config = self.config()
        if config.schedule is None:
            return None
        moment = now or datetime.now(UTC)
        state = self.ledger.settings.layout.retention_state
        last = _last_run(state)
        if last is None:
            write_whole(state, orjson.dumps({"last": moment.isoformat()}))
            return None
        due = croniter(config.schedule, last).get_next(datetime)
        if due > moment:
            return None
        report = self.run(Caller.host("retention"), moment)
        write_whole(state, orjson.dumps({"last": moment.isoformat()}))
        return report

    def receipts(self, caller: Caller) -> list[dict[str, Any]]:
        """Every signed purge receipt, oldest first: its body (JSON text, exactly as signed:
        the purged index ranges and their leaf hashes, the policies, when and by whom) and
        the log's signed note over its SHA-256, which anyone holding the verifier key can
        check. Recorded as ``audit.read``."""
        self.recorder.authorize(caller, Permission.RETENTION)
        self._every_tenant(caller, "purge receipts", "receipt")
        found = [
            {"receipt": r.id, "body": r.body, "signature": r.signature}
            for r in self.ledger.reader.receipts()
        ]
        self.recorder.record(
            "audit.read",
            caller,
            resource={"type": "receipt", "count": len(found)},
            reason="purge receipts listed",
        )
        return found

    def _every_tenant(self, caller: Caller, what: str, kind: str) -> None:
        """Refuse (and record) a tenant-bound caller: retention spans every tenant."""
        if not caller.sees_all:
            reason = f"{what} spans every tenant's entries"
            self.recorder.refused(caller, reason, resource={"type": kind})
            raise PermissionDeniedError(f"{reason}; it needs a principal of every tenant")

    def _active(self) -> list[Hold]:
        self.ledger.catch_up()
        query = SearchFilter(where=_HOLD_ACTIONS, limit=2**62)
        return active((view.index, view.entry) for view in self.ledger.find(query, details=False))

    def holds(self, caller: Caller) -> list[Hold]:
        """The holds in force, oldest first (recorded as ``audit.read``)."""
        self.recorder.authorize(caller, Permission.RETENTION)
        found = self._active()
        self.recorder.record(
            "audit.read", caller, resource={"type": "hold"}, reason="legal holds listed"
        )
        return found

    def hold(self, caller: Caller, query: str, reason: str, *, stops_cold: bool = False) -> Hold:
        """Place a legal hold on what ``query`` covers: nothing it covers is purged (nor,
        with ``stops_cold``, moved to the cold tier) until it is released."""
        self.recorder.authorize(caller, Permission.HOLD)
        self._every_tenant(caller, "a legal hold", "hold")
        hold_query(query)
        if not reason.strip():
            raise ConfigError("a hold needs a reason (a matter, a case number)")
        hold_id = f"h-{secrets.token_hex(6)}"
        self.recorder.record(
            HOLD,
            caller,
            resource={"type": "hold", "id": hold_id},
            reason=reason,
            labels={"query": query, "cold": "stop" if stops_cold else "allow"},
        )
        return next(h for h in self._active() if h.id == hold_id)

    def release(self, caller: Caller, hold_id: str, reason: str) -> Hold:
        """Release a hold, with a reason; what it covered follows its policies again."""
        self.recorder.authorize(caller, Permission.HOLD)
        self._every_tenant(caller, "releasing a legal hold", "hold")
        check_id(hold_id)
        if not reason.strip():
            raise ConfigError("releasing a hold needs a reason")
        found = next((h for h in self._active() if h.id == hold_id), None)
        if found is None:
            raise NotFoundError(f"no hold {hold_id} in force")
        self.recorder.record(
            RELEASE, caller, resource={"type": "hold", "id": hold_id}, reason=reason
        )
        return found
