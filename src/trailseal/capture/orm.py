"""SQLAlchemy change capture: every insert, update and delete, with before and after,
written to the outbox in the same transaction as the change.

Two paths cover every way a row changes:

- the **unit of work** (objects added, modified or deleted in a session): the
  before and after state come from the session's attribute history, so
  capture adds no query, only one outbox insert per flush;
- **statements** executed directly (``update(...)``, ``delete(...)``,
  ``insert().values([...])``, executemany, the ORM's bulk methods) and the
  association tables behind many-to-many relationships: see
  :mod:`trailseal.capture.statements`, which reads the affected rows before
  and after the statement in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from trailseal.capture import context
from trailseal.capture.outbox import Outbox
from trailseal.capture.rows import DROP, column_value
from trailseal.capture.statements import StatementCapture

__all__ = ["DROP", "ChangeCapture"]

UOW_TABLES = "trailseal.uow_tables"  # Session.info: tables the current flush writes itself


class ChangeCapture:
    """``ChangeCapture(outbox, sensitive=...).attach(Session)`` where ``Session`` is a
    sessionmaker bound to an engine (or pass ``engine=`` for statements too).

    ``sensitive`` maps ``table.column`` to :data:`DROP` or to a key for a keyed
    HMAC-SHA256, so equal values can be matched without being revealed.
    ``max_rows`` bounds the rows one statement may change: a bigger statement
    is refused (:class:`trailseal.errors.CaptureError`) rather than run unaudited.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        sensitive: Mapping[str, object] | None = None,
        actor: Callable[[], dict[str, Any] | None] | None = None,
        service: str = "app",
        max_rows: int = 50_000,
    ) -> None:
        self.outbox = outbox
        self.sensitive = dict(sensitive or {})
        self.default_actor = actor
        self.service = service
        self.statements = StatementCapture(self, max_rows)

    def attach(
        self, sessions: sessionmaker[Any] | type[Session], *, engine: Engine | None = None
    ) -> None:
        """Capture the unit of work of ``sessions`` and every statement run on its engine."""
        session_class = sessions.class_ if isinstance(sessions, sessionmaker) else sessions
        bind = engine or (sessions.kw.get("bind") if isinstance(sessions, sessionmaker) else None)
        event.listen(session_class, "before_flush", self._before_flush)
        event.listen(session_class, "after_flush", self._after_flush)
        event.listen(session_class, "after_begin", self._after_begin)
        if isinstance(bind, Engine):
            self.statements.attach(bind)

    def attach_engine(self, engine: Engine) -> None:
        """Capture statements on ``engine`` (applications without an ORM session)."""
        self.statements.attach(engine)

    # -- the unit of work ----------------------------------------------------

    def _after_begin(self, session: Session, _transaction: object, connection: Connection) -> None:
        self.statements.bind_session(connection, session)

    def _before_flush(self, session: Session, _context: object, _objects: object) -> None:
        """Note the tables this flush writes from history, so statements skip them."""
        states = [*session.new, *session.dirty, *session.deleted]
        session.info[UOW_TABLES] = {
            table.fullname for obj in states for table in inspect(obj).mapper.tables
        }

    def _after_flush(self, session: Session, _context: object) -> None:
        """After the SQL of a flush ran (new rows have their keys) and before the commit:
        the outbox rows join the same transaction."""
        changes = (
            [("record.create", obj) for obj in session.new]
            + [("record.update", obj) for obj in session.dirty if session.is_modified(obj)]
            + [("record.delete", obj) for obj in session.deleted]
        )
        events = [e for action, obj in changes if (e := self._object_event(action, obj))]
        if events:
            self.outbox.add_many(session.connection(), events)

    def _object_event(self, action: str, obj: Any) -> dict[str, Any] | None:
        state = inspect(obj)
        table = state.mapper.local_table
        name = table.name
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for attr in state.mapper.column_attrs:
            policy = self.sensitive.get(f"{name}.{attr.key}")
            if action == "record.create":
                after[attr.key] = column_value(state.dict.get(attr.key), policy)
            elif action == "record.delete":
                before[attr.key] = column_value(getattr(obj, attr.key, None), policy)
            else:
                history = state.attrs[attr.key].history
                if history.has_changes():
                    old = history.deleted[0] if history.deleted else None
                    before[attr.key] = column_value(old, policy)
                    after[attr.key] = column_value(getattr(obj, attr.key, None), policy)
        if action == "record.update" and not after:
            return None
        key = state.mapper.primary_key_from_instance(obj)
        record_id = ",".join(str(part) for part in key) if all(p is not None for p in key) else None
        return self.change_event(
            action, table.fullname, record_id, before=before, after=after, via="unit-of-work"
        )

    # -- events --------------------------------------------------------------

    def change_event(  # noqa: PLR0913 - the parts of a change, by name
        self,
        action: str,
        table: str,
        record_id: str | None,
        *,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        via: str,
    ) -> dict[str, Any]:
        """One change to one row as an event; ``via`` says which path saw it."""
        from trailseal.client import new_event_id  # noqa: PLC0415 - avoids an import cycle

        capture = context.current()
        actor = (
            (capture.actor if capture else None)
            or (self.default_actor() if self.default_actor else None)
            or {"id": f"service:{self.service}", "type": "service"}
        )
        resource: dict[str, Any] = {"type": table}
        if record_id is not None:
            resource["id"] = record_id[:256]
        return {
            "id": new_event_id(),
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": actor,
            "action": action,
            "resource": resource,
            "outcome": {"result": "success"},
            "source": {"service": self.service},
            "context": {"labels": {"capture": via}},
            "detail": {"before": before or None, "after": after or None},
        }
