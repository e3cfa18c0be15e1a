"""SQLAlchemy change capture on a real SQLite database, through the outbox."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    LargeBinary,
    PickleType,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

from conftest import need_postgres
from trailseal.capture import MemoryEmitter, set_actor
from trailseal.capture.context import begin, end
from trailseal.capture.orm import DROP, ChangeCapture
from trailseal.capture.outbox import Outbox
from trailseal.errors import CaptureError, EventError
from trailseal.events import event_from_mapping


class Base(DeclarativeBase):
    pass


staff_units = Table(
    "staff_units",
    Base.metadata,
    Column("staff_id", ForeignKey("staff.id"), primary_key=True),
    Column("unit_id", ForeignKey("units.id"), primary_key=True),
)


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20), default="nurse")
    units: Mapped[list[Unit]] = relationship(secondary=staff_units)


class Attachment(Base):
    """Columns host applications really have: binary, naive timestamps, JSON, pickles."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    text: Mapped[str | None] = mapped_column(Text)
    taken: Mapped[datetime | None]
    meta: Mapped[dict | None] = mapped_column(JSON)
    blob: Mapped[object | None] = mapped_column(PickleType)


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    ward: Mapped[str] = mapped_column(String(10))
    ssn: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(String(100), default="")


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs on a real SQLite file and on the real PostgreSQL server, in a
    schema of its own that is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


