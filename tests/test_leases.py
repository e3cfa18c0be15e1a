"""Several `serve` processes on one PostgreSQL log: detection and retention run once per
log, under a lease; a holder killed with SIGKILL is replaced within seconds.

Real processes, the real PostgreSQL on this machine, real SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends import PostgresBackend
from conftest import postgres, run_cli
from trailseal.app import App, Caller
from trailseal.storage.lease import AdvisoryLease, FileLease, open_lease
from trailseal.testing import ServiceProcess


@pytest.fixture
def pg() -> Iterator[PostgresBackend]:
    yield from postgres()


def _export(actor: str) -> dict[str, Any]:
    """An event the built-in rule bulk_export raises an alert on (one per actor)."""
    return {
        "id": str(uuid.uuid4()),
        "time": "2026-11-30T10:00:00Z",
        "actor": {"id": actor},
        "action": "patients.export",
        "resource": {"type": "patient", "count": 500},
    }


def _health(service: ServiceProcess) -> dict[str, Any]:
    report: dict[str, Any] = httpx.get(f"{service.url}/healthz", timeout=5).json()["detection"]
    return report


def _wait(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def _alerts(data: Path) -> list[dict[str, Any]]:
    with App.open(data) as app:
        return [a.to_json() for a in app.alerts.list(Caller.host())]


def test_two_services_detect_once_and_one_takes_over(pg: PostgresBackend, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("init", "--store", pg.store(data), data=data, check=True)
    created = run_cli("principals", "create", "root", "--role", "admin", data=data, check=True)
    admin = json.loads(created.stdout)["token"]
    first = ServiceProcess(data, admin, ("--watch",))
    second = ServiceProcess(data, admin, ("--watch",))
    first.start()
    second.start()
    try:
        states = lambda: {_health(first)["state"], _health(second)["state"]}  # noqa: E731
        _wait(lambda: states() == {"running", "standby"}, 20, "one running, one on standby")
        with first.client(admin) as client:
            writer = client.post("/v1/principals", json={"name": "w", "role": "writer"}).json()
        with second.client(writer["token"]) as client:
            assert client.post("/v1/events", json=[_export("u-1")]).status_code == 201
        _wait(lambda: len(_alerts(data)) == 1, 20, "the alert")
        time.sleep(2)  # a second engine would raise it again by now
        assert [a["rule"] for a in _alerts(data)] == ["bulk_export"]

        holder, standby = (
            (first, second) if _health(first)["state"] == "running" else (second, first)
        )
        assert holder.process is not None
        os.kill(holder.process.pid, signal.SIGKILL)
        holder.process.wait(timeout=10)
        took = _wait(lambda: _health(standby)["state"] == "running", 20, "the takeover")
        with standby.client(writer["token"]) as client:
            assert client.post("/v1/events", json=[_export("u-2")]).status_code == 201
        _wait(lambda: len(_alerts(data)) == 2, 20, "the second alert")
        alerts = _alerts(data)
        assert sorted(a["group"] for a in alerts) == ["actor.id=u-1", "actor.id=u-2"]
        assert took < 10
    finally:
        first.stop()
        second.stop()
    with App.open(data) as app:
        report = app.ledger.verify()
    assert report.size > 0


def test_retention_runs_once_across_processes(pg: PostgresBackend, tmp_path: Path) -> None:
    """The retention lease is the database's on PostgreSQL: a second run is refused while
    a process holds it, wherever that process is."""
    data = tmp_path / "data"
    run_cli("init", "--store", pg.store(data), data=data, check=True)
    with App.open(data) as app:
        store = app.ledger.settings.store
    holder = open_lease("retention", store, data)
    assert isinstance(holder, AdvisoryLease)
    assert holder.acquire()
    try:
        result = run_cli("retention", "run", data=data)
        assert result.returncode == 1
        assert b"a retention run is already in progress" in result.stderr
    finally:
        holder.release()
    run_cli("retention", "run", data=data, check=True)


def test_a_lease_is_one_holders_at_a_time(pg: PostgresBackend, tmp_path: Path) -> None:
    with App.open(_init(pg, tmp_path)) as app:
        store, data = app.ledger.settings.store, app.ledger.settings.data_dir
    one, two = open_lease("detection", store, data), open_lease("detection", store, data)
    assert one.acquire()
    assert not two.acquire()
    assert one.held()
    one.release()
    assert two.acquire()
    two.release()
    files = FileLease("x", tmp_path / "x.lock"), FileLease("x", tmp_path / "x.lock")
    assert files[0].acquire()
    assert not files[1].acquire()
    files[0].release()
    assert files[1].acquire()
    files[1].release()


def _init(pg: PostgresBackend, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    run_cli("init", "--store", pg.store(data), data=data, check=True)
    return data


def test_watch_once_is_refused_while_another_process_detects(
    pg: PostgresBackend, tmp_path: Path
) -> None:
    data = _init(pg, tmp_path)
    with App.open(data) as app:
        store = app.ledger.settings.store
    holder = open_lease("detection", store, data)
    assert holder.acquire()
    try:
        result = run_cli("watch", "--once", data=data)
        assert result.returncode == 1
        assert b"detection runs in another process on this log" in result.stderr
    finally:
        holder.release()
    run_cli("watch", "--once", data=data, check=True)
