"""The EHR's web application.

Every line that sets up the audit trail is in :func:`create_app`; the handlers
only say what the middleware cannot know: who the caller turned out to be once
their token was checked (``set_actor``, in :func:`caller`), how many records a
list or export returned (``set_count``), which unit owns the record they
touched (``set_resource``), and role changes with before and after
(``AuditTrail``). Row changes are captured by the ORM hook, in the same
transaction, through the outbox.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ehr.hospital import password_hash
from ehr.model import Export, Note, Patient, Role, Staff
from trailseal.capture import (
    AuditMiddleware,
    AuditTrail,
    Emitter,
    Resource,
    set_actor,
    set_count,
    set_resource,
)
from trailseal.capture.orm import DROP, ChangeCapture
from trailseal.capture.outbox import Outbox, OutboxShipper

Clock = Callable[[], datetime]

RESOURCES = [
    Resource("/login", "session", action="user.login"),
    Resource("/logout", "session", action="user.logout"),
    Resource("/patients/{patient_id}/notes", "note"),
    Resource("/patients", "patient", id_param="patient_id"),
    Resource("/notes", "note", id_param="note_id"),
    Resource("/exports", "export", action="export.create"),
    Resource("/admin/staff/{staff_id}/roles", "staff_role", id_param="staff_id"),
    Resource("/admin/staff", "staff", action="admin.staff.list"),
]


@dataclass(frozen=True)
class Caller:
    staff_id: str
    unit: str
    roles: tuple[str, ...]
    session_id: str


@dataclass
class Audit:
    """The EHR's audit wiring: explicit events, and the outbox's shipper."""

    trail: AuditTrail
    shipper: OutboxShipper


class Login(BaseModel):
    user_id: str = Field(max_length=64)
    password: str = Field(max_length=256)


class DiagnosisChange(BaseModel):
    diagnosis: str = Field(max_length=200)


class NewNote(BaseModel):
    text: str = Field(max_length=20_000)


class ExportRequest(BaseModel):
    unit: str | None = Field(default=None, max_length=16)
    limit: int = Field(default=20, ge=1, le=10_000)
    destination: str = Field(max_length=200)


class RoleChange(BaseModel):
    role: str = Field(max_length=32)


# -- dependencies -------------------------------------------------------------------


def database(request: Request) -> Iterator[Session]:
    with request.app.state.sessions.begin() as session:
        yield session


def _token(authorization: str | None) -> str:
    return (authorization or "").removeprefix("Bearer ").strip()


def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """Token authentication inside the request, as many apps do it: the middleware cannot
    know the caller until this has run, so it is told with set_actor."""
    found: Caller | None = request.app.state.tokens.get(_token(authorization))
    if found is None:
        raise HTTPException(401, "log in first")
    set_actor(found.staff_id, roles=list(found.roles), session_id=found.session_id, unit=found.unit)
    return found


def administrator(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if "admin" not in who.roles:
        raise HTTPException(403, "the admin console needs the admin role")
    return who


Db = Annotated[Session, Depends(database)]
Who = Annotated[Caller, Depends(caller)]
Admin = Annotated[Caller, Depends(administrator)]
router = APIRouter()


def _chart(session: Session, patient_id: str) -> Patient:
    chart = session.get(Patient, patient_id)
    if chart is None:
        raise HTTPException(404, "no such patient")
    set_resource(unit=chart.unit)
    return chart


# -- sessions -----------------------------------------------------------------------


@router.post("/login")
def login(body: Login, session: Db, request: Request) -> dict[str, str]:
    person = session.get(Staff, body.user_id)
    set_actor(body.user_id, unit=person.unit if person else None)  # who tried, even if refused
    if person is None or person.password_hash != password_hash(body.password):
        raise HTTPException(401, "unknown user or wrong password")
    token = secrets.token_urlsafe(24)
    who = Caller(person.id, person.unit, tuple(r.name for r in person.roles), token[:12])
    request.app.state.tokens[token] = who
    set_actor(who.staff_id, roles=list(who.roles), session_id=who.session_id, unit=who.unit)
    return {"token": token}


@router.post("/logout")
def logout(
    _who: Who, request: Request, authorization: Annotated[str | None, Header()] = None
) -> dict[str, str]:
    request.app.state.tokens.pop(_token(authorization), None)
    return {"status": "logged out"}


# -- charts -------------------------------------------------------------------------


@router.get("/patients")
def list_patients(unit: str, session: Db, _who: Who) -> list[dict[str, str]]:
    charts = session.scalars(select(Patient).where(Patient.unit == unit)).all()
    set_count(len(charts))
    set_resource(unit=unit)
    return [{"id": p.id, "name": p.name} for p in charts]


@router.get("/patients/{patient_id}")
def read_patient(patient_id: str, session: Db, _who: Who) -> dict[str, Any]:
    chart = _chart(session, patient_id)
    return {"id": chart.id, "name": chart.name, "unit": chart.unit, "diagnosis": chart.diagnosis}


@router.patch("/patients/{patient_id}")
def change_diagnosis(
    patient_id: str, body: DiagnosisChange, session: Db, _who: Who
) -> dict[str, str]:
    chart = _chart(session, patient_id)
    chart.diagnosis = body.diagnosis  # the ORM capture records before and after
    return {"id": chart.id, "diagnosis": chart.diagnosis}


@router.post("/patients/{patient_id}/notes", status_code=201)
def write_note(
    patient_id: str, body: NewNote, session: Db, who: Who, request: Request
) -> dict[str, Any]:
    chart = _chart(session, patient_id)
    written = request.app.state.clock()
    note = Note(patient_id=chart.id, author_id=who.staff_id, written=written, text=body.text)
    session.add(note)
    session.flush()
    set_resource(resource_id=str(note.id), unit=chart.unit)
    return {"id": note.id}


@router.delete("/notes/{note_id}", status_code=204)
def delete_note(note_id: int, session: Db, who: Who) -> Response:
    note = session.get(Note, note_id)
    if note is None:
        raise HTTPException(404, "no such note")
    if note.author_id != who.staff_id:
        raise HTTPException(403, "only the author may delete a note")
    session.delete(note)
    return Response(status_code=204)


@router.post("/exports")
def export(body: ExportRequest, session: Db, who: Who) -> Response:
    query = select(Patient).order_by(Patient.id).limit(body.limit)
    if body.unit:
        query = query.where(Patient.unit == body.unit)
        set_resource(unit=body.unit)
    charts = session.scalars(query).all()
    session.add(
        Export(
            requested_by=who.staff_id,
            unit=body.unit,
            records=len(charts),
            destination=body.destination,
        )
    )
    set_count(len(charts))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["mrn", "name", "unit", "diagnosis"])
    writer.writerows([p.id, p.name, p.unit, p.diagnosis] for p in charts)
    return Response(out.getvalue(), media_type="text/csv")


# -- the admin console ---------------------------------------------------------------


@router.get("/admin/staff")
def list_staff(session: Db, _admin: Admin) -> list[dict[str, Any]]:
    people = session.scalars(select(Staff).order_by(Staff.id)).all()
    set_count(len(people))
    return [{"id": p.id, "unit": p.unit, "roles": [r.name for r in p.roles]} for p in people]


@router.post("/admin/staff/{staff_id}/roles")
def assign_role(
    staff_id: str, body: RoleChange, session: Db, _admin: Admin, request: Request
) -> dict[str, Any]:
    person, role = session.get(Staff, staff_id), session.get(Role, body.role)
    if person is None or role is None:
        raise HTTPException(404, "no such staff member or role")
    before = sorted(r.name for r in person.roles)
    if role not in person.roles:
        person.roles.append(role)  # the ORM capture records the staff_roles row
    after = sorted(r.name for r in person.roles)
    request.app.state.trail.role_assigned(staff_id, role.name, before=before, after=after)
    return {"id": staff_id, "roles": after}


@router.delete("/admin/staff/{staff_id}/roles/{role}")
def revoke_role(
    staff_id: str, role: str, session: Db, _admin: Admin, request: Request
) -> dict[str, Any]:
    person = session.get(Staff, staff_id)
    if person is None:
        raise HTTPException(404, "no such staff member")
    before = sorted(r.name for r in person.roles)
    person.roles = [r for r in person.roles if r.name != role]
    after = sorted(r.name for r in person.roles)
    request.app.state.trail.role_revoked(staff_id, role, before=before, after=after)
    return {"id": staff_id, "roles": after}


# -- the application, audited ---------------------------------------------------------


def create_app(engine: Engine, emitter: Emitter, clock: Clock | None = None) -> tuple[Any, Audit]:
    """The EHR as an ASGI app inside the audit middleware, and its audit wiring.

    Sensitive columns: the SSN is replaced by a keyed HMAC (equal SSNs stay
    matchable without being revealed); note text is dropped (the trail records
    that a note changed, not what it says).
    """
    clock = clock or (lambda: datetime.now(UTC))
    sessions = sessionmaker(engine, expire_on_commit=False)
    outbox = Outbox()
    outbox.create(engine)
    ChangeCapture(
        outbox,
        service="ehr",
        clock=clock,
        sensitive={"patients.ssn": secrets.token_bytes(32), "notes.text": DROP},
    ).attach(sessions)
    audit = Audit(
        trail=AuditTrail(emitter, service="ehr", clock=clock),
        shipper=OutboxShipper(outbox, engine, emitter, interval=0.2),
    )
    api = FastAPI(title="Demo EHR")
    api.include_router(router)
    api.state.sessions, api.state.tokens = sessions, {}
    api.state.trail, api.state.clock = audit.trail, clock
    audited = AuditMiddleware(  # one event per request to a RESOURCES route, reads included
        api,
        emitter,
        service="ehr",
        clock=clock,
        resources=RESOURCES,
        trusted_proxies=["127.0.0.1/32"],  # the hospital's reverse proxy
    )
    return audited, audit