def _database(url: str, **capture: object) -> tuple:
    """A real database with an outbox, and a session factory whose changes it captures."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    outbox = Outbox()
    outbox.create(engine)
    factory = sessionmaker(engine, class_=type("AuditedSession", (Session,), {}))
    ChangeCapture(outbox, **capture).attach(factory)  # type: ignore[arg-type]
    return engine, factory, outbox


@pytest.fixture
def setup(url: str) -> Iterator[tuple]:
    sensitive = {"patients.ssn": b"k3y", "patients.notes": DROP}
    engine, factory, outbox = _database(url, sensitive=sensitive, service="ehr")
    yield engine, factory, outbox
    engine.dispose()


def _shipped(engine, outbox: Outbox) -> list[dict]:
    emitter = MemoryEmitter()
    outbox.ship(engine, emitter)
    for event in emitter.events:
        event_from_mapping(event)
    return emitter.events


def test_insert_update_delete_with_before_and_after(setup: tuple) -> None:
    engine, factory, outbox = setup
    with factory.begin() as session:
        session.add(Patient(name="A. Jones", ward="3B", ssn="123-45-6789", notes="private"))
    with factory.begin() as session:
        patient = session.get(Patient, 1)
        patient.ward = "4A"
    with factory.begin() as session:
        session.delete(session.get(Patient, 1))
    created, updated, deleted = _shipped(engine, outbox)
    assert created["action"] == "record.create"
    assert created["resource"] == {"type": "patients", "id": "1"}
    assert created["detail"]["after"]["ward"] == "3B"
    assert created["detail"]["after"]["ssn"].startswith("hmac-sha256:")
    assert created["detail"]["after"]["notes"] == "[dropped]"
    assert updated["detail"] == {"before": {"ward": "3B"}, "after": {"ward": "4A"}}
    assert deleted["action"] == "record.delete"
    assert deleted["detail"]["before"]["name"] == "A. Jones"
    assert deleted["detail"]["after"] is None


def test_equal_sensitive_values_match_without_being_revealed(setup: tuple) -> None:
    engine, factory, outbox = setup
    with factory.begin() as session:
        session.add_all(
            [Patient(name="A", ward="1", ssn="same"), Patient(name="B", ward="1", ssn="same")]
        )
    first, second = _shipped(engine, outbox)
    assert first["detail"]["after"]["ssn"] == second["detail"]["after"]["ssn"]
    assert "same" not in str(first)


def test_rollback_yields_no_event(setup: tuple) -> None:
    engine, factory, outbox = setup

    def failing() -> None:
        with factory.begin() as session:
            session.add(Patient(name="X", ward="1", ssn="1"))
            session.flush()
            raise RuntimeError("the business change failed")

    with pytest.raises(RuntimeError):
        failing()
    assert _shipped(engine, outbox) == []


def test_actor_from_the_request(setup: tuple) -> None:
    engine, factory, outbox = setup
    _, token = begin()
    try:
        set_actor("u-1042", roles=["nurse"])
        with factory.begin() as session:
            session.add(Patient(name="A", ward="1", ssn="1"))
    finally:
        end(token)
    (event,) = _shipped(engine, outbox)
    assert event["actor"] == {"id": "u-1042", "type": "user", "roles": ["nurse"]}


def _changes(events: list[dict]) -> list[tuple]:
    """(action, table, id, before, after) of each event, for exact comparison."""
    return [
        (
            e["action"],
            e["resource"]["type"],
            e["resource"].get("id"),
            e["detail"]["before"],
            e["detail"]["after"],
        )
        for e in events
    ]


def _add_patients(factory, n: int) -> None:
    with factory.begin() as session:
        session.add_all(
            [Patient(name=f"P{i}", ward="3B" if i % 2 else "4A", ssn=str(i)) for i in range(n)]
        )


def test_unit_of_work_is_not_recorded_twice(setup: tuple) -> None:
    engine, factory, outbox = setup
    _add_patients(factory, 3)
    events = _shipped(engine, outbox)
    assert len(events) == 3
    assert {e["context"]["labels"]["capture"] for e in events} == {"unit-of-work"}


def test_core_bulk_update_and_delete_with_before_and_after(setup: tuple) -> None:
    engine, factory, outbox = setup
    _add_patients(factory, 4)  # ids 1..4; odd positions (ids 2, 4) are in 3B
    _shipped(engine, outbox)
    table = Patient.__table__
    with engine.begin() as connection:
        connection.execute(update(table).where(table.c.ward == "3B").values(ward="ICU"))
        connection.execute(delete(table).where(table.c.ward == "4A"))
    assert sorted(_changes(_shipped(engine, outbox))) == [
        ("record.delete", "patients", "1", _before(1, "P0", "4A"), None),
        ("record.delete", "patients", "3", _before(3, "P2", "4A"), None),
        ("record.update", "patients", "2", {"ward": "3B"}, {"ward": "ICU"}),
        ("record.update", "patients", "4", {"ward": "3B"}, {"ward": "ICU"}),
    ]


def _before(pk: int, name: str, ward: str) -> dict:
    ssn = _shipped_ssn(str(pk - 1))
    return {"id": pk, "name": name, "ward": ward, "ssn": ssn, "notes": "[dropped]"}


def _shipped_ssn(value: str) -> str:
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    return "hmac-sha256:" + hmac.new(b"k3y", value.encode(), hashlib.sha256).hexdigest()


def test_orm_bulk_statements(setup: tuple) -> None:
    engine, factory, outbox = setup
    with factory.begin() as session:
        session.execute(
            insert(Patient),
            [{"name": "B1", "ward": "1", "ssn": "x"}, {"name": "B2", "ward": "1", "ssn": "y"}],
        )
        session.execute(update(Patient).where(Patient.name == "B1").values(ward="2"))
        session.execute(update(Patient), [{"id": 2, "ward": "3"}])  # bulk update by key
        session.execute(delete(Patient).where(Patient.name == "B1"))
    changes = _changes(_shipped(engine, outbox))
    assert [(a, i) for a, _, i, _, _ in changes] == [
        ("record.create", "1"),
        ("record.create", "2"),
        ("record.update", "1"),
        ("record.update", "2"),
        ("record.delete", "1"),
    ]
    assert changes[0][4]["notes"] == "[dropped]"  # the column default, read back as stored
    assert changes[2][3:] == ({"ward": "1"}, {"ward": "2"})
    assert changes[3][3:] == ({"ward": "1"}, {"ward": "3"})


def test_legacy_bulk_mappings(setup: tuple) -> None:
    engine, factory, outbox = setup
    with factory.begin() as session:
        session.bulk_insert_mappings(Patient, [{"name": "L", "ward": "1", "ssn": "1"}])
        session.bulk_update_mappings(Patient, [{"id": 1, "ward": "9"}])
    changes = _changes(_shipped(engine, outbox))
    assert [(a, i) for a, _, i, _, _ in changes] == [("record.create", "1"), ("record.update", "1")]
    assert changes[1][3:] == ({"ward": "1"}, {"ward": "9"})


def test_core_inserts_multi_values_and_executemany(setup: tuple) -> None:
    engine, _factory, outbox = setup
    table = Patient.__table__
    with engine.begin() as connection:
        connection.execute(
            insert(table).values(
                [{"name": "M1", "ward": "1", "ssn": "a"}, {"name": "M2", "ward": "1", "ssn": "b"}]
            )
        )
        connection.execute(insert(table), [{"name": "E1", "ward": "2", "ssn": "c"}])
        connection.execute(insert(table).values(name="S", ward=func.upper("x"), ssn="d"))
        connection.execute(
            update(table).where(table.c.id == bindparam("key")).values(ward=bindparam("w")),
            [{"key": 1, "w": "7"}, {"key": 2, "w": "8"}],
        )
    changes = _changes(_shipped(engine, outbox))
    assert [(a, i, (after or {}).get("name")) for a, _, i, _, after in changes] == [
        ("record.create", "1", "M1"),
        ("record.create", "2", "M2"),
        ("record.create", "3", "E1"),
        ("record.create", "4", "S"),
        ("record.update", "1", None),
        ("record.update", "2", None),
    ]
    assert changes[3][4]["ward"] == "X"  # what the database stored, not the SQL expression
    assert [c[4] for c in changes[4:]] == [{"ward": "7"}, {"ward": "8"}]


def test_many_to_many_links_and_unlinks(setup: tuple) -> None:
    engine, factory, outbox = setup
    with factory.begin() as session:
        session.add(
            Staff(id=1, name="N. Okafor", units=[Unit(id=1, name="3B"), Unit(id=2, name="ICU")])
        )
    with factory.begin() as session:
        nurse = session.get(Staff, 1)
        nurse.units = [u for u in nurse.units if u.name == "ICU"]
    links = [c for c in _changes(_shipped(engine, outbox)) if c[1] == "staff_units"]
    assert sorted(links) == [
        ("record.create", "staff_units", "1,1", None, {"staff_id": 1, "unit_id": 1}),
        ("record.create", "staff_units", "1,2", None, {"staff_id": 1, "unit_id": 2}),
        ("record.delete", "staff_units", "1,1", {"staff_id": 1, "unit_id": 1}, None),
    ]


def test_rolled_back_bulk_statement_yields_no_event(setup: tuple) -> None:
    engine, factory, outbox = setup
    _add_patients(factory, 2)
    _shipped(engine, outbox)

    def failing() -> None:
        with engine.begin() as connection:
            connection.execute(delete(Patient.__table__))
            raise RuntimeError("the business change failed")

    with pytest.raises(RuntimeError):
        failing()
    assert _shipped(engine, outbox) == []
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Patient.__table__)).scalar() == 2


def test_a_failed_statement_leaves_nothing_behind(setup: tuple) -> None:
    engine, _factory, outbox = setup
    table = Patient.__table__
    with engine.begin() as connection:
        connection.execute(insert(table).values(id=1, name="A", ward="1", ssn="1"))
        with pytest.raises(Exception, match=r"(?i)unique"), connection.begin_nested():
            connection.execute(insert(table).values(id=1, name="dup", ward="1", ssn="1"))
        connection.execute(update(table).values(ward="2"))
    actions = [c[0] for c in _changes(_shipped(engine, outbox))]
    assert actions == ["record.create", "record.update"]


def test_a_statement_over_max_rows_is_refused_before_it_runs(url: str) -> None:
    engine, _factory, _outbox = _database(url, max_rows=3)
    table = Patient.__table__
    with engine.begin() as connection:
        connection.execute(
            insert(table), [{"name": str(i), "ward": "1", "ssn": "s"} for i in range(5)]
        )
    with pytest.raises(CaptureError, match="more than 3 rows"), engine.begin() as connection:
        connection.execute(delete(table))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(table)).scalar() == 5


# -- what host applications store -------------------------------------------


@pytest.fixture
def attachments(tmp_path: Path) -> tuple:
    return _database(f"sqlite:///{tmp_path / 'att.db'}")


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque)

    __hash__ = object.__hash__


def test_binary_naive_datetime_json_and_opaque_values(attachments: tuple) -> None:
    engine, factory, outbox = attachments
    huge = "x" * 1_000_000
    with factory.begin() as session:
        session.add(
            Attachment(
                body=b"\x00\xff" * 10,
                text=huge,
                taken=datetime(2026, 3, 1, 14, 5, 9),  # noqa: DTZ001 - naive on purpose
                meta={"when": 1.5, "tags": ["a"]},
                blob=Opaque(),
            )
        )
    with engine.begin() as connection:  # the same through a statement
        connection.execute(update(Attachment.__table__).values(body=b"\x01" * 5000))
    created, updated = _shipped(engine, outbox)
    after = created["detail"]["after"]
    assert after["body"] == {"base64": base64.b64encode(b"\x00\xff" * 10).decode()}
    assert after["text"]["chars"] == 1_000_000
    assert len(after["text"]["sha256"]) == 64
    assert after["taken"] == "2026-03-01T14:05:09"  # as stored: no zone is invented
    assert after["meta"] == {"when": "1.5", "tags": ["a"]}
    assert after["blob"] == {"type": "Opaque", "repr": "Opaque()"}
    assert updated["detail"]["after"]["body"]["bytes"] == 5000


@settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    body=st.binary(max_size=5000) | st.none(),
    text=st.text(max_size=3000) | st.none(),
    meta=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=10,
    ),
)
def test_any_row_yields_one_valid_event(attachments: tuple, body, text, meta) -> None:
    engine, factory, outbox = attachments
    with factory.begin() as session:
        session.add(Attachment(body=body, text=text, meta={"v": meta}))
    events = _shipped(engine, outbox)  # every event passes the log's own parser
    assert len(events) == 1
    assert len(orjson.dumps(events[0])) < 64 * 1024


def test_a_batch_shipped_twice_keeps_its_event_ids(setup: tuple) -> None:
    """A crash after the client spooled a batch but before the outbox row was deleted
    ships it again: the ids repeat, so the log (idempotent by id) keeps one copy."""
    engine, factory, outbox = setup
    _add_patients(factory, 2)
    with engine.connect() as connection:
        payload = connection.execute(select(outbox.table.c.events)).scalar_one()
    first = _shipped(engine, outbox)
    with engine.begin() as connection:  # the row comes back, as after the crash
        connection.execute(insert(outbox.table).values(event_id="again", events=payload))
    again = _shipped(engine, outbox)
    assert [e["id"] for e in again] == [e["id"] for e in first]
    assert first[0]["id"].endswith(".0")


def test_a_json_column_too_deep_for_an_event_is_digested(attachments: tuple) -> None:
    engine, factory, outbox = attachments
    deep: object = "bottom"
    for _ in range(31):
        deep = {"d": deep}
    with factory.begin() as session:
        session.add(Attachment(meta=deep))
    (event,) = _shipped(engine, outbox)
    assert set(event["detail"]["after"]["meta"]) == {"sha256", "chars"}


def test_an_actor_the_log_would_refuse_is_refused_in_the_application(setup: tuple) -> None:
    engine, factory, outbox = setup
    _, token = begin()
    try:
        set_actor("u" * 300)  # ids are at most 256 characters
        with pytest.raises(EventError, match=r"\$\.actor\.id"), factory.begin() as session:
            session.add(Patient(name="A", ward="1", ssn="1"))
    finally:
        end(token)
    assert _shipped(engine, outbox) == []
    with engine.connect() as connection:  # and the change itself rolled back
        assert connection.execute(select(func.count()).select_from(Patient.__table__)).scalar() == 0
