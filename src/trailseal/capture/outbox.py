"""The transactional outbox: an audit event commits or rolls back with the change it describes.

``Outbox.add(connection, event)`` writes the event into a table of the
application's own database, inside the application's transaction: a committed
change always has its event, a rolled-back one never does. ``Outbox.ship()``
hands committed events to an emitter (a :class:`trailseal.client.Client`,
whose spool is durable) and only then deletes them, so a crash at any point
loses nothing; an event handed over twice lands once, since the log is
idempotent by event id.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import orjson
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from trailseal.capture import changes
from trailseal.capture.request import Emitter
from trailseal.capture.values import json_safe
from trailseal.events import event_from_mapping


class Outbox:
    """Audit events waiting in the application's database to be shipped."""

    def __init__(
        self, table_name: str = "trailseal_outbox", metadata: MetaData | None = None
    ) -> None:
        self.metadata = metadata or MetaData()
        self.table = Table(
            table_name,
            self.metadata,
            # seq keeps the order events were written in (event ids made in the same
            # millisecond do not sort in order), so they ship in that order
            Column("seq", Integer, primary_key=True, autoincrement=True),
            # one row per add: the id of its first event (or batch), and its events
            # as a JSON array, or a change batch that becomes events when it ships
            # (a flush that changes 50 rows costs one insert, not 50)
            Column("event_id", String(256), nullable=False, unique=True),
            Column("events", Text, nullable=False),
        )
        self._insert = insert(self.table)
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}
        self._checked: set[bytes] = set()  # actor/table combinations the log accepts

    def create(self, engine: Engine) -> None:
        """Create the outbox table if it does not exist."""
        self.table.create(engine, checkfirst=True)

    def add(self, transaction: Connection | Session, event: dict[str, Any]) -> str:
        """Write ``event`` in the caller's transaction; it ships only if that commits.
        A bad event is refused here, in the application, naming the field."""
        safe = json_safe(event, "$")
        event_from_mapping(safe)
        transaction.execute(self._insert, {"event_id": safe["id"], "events": _array([safe])})
        return str(safe["id"])

    def add_many(self, transaction: Connection | Session, events: list[dict[str, Any]]) -> None:
        """:meth:`add` for many events, in one row."""
        safe_events = [json_safe(event, "$") for event in events]
        for safe in safe_events:
            event_from_mapping(safe)
        if safe_events:
            transaction.execute(
                self._insert, {"event_id": safe_events[0]["id"], "events": _array(safe_events)}
            )

    def add_changes(self, transaction: Connection | Session, batch: changes.ChangeBatch) -> None:
        """Write a batch of row changes (change capture); it becomes events when it ships."""
        changes.check(batch, self._checked)
        connection = (
            transaction if isinstance(transaction, Connection) else transaction.connection()
        )
        sql, positional = self._raw_insert(connection)
        values = {"event_id": batch["batch"], "events": changes.dumps(batch)}
        # the statement compiled once per dialect: this runs inside every flush
        connection.exec_driver_sql(
            sql, tuple(values[name] for name in positional) if positional else values
        )

    def _raw_insert(self, connection: Connection) -> tuple[str, tuple[str, ...] | None]:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = self._insert.values(event_id="", events="").compile(dialect=dialect)
            positional = tuple(statement.positiontup) if statement.positiontup else None
            compiled = self._compiled[dialect.name] = (str(statement), positional)
        return compiled

    def ship(self, engine: Engine, emitter: Emitter, batch: int = 1000) -> int:
        """Hand every committed event to ``emitter``, then delete it; returns how many."""
        shipped = 0
        while True:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(self.table.c.seq, self.table.c.events)
                    .order_by(self.table.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                return shipped
            for _, payload in rows:
                found = orjson.loads(payload)
                for event in (
                    changes.events(cast("changes.ChangeBatch", found))
                    if isinstance(found, dict)
                    else found
                ):
                    emitter.emit(event)  # durable in the client's spool from here
                    shipped += 1
            with engine.begin() as connection:
                connection.execute(
                    delete(self.table).where(self.table.c.seq.in_([row[0] for row in rows]))
                )


def _array(events: list[dict[str, Any]]) -> str:
    return orjson.dumps(events).decode()


class OutboxShipper(threading.Thread):
    """Ships the outbox every ``interval`` seconds until stopped."""

    def __init__(
        self, outbox: Outbox, engine: Engine, emitter: Emitter, interval: float = 0.5
    ) -> None:
        super().__init__(name="trailseal-outbox", daemon=True)
        self._outbox, self._engine, self._emitter = outbox, engine, emitter
        self._interval = interval
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set():
            self._outbox.ship(self._engine, self._emitter)
            self._halt.wait(self._interval)
        self._outbox.ship(self._engine, self._emitter)
