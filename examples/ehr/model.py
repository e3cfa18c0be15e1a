"""The EHR's tables."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


staff_roles = Table(
    "staff_roles",
    Base.metadata,
    Column("staff_id", ForeignKey("staff.id"), primary_key=True),
    Column("role", ForeignKey("roles.name"), primary_key=True),
)


class Role(Base):
    __tablename__ = "roles"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    privileged: Mapped[bool] = mapped_column(default=False)


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(16))
    shift_start: Mapped[str] = mapped_column(String(5))  # local HH:MM
    shift_end: Mapped[str] = mapped_column(String(5))
    password_hash: Mapped[str] = mapped_column(String(64))
    roles: Mapped[list[Role]] = relationship(secondary=staff_roles, lazy="selectin")


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # the MRN
    name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date]
    unit: Mapped[str] = mapped_column(String(16))
    ssn: Mapped[str] = mapped_column(String(11))  # sensitive: HMAC'd in the audit trail
    diagnosis: Mapped[str] = mapped_column(String(200))


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    author_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    written: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)  # sensitive: dropped from the audit trail


class Export(Base):
    __tablename__ = "exports"
    id: Mapped[int] = mapped_column(primary_key=True)
    requested_by: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    unit: Mapped[str | None] = mapped_column(String(16))
    records: Mapped[int]
    destination: Mapped[str] = mapped_column(String(200))
