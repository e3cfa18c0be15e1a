"""The WSGI middleware on a real Flask app: the same events as on ASGI."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request

from trailseal.capture import MemoryEmitter, Resource, instrument_flask, set_actor, set_count
from trailseal.events import event_from_mapping

TOKENS = {"tok-nurse": ("u-1042", ["nurse"])}


def make_app(emitter: MemoryEmitter, trusted: tuple[str, ...] = ()) -> Flask:
    app = Flask("ehr")

    def authenticate() -> None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in TOKENS:
            abort(401)
        user, roles = TOKENS[token]
        set_actor(user, roles=roles)

    @app.get("/patients/<patient_id>")
    def get_patient(patient_id: str) -> dict[str, Any]:
        authenticate()
        return {"id": patient_id}

    @app.get("/patients")
    def list_patients() -> dict[str, Any]:
        authenticate()
        set_count(12)
        return {"rows": 12}

    @app.get("/about")
    def about() -> str:
        return "ehr"

    instrument_flask(
        app,
        emitter,
        resources=[Resource("/patients", "patient", id_param="patient_id")],
        trusted_proxies=trusted,
        service="ehr",
    )
    return app


def test_read_with_route_template_and_actor_from_the_view() -> None:
    emitter = MemoryEmitter()
    client = make_app(emitter).test_client()
    answer = client.get(
        "/patients/p-9",
        headers={"Authorization": "Bearer tok-nurse", "X-Request-ID": "r-1"},
        environ_base={"REMOTE_ADDR": "192.0.2.10"},
    )
    assert answer.status_code == 200
    assert answer.get_json() == {"id": "p-9"}  # a WSGI server reads the body, then closes it
    (event,) = emitter.events
    assert event["action"] == "patient.read"
    assert event["actor"] == {"id": "u-1042", "type": "user", "roles": ["nurse"]}
    assert event["resource"] == {"type": "patient", "id": "p-9"}
    assert event["request"] == {
        "method": "GET",
        "path": "/patients/<patient_id>",
        "request_id": "r-1",
    }
    assert event["source"]["ip"] == "192.0.2.10"
    event_from_mapping(event)


def test_list_count_denied_and_unconfigured_routes() -> None:
    emitter = MemoryEmitter()
    client = make_app(emitter).test_client()
    client.get("/patients", headers={"Authorization": "Bearer tok-nurse"}).get_data()
    client.get("/patients/p-1").get_data()  # no token
    client.get("/about").get_data()
    listed, denied = emitter.events
    assert listed["resource"] == {"type": "patient", "count": 12}
    assert denied["outcome"] == {"result": "denied", "status": 401}
    assert denied["actor"]["id"] == "anonymous"


def test_forwarded_for_only_from_trusted_proxies() -> None:
    emitter = MemoryEmitter()
    headers = {"Authorization": "Bearer tok-nurse", "X-Forwarded-For": "203.0.113.9"}
    make_app(emitter).test_client().get(
        "/patients/p-1", headers=headers, environ_base={"REMOTE_ADDR": "198.51.100.4"}
    ).get_data()
    make_app(emitter, trusted=("10.0.0.0/8",)).test_client().get(
        "/patients/p-1", headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    ).get_data()
    assert [e["source"]["ip"] for e in emitter.events] == ["198.51.100.4", "203.0.113.9"]
