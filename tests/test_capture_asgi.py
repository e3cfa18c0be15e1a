"""The ASGI middleware on a real FastAPI app: one event per request, reads included."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from trailseal.capture import AuditMiddleware, MemoryEmitter, Resource, set_actor, set_count
from trailseal.events import event_from_mapping

TOKENS = {"tok-nurse": ("u-1042", ["nurse"]), "tok-admin": ("u-7", ["admin"])}


def make_app(emitter: MemoryEmitter, trusted: tuple[str, ...] = ()) -> FastAPI:
    app = FastAPI()

    def authenticate(authorization: str | None) -> None:
        """Token auth inside the handler, as many apps do it."""
        token = (authorization or "").removeprefix("Bearer ")
        if token not in TOKENS:
            raise HTTPException(401, "who are you")
        user, roles = TOKENS[token]
        set_actor(user, roles=roles, session_id=f"s-{token}")

    @app.get("/patients/{patient_id}")
    def get_patient(
        patient_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        authenticate(authorization)
        if patient_id == "missing":
            raise HTTPException(404, "no such patient")
        return {"id": patient_id}

    @app.get("/patients")
    def list_patients(
        authorization: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, str]]:
        authenticate(authorization)
        rows = [{"id": f"p-{n}"} for n in range(37)]
        set_count(len(rows))
        return rows

    @app.patch("/patients/{patient_id}")
    def update_patient(
        patient_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, str]:
        authenticate(authorization)
        if TOKENS[(authorization or "").removeprefix("Bearer ")][1] != ["admin"]:
            raise HTTPException(403, "nurses may not edit")
        return {"id": patient_id}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"ok": "yes"}

    return AuditMiddleware(  # type: ignore[return-value]
        app,
        emitter,
        resources=[Resource("/patients", "patient", id_param="patient_id", action=None)],
        trusted_proxies=trusted,
        service="ehr",
    )


@pytest.fixture
def emitter() -> MemoryEmitter:
    return MemoryEmitter()


def test_reads_are_captured_with_route_template_and_actor_from_inside_the_handler(
    emitter: MemoryEmitter,
) -> None:
    client = TestClient(make_app(emitter))
    answer = client.get(
        "/patients/p-88123",
        headers={
            "Authorization": "Bearer tok-nurse",
            "X-Request-ID": "r-77",
            "User-Agent": "ehr-web/4.2",
        },
    )
    assert answer.status_code == 200
    (event,) = emitter.events
    assert event["action"] == "patient.read"
    assert event["actor"] == {
        "id": "u-1042",
        "type": "user",
        "roles": ["nurse"],
        "session_id": "s-tok-nurse",
    }
    assert event["resource"] == {"type": "patient", "id": "p-88123"}
    assert event["request"] == {
        "method": "GET",
        "path": "/patients/{patient_id}",
        "request_id": "r-77",
    }
    assert event["outcome"] == {"result": "success", "status": 200}
    assert event["source"]["user_agent"] == "ehr-web/4.2"
    event_from_mapping(event)  # what the middleware emits is a valid event


def test_lists_carry_the_record_count(emitter: MemoryEmitter) -> None:
    TestClient(make_app(emitter)).get("/patients", headers={"Authorization": "Bearer tok-nurse"})
    (event,) = emitter.events
    assert event["resource"] == {"type": "patient", "count": 37}


@pytest.mark.parametrize(
    ("method", "path", "token", "action", "result", "status"),
    [
        ("PATCH", "/patients/p-1", "tok-nurse", "patient.update", "denied", 403),
        ("PATCH", "/patients/p-1", "tok-admin", "patient.update", "success", 200),
        ("GET", "/patients/missing", "tok-nurse", "patient.read", "failure", 404),
        ("GET", "/patients/p-1", "forged", "patient.read", "denied", 401),
    ],
)
def test_outcomes(
    emitter: MemoryEmitter,
    method: str,
    path: str,
    token: str,
    action: str,
    result: str,
    status: int,
) -> None:
    TestClient(make_app(emitter)).request(
        method, path, headers={"Authorization": f"Bearer {token}"}
    )
    (event,) = emitter.events
    assert (event["action"], event["outcome"]["result"], event["outcome"]["status"]) == (
        action,
        result,
        status,
    )
    if token == "forged":
        assert event["actor"]["id"] == "anonymous"


def test_unconfigured_routes_emit_nothing(emitter: MemoryEmitter) -> None:
    TestClient(make_app(emitter)).get("/healthz")
    assert emitter.events == []


def test_x_forwarded_for_only_from_trusted_proxies(emitter: MemoryEmitter) -> None:
    headers = {"Authorization": "Bearer tok-nurse", "X-Forwarded-For": "203.0.113.9, 10.0.0.5"}
    untrusted = TestClient(make_app(emitter), client=("198.51.100.4", 5000))
    untrusted.get("/patients/p-1", headers=headers)
    assert emitter.events[-1]["source"]["ip"] == "198.51.100.4"  # the header is ignored
    trusted = TestClient(make_app(emitter, trusted=("10.0.0.0/8",)), client=("10.0.0.7", 5000))
    trusted.get("/patients/p-1", headers=headers)
    assert emitter.events[-1]["source"]["ip"] == "203.0.113.9"  # past both trusted hops
    spoofed = {**headers, "X-Forwarded-For": "not-an-ip"}
    trusted.get("/patients/p-1", headers=spoofed)
    assert emitter.events[-1]["source"]["ip"] == "10.0.0.7"


def test_an_emitter_failure_never_breaks_the_request() -> None:
    class Broken:
        def emit(self, event: dict[str, Any]) -> str:
            raise OSError("spool disk full")

    app = make_app(MemoryEmitter())
    app.recorder.emitter = Broken()  # type: ignore[attr-defined]
    answer = TestClient(app).get("/patients/p-1", headers={"Authorization": "Bearer tok-nurse"})
    assert answer.status_code == 200
    assert app.failures == 1  # type: ignore[attr-defined]


# -- what the host application hands the middleware ----------------------------------


class NotAString:
    def __str__(self) -> str:
        return "odd-role"


@pytest.mark.parametrize(
    ("name", "in_handler"),
    [
        ("int id and odd roles", lambda: set_actor(12345, roles=[NotAString(), "", "x" * 400])),  # type: ignore[arg-type]
        ("an id too long", lambda: set_actor("u" * 5000, session_id="s" * 5000)),
        ("a count that is not one", lambda: set_count("many")),  # type: ignore[arg-type]
        ("a count too big", lambda: set_count(10**30)),
    ],
)
def test_bad_values_from_the_handler_still_yield_a_valid_event(name: str, in_handler: Any) -> None:
    emitter = MemoryEmitter()
    app = FastAPI()

    @app.get("/patients/{patient_id}")
    def read(patient_id: str) -> dict[str, str]:
        in_handler()
        return {"id": patient_id}

    audited = AuditMiddleware(
        app, emitter, resources=[Resource("/patients", "patient", "patient_id")]
    )
    assert TestClient(audited).get("/patients/p-1").status_code == 200, name
    (event,) = emitter.events
    event_from_mapping(event)  # the log accepts it
    assert event["resource"]["id"] == "p-1"


@pytest.mark.parametrize(
    "resolver",
    [
        lambda _scope: 1 / 0,  # raises
        lambda _scope: {"id": "u-9", "role": "nurse", "type": "robot"},  # unknown field, bad type
        lambda _scope: "just-a-name",  # not a mapping
    ],
)
def test_a_broken_actor_resolver_never_fails_the_request(resolver: Any) -> None:
    emitter = MemoryEmitter()
    app = FastAPI()

    @app.get("/patients/{patient_id}")
    def read(patient_id: str) -> dict[str, str]:
        return {"id": patient_id}

    audited = AuditMiddleware(
        app, emitter, resources=[Resource("/patients", "patient", "patient_id")], actor=resolver
    )
    assert TestClient(audited).get("/patients/p-1").status_code == 200
    (event,) = emitter.events
    event_from_mapping(event)
    if event["actor"]["id"] == "anonymous":
        assert (
            "actor resolver failed: ZeroDivisionError"
            in event["context"]["labels"]["capture_problem"]
        )


@settings(max_examples=80, deadline=None)
@given(
    actor_id=st.text(max_size=300) | st.integers(),
    roles=st.lists(st.text(max_size=300), max_size=80),
    session=st.text(max_size=300),
    count=st.integers(min_value=-(10**20), max_value=10**20),
)
def test_any_actor_and_count_from_the_handler_yield_a_valid_event(
    actor_id: Any, roles: list[str], session: str, count: int
) -> None:
    emitter = MemoryEmitter()
    app = FastAPI()

    @app.get("/patients")
    def listing() -> list[str]:
        set_actor(actor_id, roles=roles, session_id=session)
        set_count(count)
        return []

    audited = AuditMiddleware(app, emitter, resources=[Resource("/patients", "patient")])
    assert TestClient(audited).get("/patients").status_code == 200
    (event,) = emitter.events
    event_from_mapping(event)
