"""Change capture for statements: what the unit of work does not see.

``update(...)``, ``delete(...)``, ``insert(...).values([...])``, executemany,
the ORM's bulk methods (``session.execute(update(Model), [...])``,
``bulk_insert_mappings`` and the like) and the association tables of
many-to-many relationships all reach the database as statements on a
connection. Other audit libraries hook only the unit of work and miss them.

For each data-changing statement on an attached engine, in the statement's
own transaction:

- **update and delete**: the rows the statement will change are read first
  (``SELECT ... WHERE`` the statement's own condition, ``FOR UPDATE`` where
  the database has it), then, for updates, read again by primary key after
  it ran; one event per row that changed;
- **insert**: the new rows' keys are asked back (``RETURNING``, where the
  database has it) and the stored rows are read by key, so defaults the
  database filled in are part of the after state; one event per row.

A statement that would change more than ``max_rows`` rows is refused before
it runs (:class:`CaptureError`): an unaudited mass change is what an audit
log exists to prevent. Statements the unit of work already describes (the
flush's own writes to mapped tables) and writes to the outbox are skipped.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, and_, event, insert, select, tuple_
from sqlalchemy.engine import Connection, CursorResult, ExceptionContext
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Delete, Insert, Update, UpdateBase
from sqlalchemy.sql.elements import BindParameter

from trailseal.capture.changes import Change, Row
from trailseal.capture.rows import column_value
from trailseal.errors import CaptureError

if TYPE_CHECKING:
    from trailseal.capture.orm import ChangeCapture

logger = logging.getLogger("trailseal.capture")

PENDING = "trailseal.pending"  # Connection.info: statements between before and after
CHUNK = 500  # primary keys per "WHERE key IN (...)" read


@dataclass
class _Pending:
    """A statement seen before it ran, waiting for its result."""

    statement: UpdateBase
    table: Table
    before: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # insert: the values given


def _key_name(key: object) -> str:
    return key if isinstance(key, str) else str(getattr(key, "key", key))


def _literal(value: object) -> object:
    """A value from a statement's VALUES: a bound Python value, or the SQL text of an
    expression the database computes (``now()``)."""
    if isinstance(value, BindParameter):
        return value.effective_value
    if isinstance(value, ClauseElement):
        return f"[sql] {value}"
    return value


class StatementCapture:
    """Hooks an engine's statement execution; owned by a :class:`ChangeCapture`."""

    def __init__(self, owner: ChangeCapture, max_rows: int) -> None:
        self.owner = owner
        self.max_rows = max_rows
        self._engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._sessions: weakref.WeakKeyDictionary[Connection, weakref.ref[Session]] = (
            weakref.WeakKeyDictionary()
        )

    def attach(self, engine: Engine) -> None:
        if engine in self._engines:
            return  # attaching twice would record every change twice
        self._engines.add(engine)
        event.listen(engine, "before_execute", self._before, retval=True)
        event.listen(engine, "after_execute", self._after)
        event.listen(engine, "handle_error", self._forget)

    def bind_session(self, connection: Connection, session: Session) -> None:
        self._sessions[connection] = weakref.ref(session)

    # -- which statements ----------------------------------------------------

    def _described_by_flush(self, connection: Connection, table: Table) -> bool:
        """True for the flush's own writes to mapped tables: their events come from
        the session's history. ``_warn_on_events`` is set exactly while a flush runs
        its SQL (not during bulk methods, which also set ``_flushing``)."""
        ref = self._sessions.get(connection)
        session = ref() if ref else None
        if session is None or not getattr(session, "_warn_on_events", False):
            return False
        return table.fullname in session.info.get("trailseal.uow_tables", ())

    def _table(self, statement: object) -> Table | None:
        if not isinstance(statement, Insert | Update | Delete):
            return None
        table = statement.table
        if not isinstance(table, Table) or table.fullname == self.owner.outbox.table.fullname:
            return None
        return table

    # -- before --------------------------------------------------------------

    def _before(
        self,
        connection: Connection,
        statement: Any,
        multiparams: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        _options: Mapping[str, Any],
    ) -> tuple[Any, Sequence[Mapping[str, Any]], Mapping[str, Any]]:
        table = self._table(statement)
        if table is None or self._described_by_flush(connection, table):
            return statement, multiparams, params
        param_rows: list[Mapping[str, Any]] = list(multiparams) or [params]
        pending = _Pending(statement, table)
        if isinstance(statement, Insert):
            statement, multiparams, params = self._prepare_insert(
                connection, statement, table, multiparams, params, pending=pending
            )
            pending.statement = statement
        else:
            for row_params in param_rows:
                pending.before.extend(self._read_matching(connection, statement, table, row_params))
            pending.before = _unique(table, pending.before)
            if len(pending.before) > self.max_rows:
                raise CaptureError(
                    f"this {type(statement).__name__.lower()} of {table.fullname} would change "
                    f"more than {self.max_rows} rows; change capture refuses it rather than "
                    "run it unaudited (raise max_rows, or change the rows in batches)"
                )
        waiting = connection.info.setdefault(PENDING, [])
        del waiting[:-16]  # a statement that failed to compile leaves its entry behind
        waiting.append(pending)
        return statement, multiparams, params

    def _read_matching(
        self,
        connection: Connection,
        statement: Update | Delete,
        table: Table,
        row_params: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        where = statement.whereclause
        query = select(*table.columns)
        if where is not None:
            query = query.where(where)
        elif row_params and table.primary_key.columns:
            # the ORM's bulk update by primary key: the keys are in each parameter row
            query = query.where(
                and_(
                    *(
                        column == _param(row_params, table, column.key)
                        for column in table.primary_key
                    )
                )
            )
        query = query.limit(self.max_rows + 1).with_for_update()
        return [row._asdict() for row in connection.execute(query, dict(row_params))]

    def _prepare_insert(  # noqa: PLR0913 - a statement's parts, as SQLAlchemy passes them
        self,
        connection: Connection,
        statement: Insert,
        table: Table,
        multiparams: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        *,
        pending: _Pending,
    ) -> tuple[Insert, Sequence[Mapping[str, Any]], Mapping[str, Any]]:
        """Note the values given, and ask the database for the new rows' keys."""
        if statement.select is not None:
            return statement, multiparams, params  # INSERT ... SELECT: rows known only after
        multi = statement._multi_values  # noqa: SLF001 - .values([...]) has no public reader
        keys_returnable = not multi
        if multi and len(multi) == 1 and _plain(multi[0]):
            # .values([...]) with plain values: run it as executemany, which can
            # return every new key (a multi-row VALUES cannot, in SQLAlchemy)
            multiparams, params = [_row(table, row, lambda v: v) for row in multi[0]], {}
            statement, keys_returnable = insert(table), True
        given = _given(statement)
        pending.rows = [given | dict(row) for row in (list(multiparams) or [params])]
        if multi and not keys_returnable:
            pending.rows = [_row(table, row, _literal) for row in multi[0]]
        dialect = connection.dialect
        can_return = (
            dialect.insert_executemany_returning if multiparams else dialect.insert_returning
        )
        already = statement._returning or statement._return_defaults  # noqa: SLF001
        if table.primary_key.columns and keys_returnable and can_return and not already:
            statement = statement.return_defaults(*table.primary_key.columns)
        return statement, multiparams, params

    # -- after ---------------------------------------------------------------

    def _after(
        self,
        connection: Connection,
        statement: Any,
        _multiparams: object,
        _params: object,
        _options: object,
        result: CursorResult[Any],
    ) -> None:
        waiting: list[_Pending] = connection.info.get(PENDING, [])
        pending = next((p for p in reversed(waiting) if p.statement is statement), None)
        if pending is None:
            return
        waiting.remove(pending)
        if isinstance(statement, Insert):
            found = list(self._insert_changes(connection, pending, result))
        elif isinstance(statement, Update):
            found = list(self._update_changes(connection, pending))
        else:
            found = [
                self._change("record.delete", pending.table, row, None) for row in pending.before
            ]
        self.owner.write(connection, found, "statement")

    def _forget(self, failure: ExceptionContext) -> None:
        """A statement that failed never reaches ``after``: drop what it left. Between a
        statement's ``before`` and ``after`` nothing else runs on its connection, so the
        last statement waiting is the one that failed."""
        connection = failure.connection
        waiting = connection.info.get(PENDING) if connection is not None else None
        if waiting:
            waiting.pop()

    def _insert_changes(
        self, connection: Connection, pending: _Pending, result: CursorResult[Any]
    ) -> Iterator[Change]:
        table = pending.table
        pk = list(table.primary_key.columns)
        if pending.statement.select is not None:  # type: ignore[attr-defined]
            sql = str(pending.statement)[:2000]
            yield (
                "record.create",
                table.fullname,
                None,
                None,
                {"rows": result.rowcount, "sql": sql},
            )
            return
        keys: list[tuple[Any, ...]] = []
        if pk:
            try:
                returned = result.inserted_primary_key_rows
            except Exception:  # noqa: BLE001 - the dialect keeps no keys for this statement
                returned = []
            for n, row in enumerate(pending.rows):
                key = tuple(returned[n] or ()) if n < len(returned) else ()
                given = tuple(row.get(column.key) for column in pk)
                keys.append(given if None in key or not key else key)
        stored = self._read_by_key(connection, table, [k for k in keys if None not in k])
        for n, row in enumerate(pending.rows):
            key = keys[n] if keys else ()
            after = stored.get(key) if key else None
            yield self._change("record.create", table, None, after or row)

    def _update_changes(self, connection: Connection, pending: _Pending) -> Iterator[Change]:
        table = pending.table
        pk = [column.key for column in table.primary_key.columns]
        keys = [tuple(row[k] for k in pk) for row in pending.before] if pk else []
        stored = self._read_by_key(connection, table, keys)
        for n, before in enumerate(pending.before):
            if pk:
                after = stored.get(keys[n])
                if after is None:
                    continue  # the update moved the key itself; read as delete + insert
            else:
                after = before | _given(pending.statement)
            changed = [c for c in after if after[c] != before.get(c)]
            if changed:
                yield self._change(
                    "record.update",
                    table,
                    {c: before.get(c) for c in changed},
                    {c: after[c] for c in changed},
                    key=before,
                )

    def _read_by_key(
        self, connection: Connection, table: Table, keys: list[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], dict[str, Any]]:
        columns = list(table.primary_key.columns)
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            condition = (
                columns[0].in_([k[0] for k in chunk])
                if len(columns) == 1
                else tuple_(*columns).in_(chunk)
            )
            for row in connection.execute(select(*table.columns).where(condition)):
                mapping = row._asdict()
                found[tuple(mapping[c.key] for c in columns)] = mapping
        return found

    def _change(
        self,
        action: str,
        table: Table,
        before: Row | None,
        after: Row | None,
        key: Mapping[str, Any] | None = None,
    ) -> Change:
        row = key or before or after or {}
        pk = [column.key for column in table.primary_key.columns]
        known = pk and all(row.get(k) is not None for k in pk)
        record_id = ",".join(str(row.get(k)) for k in pk) if known else None
        sensitive = self.owner.sensitive
        return (
            action,
            table.fullname,
            record_id,
            _with_policies(table.name, before, sensitive),
            _with_policies(table.name, after, sensitive),
        )


def _with_policies(table: str, row: Row | None, sensitive: Mapping[str, object]) -> Row | None:
    """Sensitive columns dropped or HMAC'd now; the rest are made safe when they ship."""
    if not row:
        return None
    return {
        column: value
        if (policy := sensitive.get(f"{table}.{column}")) is None
        else column_value(value, policy)
        for column, value in row.items()
    }


def _param(row_params: Mapping[str, Any], table: Table, key: str) -> BindParameter[Any]:
    """The bound parameter that carries ``key`` in an ORM bulk-by-key parameter row."""
    for name in (key, f"{table.name}_{key}"):
        if name in row_params:
            return BindParameter(name, row_params[name])
    raise CaptureError(f"bulk update of {table.fullname}: a parameter row lacks its key {key!r}")


def _row(table: Table, row: Any, convert: Callable[[object], object]) -> dict[str, Any]:
    """One row of ``.values([...])``: a mapping, or values in the table's column order."""
    if isinstance(row, Mapping):
        return {_key_name(k): convert(v) for k, v in row.items()}
    return {column.key: convert(v) for column, v in zip(table.columns, row, strict=False)}


def _plain(rows: Sequence[Any]) -> bool:
    """No SQL expressions among the values (those cannot be executemany parameters)."""
    values = (v for row in rows for v in (row.values() if isinstance(row, Mapping) else row))
    return not any(isinstance(v, ClauseElement) for v in values)


def _given(statement: UpdateBase) -> dict[str, Any]:
    """The values a single-row ``.values(...)`` or an update's SET names, as Python values."""
    values: Mapping[Any, Any] = getattr(statement, "_values", None) or {}
    return {_key_name(k): _literal(v) for k, v in values.items()}


def _unique(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pk = [column.key for column in table.primary_key.columns]
    if not pk:
        return rows
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(tuple(row[k] for k in pk), row)
    return list(seen.values())
