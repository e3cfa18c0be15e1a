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
from typing import Any, NamedTuple, cast

from sqlalchemy import Engine, Table, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, Session, sessionmaker
from sqlalchemy.orm.base import NO_VALUE

from trailseal.capture import context
from trailseal.capture.changes import Change, ChangeBatch, Row
from trailseal.capture.outbox import Outbox
from trailseal.capture.rows import DROP, column_value
from trailseal.capture.statements import StatementCapture
from trailseal.capture.values import Clock, now, stamp

__all__ = ["DROP", "ChangeCapture"]

UOW_TABLES = "trailseal.uow_tables"  # Session.info: tables the current flush writes itself


class _Shape(NamedTuple):
    table: str  # the name events give the resource type
    columns: tuple[tuple[str, object | None], ...]  # (attribute key, sensitive policy)
    tables: frozenset[str]  # every table the mapper writes (joined inheritance)
    keys: tuple[str, ...]  # the attributes that hold the primary key
    plain: bool  # no sensitive columns


class ChangeCapture:
    """``ChangeCapture(outbox, sensitive=...).attach(Session)`` where ``Session`` is a
    sessionmaker bound to an engine (or pass ``engine=`` for statements too).

    ``sensitive`` maps ``table.column`` to :data:`DROP` or to a key for a keyed
    HMAC-SHA256, so equal values can be matched without being revealed.
    ``max_rows`` bounds the rows one statement may change: a bigger statement
    is refused (:class:`trailseal.errors.CaptureError`) rather than run unaudited.
    """

    def __init__(  # noqa: PLR0913 - every setting is named at the call site
        self,
        outbox: Outbox,
        *,
        sensitive: Mapping[str, object] | None = None,
        actor: Callable[[], dict[str, Any] | None] | None = None,
        service: str = "app",
        max_rows: int = 50_000,
        clock: Clock = now,
    ) -> None:
        self.outbox = outbox
        self.sensitive = dict(sensitive or {})
        self.default_actor = actor
        self.service = service
        self.clock = clock
        self.statements = StatementCapture(self, max_rows)
        self._shapes: dict[Mapper[Any], _Shape] = {}

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

    def _shape(self, mapper: Mapper[Any]) -> _Shape:
        """What capture needs of one mapped class, worked out once."""
        shape = self._shapes.get(mapper)
        if shape is None:
            table = cast("Table", mapper.local_table)  # declarative mappings map a Table
            columns = tuple(
                (attr.key, self.sensitive.get(f"{table.name}.{attr.key}"))
                for attr in mapper.column_attrs
            )
            tables = frozenset(t.fullname for t in mapper.tables)
            keys = tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key)
            plain = all(policy is None for _, policy in columns)
            shape = self._shapes[mapper] = _Shape(table.fullname, columns, tables, keys, plain)
        return shape

    def _before_flush(self, session: Session, _context: object, _objects: object) -> None:
        """Note the tables this flush writes from history, so statements skip them."""
        classes = {type(obj) for obj in (*session.new, *session.dirty, *session.deleted)}
        tables = (self._shape(inspect(cls)).tables for cls in classes)
        session.info[UOW_TABLES] = frozenset().union(*tables)

    def _after_flush(self, session: Session, _context: object) -> None:
        """After the SQL of a flush ran (new rows have their keys) and before the commit:
        the outbox row joins the same transaction."""
        found = (
            [self._object_change("record.create", obj) for obj in session.new]
            + [self._object_change("record.update", obj) for obj in session.dirty]
            + [self._object_change("record.delete", obj) for obj in session.deleted]
        )
        self.write(session.connection(), [c for c in found if c is not None], "unit-of-work")

    def _object_change(self, action: str, obj: Any) -> Change | None:
        state = inspect(obj)
        shape = self._shape(state.mapper)
        values = state.dict
        before: Row = {}
        after: Row = {}
        if action == "record.create" and shape.plain:
            after = {key: values.get(key) for key, _ in shape.columns}
        elif action == "record.create":
            after = {key: _policy(values.get(key), policy) for key, policy in shape.columns}
        elif action == "record.delete":
            before = {
                key: _policy(getattr(obj, key, None), policy) for key, policy in shape.columns
            }
        else:
            # committed_state holds the old value of each attribute set since the last
            # flush (NO_VALUE when it was never loaded); unchanged ones are skipped
            committed = state.committed_state
            for key, policy in shape.columns:
                if key not in committed:
                    continue
                old, new = committed[key], values.get(key)
                old = None if old is NO_VALUE else old
                if old is new or old == new:
                    continue
                before[key] = _policy(old, policy)
                after[key] = _policy(new, policy)
            if not after:
                return None
        pk = [values.get(k) for k in shape.keys]  # new rows have theirs once flushed
        record_id = ",".join(str(part) for part in pk) if None not in pk else None
        return (action, shape.table, record_id, before or None, after or None)

    # -- the outbox ------------------------------------------------------------

    def write(self, connection: Connection, found: list[Change], via: str) -> None:
        """Write changed rows to the outbox, as one batch in the caller's transaction."""
        if not found:
            return
        from trailseal.client import new_event_id  # noqa: PLC0415 - avoids an import cycle

        capture = context.current()
        actor = (
            (capture.actor if capture else None)
            or (self.default_actor() if self.default_actor else None)
            or {"id": f"service:{self.service}", "type": "service"}
        )
        batch: ChangeBatch = {
            "changes": found,
            "batch": new_event_id(),
            "time": stamp(self.clock),
            "actor": actor,
            "service": self.service,
            "via": via,
        }
        self.outbox.add_changes(connection, batch)


def _policy(value: Any, policy: object | None) -> Any:
    """A sensitive column's value is dropped or HMAC'd now, so the outbox never holds it;
    the rest are made safe when the batch ships."""
    return value if policy is None else column_value(value, policy)
