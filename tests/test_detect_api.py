"""Alerts over HTTP, with detection running inside a real `trailseal serve --watch`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Server


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Server]:
    running = Server.boot(tmp_path / "data", "--watch")
    yield running
    running.stop()


def _alerts(server: Server, token: str) -> list[dict]:
    with server.client(token) as http:
        answer = http.get("/v1/alerts")
    assert answer.status_code == 200, answer.text
    return answer.json()["alerts"]


def test_an_export_raises_an_alert_that_security_resolves(watching: Server) -> None:
    writer = watching.principal("ehr", "writer")
    security = watching.principal("soc", "security")
    auditor = watching.principal("auditor", "auditor")
    event = {
        "id": "x-1",
        "time": "2026-03-02T10:00:00Z",
        "actor": {"id": "c-9"},
        "action": "export.create",
        "resource": {"type": "export", "count": 900},
    }
    with watching.client(writer) as http:
        assert http.post("/v1/events", json=event).status_code in (200, 201, 202)
    deadline = time.monotonic() + 10
    while not (found := _alerts(watching, security)) and time.monotonic() < deadline:
        time.sleep(0.1)
    (alert,) = found
    assert (alert["rule"], alert["group"], alert["status"]) == (
        "bulk_export",
        "actor.id=c-9",
        "open",
    )
    assert _alerts(watching, auditor) == found  # auditors read alerts too

    with watching.client(auditor) as http:
        refused = http.post(f"/v1/alerts/{alert['id']}/resolve", json={"reason": "fine"})
        assert refused.status_code == 403
    with watching.client(writer) as http:
        assert http.get("/v1/alerts").status_code == 403
    with watching.client(security) as http:
        assert (
            http.post(f"/v1/alerts/{alert['id']}/resolve", json={"reason": ""}).status_code == 422
        )
        assert http.post("/v1/alerts/999/resolve", json={"reason": "x"}).status_code == 404
        done = http.post(f"/v1/alerts/{alert['id']}/resolve", json={"reason": "ticket SEC-12"})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "resolved"
    with watching.client(auditor) as http:
        entries = http.get("/v1/entries", params={"action": "alert.*"}).json()
    actions = [e["entry"]["event"]["action"] for e in entries["entries"]]
    assert [a for a in actions if a != "alert.read"] == ["alert.raised", "alert.resolved"]
    assert "alert.read" in actions  # reading alerts is itself recorded
