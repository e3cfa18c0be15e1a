"""Alerts over HTTP, with detection running inside a real `trailseal serve --watch`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import Server, run_cli
from trailseal.testing import ServiceProcess


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
        answer = http.post("/v1/events", json=event)
        assert answer.status_code in (200, 201, 202), watching.stderr()
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
        noted = http.post(f"/v1/alerts/{alert['id']}/notes", json={"note": "asked the owner"})
        assert noted.status_code == 200, noted.text
        assert noted.json()["status"] == "open"  # a note changes no state
        wrong = {"reason": "x", "disposition": "shrug"}
        assert http.post(f"/v1/alerts/{alert['id']}/resolve", json=wrong).status_code == 422
        done = http.post(
            f"/v1/alerts/{alert['id']}/resolve",
            json={"reason": "ticket SEC-12", "disposition": "explained"},
        )
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["disposition"]) == ("resolved", "explained")
    with watching.client(auditor) as http:
        entries = http.get("/v1/entries", params={"action": "alert.*"}).json()
        history = http.get(f"/v1/alerts/{alert['id']}/history").json()["entries"]
    actions = [e["entry"]["event"]["action"] for e in entries["entries"]]
    assert [a for a in actions if a != "alert.read"] == [
        "alert.raised",
        "alert.noted",
        "alert.resolved",
    ]
    assert "alert.read" in actions  # reading alerts is itself recorded
    told = [
        (e["entry"]["event"]["action"], e["entry"]["event"].get("outcome", {})) for e in history
    ]
    assert [action for action, _ in told] == ["alert.raised", "alert.noted", "alert.resolved"]
    assert told[1][1]["reason"] == "asked the owner"
    resolved = history[2]["entry"]["event"]
    assert resolved["context"]["labels"]["disposition"] == "explained"
    # The disposition is part of the alert's state the log describes: checked against it.
    check = run_cli("alerts", "verify", data=watching.data)
    assert check.returncode == 0, check.stderr


def test_tenant_bound_principals_see_and_act_on_their_tenants_alerts_only(
    watching: Server,
) -> None:
    """Issue 10, point 1: a tenant-bound security or auditor principal listed, read,
    acknowledged and resolved every tenant's alerts."""
    for tenant in ("acme", "globex"):
        writer = watching.principal(f"{tenant}-w", "writer", tenant)
        event = {
            "id": f"{tenant}-export",
            "time": "2026-03-02T10:00:00Z",
            "actor": {"id": "c-9", "tenant": tenant},
            "action": "export.create",
            "resource": {"type": "export", "count": 900, "tenant": tenant},
        }
        with watching.client(writer) as http:
            assert http.post("/v1/events", json=event).status_code == 201
    everyone = watching.principal("soc", "security")
    deadline = time.monotonic() + 10
    while len(found := _alerts(watching, everyone)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(a["tenant"] for a in found) == ["acme", "globex"]
    globex_alert = next(a for a in found if a["tenant"] == "globex")
    acme_soc = watching.principal("acme-soc", "security", "acme")
    acme_auditor = watching.principal("acme-auditor", "auditor", "acme")
    for token in (acme_soc, acme_auditor):
        assert [a["tenant"] for a in _alerts(watching, token)] == ["acme"]
    with watching.client(acme_soc) as http:
        assert http.get(f"/v1/alerts/{globex_alert['id']}").status_code == 404
        for verb, body in (("acknowledge", {"note": "x"}), ("resolve", {"reason": "x"})):
            answer = http.post(f"/v1/alerts/{globex_alert['id']}/{verb}", json=body)
            assert answer.status_code == 404
    assert next(a for a in _alerts(watching, everyone) if a["tenant"] == "globex")["status"] == (
        "open"
    )


STARS_RULE = """\
title: Many wildcards
name: many_wildcards
level: low
logsource: {product: trailseal}
detection: {sel: {detail.note: '*a*a*a*a*a*a*c'}, condition: sel}
"""


def test_an_adversarial_value_does_not_stall_the_server(tmp_path: Path) -> None:
    """Issue 10, point 7, against a real `serve --watch`: one 18 KB value against a rule
    with several wildcards froze the whole server (health checks and appends timed
    out). Matching is linear now: the server answers and detection keeps up."""
    data = tmp_path / "data"
    run_cli("init", "--origin", "stall.example/log", data=data, check=True)
    (data / "rules").mkdir()
    (data / "rules" / "stars.yml").write_text(STARS_RULE)
    (data / "detection.yaml").write_text("rules: [builtin, rules]\n")
    admin = orjson.loads(
        run_cli("principals", "create", "a", "--role", "admin", data=data, check=True).stdout
    )["token"]
    service = ServiceProcess(data, admin, ("--watch",))
    service.start()
    try:
        writer = service.principal("w", "writer")
        hostile = {
            "id": "stall-1",
            "time": "2026-03-02T10:00:00Z",
            "actor": {"id": "u-1"},
            "action": "note.write",
            "resource": {"type": "note", "id": "n-1"},
            "detail": {"note": "a" * 18_000},
        }
        with service.client(writer) as http:
            assert http.post("/v1/events", json=hostile).status_code == 201
            time.sleep(0.5)  # the engine is at it now
            started = time.monotonic()
            health = httpx.get(f"{service.url}/healthz", timeout=5)
            follow_up = {**hostile, "id": "stall-2", "detail": {"note": "short"}}
            assert http.post("/v1/events", json=follow_up).status_code == 201
            assert time.monotonic() - started < 3
        assert health.status_code == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            detection = httpx.get(f"{service.url}/healthz", timeout=5).json()["detection"]
            if detection["lag"] == 0 and detection["position"] > 0:
                break
            time.sleep(0.2)
        assert detection["lag"] == 0, detection
    finally:
        service.stop()
