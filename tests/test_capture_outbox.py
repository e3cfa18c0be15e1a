"""The transactional outbox on a real SQLite database: commit yields the event, rollback
never does, and a crash between commit and shipping loses nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    update,
)

from trailseal.capture import MemoryEmitter
from trailseal.capture.outbox import Outbox
from trailseal.errors import EventError


def _event(n: int) -> dict:
    return {
        "id": f"chg-{n:04d}",
        "time": "2026-03-01T14:05:09Z",
        "actor": {"id": "u-1"},
        "action": "record.update",
        "resource": {"type": "patient", "id": f"p-{n}"},
        "detail": {"before": {"ward": "3B"}, "after": {"ward": "4A"}},
    }


@pytest.fixture
def database(tmp_path: Path) -> tuple:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    metadata = MetaData()
    patients = Table(
        "patients", metadata, Column("id", Integer, primary_key=True), Column("ward", String(10))
    )
    outbox = Outbox(metadata=metadata)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(patients).values(id=1, ward="3B"))
    return engine, patients, outbox


def test_commit_yields_the_event_rollback_never(database: tuple) -> None:
    engine, patients, outbox = database
    with engine.begin() as connection:
        connection.execute(update(patients).values(ward="4A"))
        outbox.add(connection, _event(1))

    def failing_change() -> None:
        with engine.begin() as connection:
            connection.execute(update(patients).values(ward="ICU"))
            outbox.add(connection, _event(2))
            raise RuntimeError("the business change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    emitter = MemoryEmitter()
    assert outbox.ship(engine, emitter) == 1
    assert [e["id"] for e in emitter.events] == ["chg-0001"]
    with engine.connect() as connection:
        assert connection.execute(select(patients.c.ward)).scalar_one() == "4A"
    assert outbox.ship(engine, emitter) == 0  # shipped rows are gone


def test_bad_events_are_refused_inside_the_transaction(database: tuple) -> None:
    engine, patients, outbox = database

    def change_with_bad_event() -> None:
        with engine.begin() as connection:
            connection.execute(update(patients).values(ward="X"))
            outbox.add(connection, {**_event(3), "time": "yesterday"})

    with pytest.raises(EventError, match=r"\$\.time"):
        change_with_bad_event()
    with engine.connect() as connection:
        assert connection.execute(select(patients.c.ward)).scalar_one() == "3B"  # rolled back


CHILD = textwrap.dedent(
    """
    import sys, os
    from sqlalchemy import create_engine, MetaData
    from trailseal.capture.outbox import Outbox
    engine = create_engine("sqlite:///" + sys.argv[1])
    outbox = Outbox(metadata=MetaData())
    with engine.begin() as connection:
        outbox.add(connection, {"id": "crash-1", "time": "2026-03-01T14:05:09Z",
                                "actor": {"id": "u-1"}, "action": "record.delete"})
    os._exit(9)  # killed after the commit, before anything shipped
    """
)


def test_crash_between_commit_and_shipping_loses_nothing(database: tuple, tmp_path: Path) -> None:
    engine, _, outbox = database
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "app.db")], check=False)
    assert child.returncode == 9
    emitter = MemoryEmitter()
    outbox.ship(engine, emitter)
    assert [e["id"] for e in emitter.events] == ["crash-1"]


def test_a_crash_after_handing_over_ships_again_and_the_log_dedupes(database: tuple) -> None:
    engine, _, outbox = database
    with engine.begin() as connection:
        outbox.add(connection, _event(4))

    class DiesAfterEmit(MemoryEmitter):
        def emit(self, event: dict) -> str:
            super().emit(event)
            raise KeyboardInterrupt  # the process dies before the rows are deleted

    first = DiesAfterEmit()
    with pytest.raises(KeyboardInterrupt):
        outbox.ship(engine, first)
    second = MemoryEmitter()
    outbox.ship(engine, second)
    assert [e["id"] for e in first.events] == [e["id"] for e in second.events] == ["chg-0004"]
