"""Run the hospital for a simulated month against a trailseal service.

The EHR runs as a real HTTP server (uvicorn, on loopback) and its events go
to trailseal through the real client, as in production. Two demo-only
liberties: the traffic generator plays the hospital's reverse proxy (it sets
``X-Forwarded-For``, which the EHR trusts from 127.0.0.1 only), and it tells
the EHR what time it is in the simulated month (``X-Demo-Time``), which the
EHR passes to trailseal's capture through its ``clock``.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from ehr.app import create_app
from ehr.hospital import ROLES, password_hash, patients, staff, write_context
from ehr.model import Base, Patient, Role, Staff
from ehr.traffic import Incident, Month, Step
from trailseal.client import Client

_simulated: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("now", default=None)


def clock() -> datetime:
    """The simulated month's time during a request; the real time otherwise."""
    return _simulated.get() or datetime.now(UTC)


class SimulatedTime:
    """ASGI wrapper: a request's ``X-Demo-Time`` becomes the time its events carry."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        stamp = (
            dict(scope.get("headers", [])).get(b"x-demo-time") if scope["type"] == "http" else None
        )
        token = _simulated.set(datetime.fromisoformat(stamp.decode()) if stamp else None)
        try:
            await self.app(scope, receive, send)
        finally:
            _simulated.reset(token)


@dataclass
class Report:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    incidents: list[Incident] = field(default_factory=list)
    context: tuple[Path, Path] | None = None
    seconds: float = 0.0


def seed_database(url: str) -> Any:
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _wal(dbapi: Any, _record: Any) -> None:
        dbapi.execute("PRAGMA journal_mode=WAL")

    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        roles = {name: Role(name=name, privileged=privileged) for name, privileged in ROLES.items()}
        session.add_all(roles.values())
        for person in staff():
            session.add(
                Staff(
                    id=person.id,
                    name=person.name,
                    unit=person.unit,
                    shift_start=person.shift_start,
                    shift_end=person.shift_end,
                    password_hash=password_hash(person.password),
                    roles=[roles[r] for r in person.roles],
                )
            )
        session.add_all(Patient(**chart.__dict__) for chart in patients())
    return engine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Runner:
    """Plays the month's steps against the EHR over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.tokens: dict[str, str] = {}
        self.passwords = {p.id: p.password for p in staff()}

    def perform(self, step: Step) -> int:
        headers = {
            "X-Forwarded-For": step.ip,
            "X-Demo-Time": step.when.isoformat(),
            "User-Agent": "ehr-workstation/4.2",
        }
        if step.actor in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[step.actor]}"
        answer = self._send(step, headers)
        if step.verb == "login" and answer.status_code == 200:
            self.tokens[step.actor] = answer.json()["token"]
        if step.verb == "logout":
            self.tokens.pop(step.actor, None)
        return answer.status_code

    def _send(self, step: Step, headers: dict[str, str]) -> httpx.Response:
        if step.verb == "login":
            password = "wrong" if step.args.get("wrong") else self.passwords[step.actor]
            body = {"user_id": step.actor, "password": password}
            return self.http.post("/login", json=body, headers=headers)
        method, url, extra = ROUTES[step.verb](step.args)
        return self.http.request(method, url, headers=headers, **extra)


_NOTE = {"text": "Obs stable. Plan unchanged; review at next round."}
_DIAGNOSIS = {"diagnosis": "improving; step down planned"}
ROUTES: dict[str, Callable[[dict[str, Any]], tuple[str, str, dict[str, Any]]]] = {
    "logout": lambda _: ("POST", "/logout", {}),
    "read": lambda a: ("GET", f"/patients/{a['patient']}", {}),
    "list": lambda a: ("GET", "/patients", {"params": {"unit": a["unit"]}}),
    "note": lambda a: ("POST", f"/patients/{a['patient']}/notes", {"json": _NOTE}),
    "diagnose": lambda a: ("PATCH", f"/patients/{a['patient']}", {"json": _DIAGNOSIS}),
    "export": lambda a: ("POST", "/exports", {"json": a}),
    "list_staff": lambda _: ("GET", "/admin/staff", {}),
    "grant": lambda a: ("POST", f"/admin/staff/{a['staff']}/roles", {"json": {"role": a["role"]}}),
    "revoke": lambda a: ("DELETE", f"/admin/staff/{a['staff']}/roles/{a['role']}", {}),
}


def run(
    trailseal_url: str,
    token: str,
    workdir: Path,
    *,
    days: int = 30,
    progress: Callable[[str], None] = print,
) -> Report:
    """Run the hospital for ``days`` simulated days; every event reaches trailseal."""
    workdir.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = time.monotonic()
    people = staff()
    report.context = write_context(workdir / "context", people)
    engine = seed_database(f"sqlite:///{workdir / 'ehr.db'}")
    client = Client(trailseal_url, token, workdir / "spool")
    app, audit = create_app(engine, client, clock)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(SimulatedTime(app), port=port, log_level="warning"))
    serving = threading.Thread(target=server.run, name="ehr", daemon=True)
    serving.start()
    while not server.started:
        time.sleep(0.05)
    audit.shipper.start()
    month = Month(people, patients(), days=days)
    report.incidents = month.incidents
    runner = Runner(f"http://127.0.0.1:{port}")
    current_day = None
    try:
        for step in month:
            day = step.when.date()
            if day != current_day:
                current_day = day
                progress(f"  {day}: {report.requests:,} requests so far")
            report.statuses[runner.perform(step)] += 1
            report.requests += 1
    finally:
        server.should_exit = True
        serving.join(timeout=10)
        audit.shipper.stop()
        audit.shipper.join(timeout=60)
        progress("  handing the last events to trailseal ...")
        client.close(timeout=300)
        engine.dispose()
    report.seconds = time.monotonic() - started
    return report
