"""SQLAlchemy change capture on a real SQLite database, through the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from trailseal.capture import MemoryEmitter, set_actor
from trailseal.capture.context import begin, end
from trailseal.capture.orm import DROP, ChangeCapture
from trailseal.capture.outbox import Outbox
from trailseal.events import event_from_mapping


class Base(DeclarativeBase):
    pass


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    ward: Mapped[str] = mapped_column(String(10))
    ssn: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(String(100), default="")


@pytest.fixture
def setup(tmp_path: Path) -> tuple:
    engine = create_engine(f"sqlite:///{tmp_path / 'ehr.db'}")
    Base.metadata.create_all(engine)
    outbox = Outbox()
    outbox.create(engine)
    factory = sessionmaker(engine, class_=type("AuditedSession", (Session,), {}))
    ChangeCapture(
        outbox, sensitive={"patients.ssn": b"k3y", "patients.notes": DROP}, service="ehr"
    ).attach(factory.class_)
    return engine, factory, outbox


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
