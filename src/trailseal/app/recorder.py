"""The log's own entries: every read, refusal, export, verification and principal change.

What the log cannot record does not happen: when the record cannot be appended,
the operation is refused with :class:`~trailseal.errors.StoreUnavailableError`
and nothing is returned.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from trailseal.access import ALL_TENANTS, Permission, decide
from trailseal.app.caller import Caller
from trailseal.errors import (
    ConfigError,
    PermissionDeniedError,
    StorageError,
    StoreUnavailableError,
)
from trailseal.events import event_from_mapping
from trailseal.ledger import Ledger
from trailseal.ledger.entry import LOG_SUBMITTER, utc_now

# The log's own records of refusals and failed authentication against itself are audit.*:
# auth.* is the applications' (their users' logins). Entries written before this have
# auth.denied and auth.failure: they mean the same (see docs/service.md).
DENIED = "audit.denied"
AUTHENTICATION_FAILED = "audit.authentication_failed"
FAILURES_LOGGED_PER_MINUTE = 5  # per source; beyond that they are counted, then logged once


@dataclass
class _Flood:
    window: float = 0.0
    logged: int = 0
    suppressed: int = 0


def _actor(caller: Caller | None) -> dict[str, Any]:
    if caller is None:
        return {"id": "trailseal", "type": "system"}
    principal = caller.principal
    actor: dict[str, Any] = {
        "id": principal.id,
        "type": "user",
        "name": principal.name,
        "roles": [str(principal.role)],
    }
    if principal.tenant != ALL_TENANTS:
        actor["tenant"] = principal.tenant
    return actor


@dataclass
class Recorder:
    """Writes the log's own entries (submitted by the log itself)."""

    ledger: Ledger
    instance: str = field(default_factory=lambda: secrets.token_hex(4))
    _floods: dict[str, _Flood] = field(default_factory=dict)
    _flood_lock: threading.Lock = field(default_factory=threading.Lock)

    def record(  # noqa: PLR0913 - the fields of an audit event, by name
        self,
        action: str,
        caller: Caller | None,
        *,
        source_ip: str | None = None,
        resource: dict[str, Any] | None = None,
        result: str = "success",
        reason: str | None = None,
        labels: dict[str, str | int] | None = None,
    ) -> int:
        """Append one entry about the log's own use; returns its index."""
        ip = source_ip or (caller.source_ip if caller else None)
        service = caller.service if caller else "trailseal"
        raw: dict[str, Any] = {
            "id": f"svc-{self.instance}-{secrets.token_hex(8)}",
            "time": utc_now(),
            "actor": _actor(caller),
            "action": action,
            "outcome": {"result": result} | ({"reason": reason[:4096]} if reason else {}),
            "source": {"service": service} | ({"ip": ip} if ip else {}),
        }
        if resource:
            raw["resource"] = resource
        if labels:
            raw["context"] = {"labels": {key: str(value)[:256] for key, value in labels.items()}}
        try:
            return self.ledger.append([event_from_mapping(raw)], LOG_SUBMITTER).indexes[0]
        except (StorageError, ConfigError) as exc:
            raise StoreUnavailableError(
                f"this must be recorded in the log and the log cannot append: {exc.diagnostics()}"
            ) from None
        # A VerificationError (the signer refusing a checkpoint inconsistent with what it
        # signed before) passes unchanged: it is damage, not unavailability.

    def authorize(self, caller: Caller, permission: Permission) -> None:
        """Go on if the caller's role may; otherwise record the refusal and raise it."""
        decision = decide(caller.principal.role, permission)
        if not decision.allowed:
            self.refused(caller, decision.reason, labels={"permission": str(permission)})
            raise PermissionDeniedError(decision.reason)

    def refused(
        self,
        caller: Caller,
        reason: str,
        *,
        resource: dict[str, Any] | None = None,
        labels: dict[str, str | int] | None = None,
    ) -> int:
        """Record a refusal: a role that may not, or a reach into another tenant."""
        return self.record(
            DENIED, caller, result="denied", reason=reason, resource=resource, labels=labels
        )

    def authentication_failed(self, source_ip: str, why: str) -> None:
        """Record a failed authentication; a burst from one source is counted, not flooded."""
        now = time.monotonic()
        with self._flood_lock:
            flood = self._floods.setdefault(source_ip, _Flood(window=now))
            summary = 0
            if now - flood.window >= 60:
                summary, flood.window, flood.logged, flood.suppressed = flood.suppressed, now, 0, 0
            flood.logged += 1
            log_this = flood.logged <= FAILURES_LOGGED_PER_MINUTE
            if not log_this:
                flood.suppressed += 1
        if summary:
            self._flood_summary(source_ip, summary)
        if log_this:
            self.record(
                AUTHENTICATION_FAILED, None, source_ip=source_ip, result="failure", reason=why
            )

    def _flood_summary(self, source_ip: str, count: int) -> None:
        self.record(
            AUTHENTICATION_FAILED,
            None,
            source_ip=source_ip,
            result="failure",
            reason=f"{count} more failed authentications from this source in one minute",
            resource={"type": "authentication", "count": count},
        )

    def flush_floods(self) -> None:
        """Record the failures counted but not yet logged (at shutdown)."""
        with self._flood_lock:
            pending = [(ip, f.suppressed) for ip, f in self._floods.items() if f.suppressed]
            self._floods.clear()
        for ip, count in pending:
            self._flood_summary(ip, count)
