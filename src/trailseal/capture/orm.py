"""SQLAlchemy change capture: every ORM insert, update and delete, with before and after,
written to the outbox in the same transaction as the change.

This first part covers changes made through the ORM unit of work (objects added,
modified or deleted in a session). Bulk statements (``update(...)``,
``delete(...)`` executed directly) and many-to-many association changes are not
captured yet.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from trailseal.capture import context
from trailseal.capture.outbox import Outbox

DROP = object()  # a column policy: leave the value out, record only that it changed


class ChangeCapture:
    """Attach to a session class: ``ChangeCapture(outbox).attach(Session)``.

    ``sensitive`` maps ``table.column`` to :data:`DROP` or to a key for a keyed
    HMAC-SHA256, so equal values can be matched without being revealed.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        sensitive: Mapping[str, object] | None = None,
        actor: Callable[[], dict[str, Any] | None] | None = None,
        service: str = "app",
    ) -> None:
        self.outbox = outbox
        self.sensitive = dict(sensitive or {})
        self.default_actor = actor
        self.service = service

    def attach(self, session_class: type[Session]) -> None:
        event.listen(session_class, "after_flush", self._after_flush)

    def _after_flush(self, session: Session, _context: object) -> None:
        """After the SQL of a flush ran (new rows have their keys) and before the commit:
        the outbox rows join the same transaction."""
        changes = (
            [("record.create", obj) for obj in session.new]
            + [("record.update", obj) for obj in session.dirty if session.is_modified(obj)]
            + [("record.delete", obj) for obj in session.deleted]
        )
        for action, obj in changes:
            event_body = self._event(action, obj)
            if event_body is not None:
                self.outbox.add(session.connection(), event_body)

    def _value(self, table: str, column: str, value: Any) -> Any:
        policy = self.sensitive.get(f"{table}.{column}")
        if policy is None or value is None:
            return value
        if policy is DROP:
            return "[dropped]"
        digest = hmac.new(bytes(policy), str(value).encode(), hashlib.sha256)  # type: ignore[call-overload]
        return "hmac-sha256:" + digest.hexdigest()

    def _event(self, action: str, obj: Any) -> dict[str, Any] | None:
        state = inspect(obj)
        table = state.mapper.local_table.name
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for attr in state.mapper.column_attrs:
            history = state.attrs[attr.key].history
            current = getattr(obj, attr.key, None)
            if action == "record.create":
                after[attr.key] = self._value(table, attr.key, current)
            elif action == "record.delete":
                before[attr.key] = self._value(table, attr.key, current)
            elif history.has_changes():
                old = history.deleted[0] if history.deleted else None
                before[attr.key] = self._value(table, attr.key, old)
                after[attr.key] = self._value(table, attr.key, current)
        if action == "record.update" and not after:
            return None
        key = state.mapper.primary_key_from_instance(obj)
        record_id = ",".join(str(part) for part in key) if all(p is not None for p in key) else None
        capture = context.current()
        actor = (
            (capture.actor if capture else None)
            or (self.default_actor() if self.default_actor else None)
            or {"id": f"service:{self.service}", "type": "service"}
        )
        from trailseal.client import new_event_id  # noqa: PLC0415 - avoids an import cycle

        resource: dict[str, Any] = {"type": table}
        if record_id is not None:
            resource["id"] = record_id
        return {
            "id": new_event_id(),
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": actor,
            "action": action,
            "resource": resource,
            "outcome": {"result": "success"},
            "source": {"service": self.service},
            "detail": {"before": before or None, "after": after or None},
        }
