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
from typing import Any

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
            Column("event_id", String(256), nullable=False, unique=True),
            Column("event", Text, nullable=False),
        )

    def create(self, engine: Engine) -> None:
        """Create the outbox table if it does not exist."""
        self.table.create(engine, checkfirst=True)

    def add(self, transaction: Connection | Session, event: dict[str, Any]) -> str:
        """Write ``event`` in the caller's transaction; it ships only if that commits."""
        safe = json_safe(event, "$")
        event_from_mapping(safe)  # refuse a bad event now, in the application, not later
        statement = insert(self.table).values(
            event_id=safe["id"], event=orjson.dumps(safe).decode()
        )
        transaction.execute(statement)
        return str(safe["id"])

    def add_many(self, transaction: Connection | Session, events: list[dict[str, Any]]) -> None:
        """:meth:`add` for many events, in one statement."""
        rows = []
        for event in events:
            safe = json_safe(event, "$")
            event_from_mapping(safe)
            rows.append({"event_id": safe["id"], "event": orjson.dumps(safe).decode()})
        if rows:
            transaction.execute(insert(self.table), rows)

    def ship(self, engine: Engine, emitter: Emitter, batch: int = 1000) -> int:
        """Hand every committed event to ``emitter``, then delete it; returns how many."""
        shipped = 0
        while True:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(self.table.c.seq, self.table.c.event)
                    .order_by(self.table.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                return shipped
            for _, event in rows:
                emitter.emit(orjson.loads(event))  # durable in the client's spool from here
            with engine.begin() as connection:
                connection.execute(
                    delete(self.table).where(self.table.c.seq.in_([row[0] for row in rows]))
                )
            shipped += len(rows)


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
