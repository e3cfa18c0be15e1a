"""Many logs in one deployment: each log its own origin, key, tree and checkpoints;
routing by tenant; every command and route naming its log; the signed deployment
checkpoint. Real SQLite files, the real PostgreSQL, real subprocesses, a real server."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import PostgresBackend
from conftest import postgres, run_cli
from trailseal.app import App, Caller, search_filter
from trailseal.app.deployment import Deployment, Routes
from trailseal.checkpoints import DeploymentCheckpoint, Verifier
from trailseal.errors import ConfigError, NoteError, NotFoundError
from trailseal.ledger.keys import read_key
from trailseal.testing import ServiceProcess, drop_postgres_log


def _event(tenant: str | None, n: int | str) -> dict[str, Any]:
    resource: dict[str, Any] = {"type": "patient", "id": f"p-{n}"}
    if tenant is not None:
        resource["tenant"] = tenant
    return {
        "id": f"ev-{tenant}-{n}",
        "time": "2026-11-30T10:00:00Z",
        "actor": {"id": "u-1", "type": "user"},
        "action": "record.read",
        "resource": resource,
        "outcome": {"result": "success"},
    }


def _lines(*events: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(event) + b"\n" for event in events)


def _deployment(data: Path, store: str | None = None) -> None:
    """A deployment of three logs: default, north (tenant north and clinic-*), south. Made
    with the command line on PostgreSQL (``store``), else with the library (quicker; the
    command itself is tested in test_bad_names_and_routes_are_refused...)."""
    if store is None:
        App.init(data, origin="acme.example/audit").close()
        App.init(data, log="north", tenants=("north", "clinic-*")).close()
        App.init(data, log="south", tenants=("south",)).close()
        return
    extra = ["--store", store]
    run_cli("init", "--origin", "acme.example/audit", *extra, data=data, check=True)
    run_cli(
        "logs", "create", "north", "--tenant", "north", "--tenant", "clinic-*", *extra,
        data=data, check=True,
    )  # fmt: skip
    run_cli("logs", "create", "south", "--tenant", "south", *extra, data=data, check=True)


def _mixed() -> bytes:
    return _lines(
        *(_event(t, n) for n in range(5) for t in ("north", "south", "clinic-7", "elsewhere", None))
    )


# -- routing -------------------------------------------------------------------------


def test_routes_exact_then_longest_pattern_then_default() -> None:
    routes = Routes.of({"a": ["north", "clinic-*"], "b": ["clinic-north-*"], "c": ["south"]})
    assert routes.route("north") == "a"
    assert routes.route("clinic-7") == "a"
    assert routes.route("clinic-north-1") == "b"  # the longer pattern is the more specific
    assert routes.route("south") == "c"
    assert routes.route("west") == "default"
    assert routes.route(None) == "default"


def test_a_tenant_routed_to_two_logs_is_refused() -> None:
    with pytest.raises(ConfigError, match="routed to two logs"):
        Routes.of({"a": ["north"], "b": ["north"]})
    with pytest.raises(ConfigError, match="routed to two logs"):
        Routes.of({"a": ["clinic-*"], "b": ["clinic-*"]})


_TENANT = st.text(alphabet="abcnorth-*?7", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(_TENANT, max_size=4)),
    st.one_of(st.none(), st.text(max_size=12)),
)
def test_every_tenant_goes_to_exactly_one_known_log(
    tenants: dict[str, list[str]], tenant: str | None
) -> None:
    """Whatever the configuration, routing is a function: one log, one of those configured
    or the default, the same every time (so a resent event finds the log that has it)."""
    named = [name for names in tenants.values() for name in set(names)]
    if len(named) != len(set(named)):  # one tenant (or pattern) in two logs
        with pytest.raises(ConfigError, match="routed to two logs"):
            Routes.of(tenants)
        return
    routes = Routes.of(tenants)
    chosen = routes.route(tenant)
    assert chosen in {*tenants, "default"}
    assert routes.route(tenant) == chosen
    if tenant is not None and any(tenant in names for names in tenants.values()):
        assert tenant in tenants[chosen]  # an exact name wins over every pattern


# -- the command line ----------------------------------------------------------------


def test_each_event_lands_in_its_tenants_log_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deployment(data)
    first = json.loads(run_cli("append", "-", data=data, stdin=_mixed(), check=True).stdout)
    assert first["appended"] == 25
    assert {name: part["appended"] for name, part in first["logs"].items()} == {
        "default": 10,
        "north": 10,
        "south": 5,
    }
    again = json.loads(run_cli("append", "-", data=data, stdin=_mixed(), check=True).stdout)
    assert again["appended"] == 0
    assert again["duplicates"] == 25
    with Deployment.open(data) as deployment:
        tenants = {
            app.log: {
                view.entry["event"].get("resource", {}).get("tenant")
                for view in app.entries.search(Caller.host(), search_filter(q="action:record.read"))
            }
            for app in deployment.apps()
        }
    assert tenants == {
        "default": {"elsewhere", None},
        "north": {"north", "clinic-7"},
        "south": {"south"},
    }


def test_each_log_has_its_own_origin_key_and_checkpoints(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deployment(data)
    run_cli("append", "-", data=data, stdin=_mixed(), check=True)
    keys = {
        name: run_cli("pubkey", "--log", name, data=data, check=True).stdout.decode().strip()
        for name in ("default", "north", "south")
    }
    assert len(set(keys.values())) == 3
    assert keys["north"].startswith("acme.example/audit/north+")
    for name, key in keys.items():
        exported = tmp_path / f"{name}.jsonl"
        run_cli("export", "--log", name, "-o", exported, data=data, check=True)
        note = run_cli("checkpoint", "--log", name, data=data, check=True).stdout.decode()
        assert note.startswith(Verifier.from_string(key).name + "\n")
        (tmp_path / f"{name}.note").write_text(note)
        # The independent check of an export, per log, with that log's key alone.
        result = run_cli(
            "verify-export", exported, "--checkpoint", tmp_path / f"{name}.note", "--vkey", key
        )
        assert result.returncode == 0, result.stderr
    # Another log's key does not verify a log's export.
    wrong = run_cli(
        "verify-export", tmp_path / "north.jsonl", "--checkpoint", tmp_path / "north.note",
        "--vkey", keys["south"],
    )  # fmt: skip
    assert wrong.returncode == 3
    result = run_cli("verify", "--all-logs", "--json", data=data, check=True)
    assert set(json.loads(result.stdout)) == {"default", "north", "south"}


def test_an_append_to_a_named_log_refuses_events_routed_elsewhere(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deployment(data)
    result = run_cli("append", "--log", "north", "-", data=data, stdin=_mixed())
    assert result.returncode == 1
    assert b"tenant 'south' is routed to log 'south', not 'north'" in result.stderr
    assert b"an event with no tenant is routed to log 'default'" in result.stderr
    with Deployment.open(data) as deployment:
        assert [app.ledger.size() for app in deployment.apps()] == [0, 0, 0]  # nothing stored
    good = _lines(_event("north", 1), _event("clinic-9", 2))
    done = json.loads(run_cli("append", "--log", "north", "-", data=data, stdin=good).stdout)
    assert done["logs"]["north"]["appended"] == 2


def test_search_per_log_and_across_the_logs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deployment(data)
    run_cli("append", "-", data=data, stdin=_mixed(), check=True)
    south = json.loads(
        run_cli("search", "action:record.read", "--log", "south", "--json", data=data).stdout
    )
    assert {row["entry"]["event"]["resource"]["tenant"] for row in south} == {"south"}
    every = json.loads(
        run_cli("search", "action:record.read", "--all-logs", "--json", data=data).stdout
    )
    assert len(every) == 25
    assert {row["log"] for row in every} == {"default", "north", "south"}
    counts = json.loads(
        run_cli(
            "search", "action:record.read", "--all-logs", "--count-by", "tenant", "--json",
            data=data,
        ).stdout
    )  # fmt: skip
    assert {row["value"]: row["count"] for row in counts}["clinic-7"] == 5
    # Each search was recorded in the log it read.
    with Deployment.open(data) as deployment:
        for app in deployment.apps():
            reads = app.entries.search(
                Caller.host(),
                search_filter(q="action:audit.read"),
            )
            assert reads, app.log


def test_the_deployment_checkpoint_pins_every_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deployment(data)
    run_cli("append", "-", data=data, stdin=_mixed(), check=True)
    note_file = tmp_path / "deployment.note"
    run_cli("logs", "checkpoint", "-o", note_file, data=data, check=True)
    note = note_file.read_text()
    verifier = (data / "verifier.key").read_text().strip()
    opened = DeploymentCheckpoint.open(note, Verifier.from_string(verifier))
    assert [head.name for head in opened.logs] == ["default", "north", "south"]
    for head in opened.logs:
        checkpoint = run_cli("checkpoint", "--log", head.name, data=data, check=True).stdout
        assert f"\n{head.size}\n".encode() in checkpoint  # the log's own signed size
    # Offline, with the deployment's key only; and against the logs themselves.
    offline = run_cli("logs", "verify-checkpoint", note_file, "--vkey", verifier, "--json")
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["logs"] == {h.name: h.size for h in opened.logs}
    assert run_cli("logs", "verify-checkpoint", note_file, data=data).returncode == 0
    # It stays true as the logs grow: a later tree is consistent with the listed root.
    run_cli("append", "-", data=data, stdin=_lines(_event("north", 99)), check=True)
    assert run_cli("logs", "verify-checkpoint", note_file, data=data).returncode == 0
    # A changed size or root, or a note signed by another key, fails with exit 3.
    forged = note.replace("\nnorth ", "\nnorth 1", 1)
    (tmp_path / "forged.note").write_text(forged)
    result = run_cli("logs", "verify-checkpoint", tmp_path / "forged.note", data=data)
    assert result.returncode == 3
    other = tmp_path / "other"
    run_cli("init", "--origin", "acme.example/audit", data=other, check=True)
    result = run_cli("logs", "verify-checkpoint", note_file, data=other)
    assert result.returncode == 3


def test_a_rewritten_log_fails_the_deployment_checkpoint(tmp_path: Path) -> None:
    """The checkpoint lists each root; a log whose tree no longer has it is caught."""
    data = tmp_path / "data"
    _deployment(data)
    run_cli("append", "-", data=data, stdin=_mixed(), check=True)
    note = run_cli("logs", "checkpoint", data=data, check=True).stdout.decode()
    with Deployment.open(data) as deployment:
        head = DeploymentCheckpoint.open(note, deployment.default.verifier).log("south")
        # The same note, but with south's root from another tree (as if the log were
        # replaced by one grown differently): signed anew by the deployment's key.
        signer = read_key(data / "signing.key")
        text = note[: note.index("\n\n") + 1].replace(
            base64.b64encode(head.root).decode(), "A" * 43 + "=", 1
        )
        with pytest.raises(NoteError, match="south: its tree at size"):
            deployment.check_checkpoint(signer.sign(text))


_PIECES = st.sampled_from(
    [
        "acme/deployment",
        "trailseal-deployment/v1",
        "2026-11-30T10:00:00Z",
        "north 3 " + "A" * 43 + "= acme/north+00000000+AQ" + "A" * 42 + "=",
        "north 3 !!! x",
        "South 1 AA== k",
        "north -1 AA== k",
        "",
        " ",
        "\x00",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), st.lists(_PIECES, max_size=7).map("\n".join)))
def test_a_malformed_deployment_checkpoint_is_a_clear_error(text: str) -> None:
    """Any text either reads as a deployment checkpoint that writes back to itself, or is
    refused with a NoteError naming the problem (never another exception)."""
    try:
        found = DeploymentCheckpoint.parse_text(text)
    except NoteError as exc:
        problem = str(exc)
    else:
        assert found.text() == text
        return
    assert "deployment checkpoint" in problem


def test_bad_names_and_routes_are_refused_and_nothing_is_made(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deployment(data)
    for name in ("North", "1st", "a-b", "x" * 25, "../evil"):
        result = run_cli("logs", "create", name, data=data)
        assert result.returncode == 1
        assert b"log name" in result.stderr
    result = run_cli("logs", "create", "west", "--tenant", "north", data=data)
    assert result.returncode == 1
    assert b"'north' is routed to two logs" in result.stderr
    result = run_cli("logs", "create", "north", data=data)
    assert result.returncode == 1
    assert b"already has a log 'north'" in result.stderr
    assert sorted(p.name for p in (data / "logs").iterdir()) == ["north", "south"]
    result = run_cli("search", "--log", "nowhere", data=data)
    assert result.returncode == 1
    assert b"no log 'nowhere'" in result.stderr
    assert b"its logs: default, north, south" in result.stderr
    empty = tmp_path / "empty"
    result = run_cli("logs", "create", "north", data=empty)
    assert result.returncode == 1
    assert b"trailseal init" in result.stderr
    # A hand-edited routing that is not a list is named, with the file.
    config = data / "logs" / "south" / "config.toml"
    config.write_text(config.read_text().replace('tenants = ["south"]', 'tenants = "south"'))
    result = run_cli("append", "-", data=data, stdin=_mixed())
    assert result.returncode == 1
    assert b"tenants must be a list" in result.stderr


def test_principals_are_the_deployments(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deployment(data)
    made = json.loads(
        run_cli("principals", "create", "ann", "--role", "auditor", data=data, check=True).stdout
    )
    with Deployment.open(data) as deployment:
        for app in deployment.apps():
            assert app.principals.authenticate(made["token"], None).name == "ann"


# -- PostgreSQL -----------------------------------------------------------------------


@pytest.fixture
def pg() -> Iterator[PostgresBackend]:
    yield from postgres()


def test_a_deployment_on_postgresql_keeps_each_log_in_its_schema(
    tmp_path: Path, pg: PostgresBackend
) -> None:
    data = tmp_path / "data"
    store = pg.store(data)
    try:
        _deployment(data, store)
        env = {"TRAILSEAL_STORE": store}
        first = run_cli("append", "-", data=data, stdin=_mixed(), env=env, check=True)
        assert json.loads(first.stdout)["appended"] == 25
        rows = pg.query(data, "SELECT count(*) FROM entries")
        assert rows == [(10,)]  # the default log's schema holds its share only
        schemas = {
            row[0]
            for row in pg.query(
                data,
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE ?",
                (pg.schema + "%",),
            )
        }
        assert schemas == {pg.schema, f"{pg.schema}_north", f"{pg.schema}_south"}
        result = run_cli("verify", "--all-logs", "--json", data=data, env=env, check=True)
        assert {n: r["size"] for n, r in json.loads(result.stdout).items()}["north"] >= 10
    finally:
        for name in ("north", "south"):
            drop_postgres_log(store.replace(f"schema={pg.schema}", f"schema={pg.schema}_{name}"))


# -- HTTP ------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    data = tmp_path / "data"
    App.init(data, origin="acme.example/audit").close()
    run_cli("logs", "create", "north", "--tenant", "north", data=data, check=True)
    admin = json.loads(
        run_cli("principals", "create", "root", "--role", "admin", data=data, check=True).stdout
    )["token"]
    running = ServiceProcess(data, admin)
    running.start()
    yield running
    running.stop()


def test_the_api_routes_by_tenant_and_serves_each_log(service: ServiceProcess) -> None:
    writer = service.principal("w", "writer")
    auditor = service.principal("a", "auditor")
    body = _lines(_event("north", 1), _event("south", 2), _event(None, 3))
    with service.client(writer) as client:
        answer = client.post(
            "/v1/events", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert answer.status_code == 201, answer.text
        placed = [(e["position"], e["log"]) for e in answer.json()["entries"]]
        assert placed == [(0, "north"), (1, "default"), (2, "default")]
        named = client.post(
            "/v1/logs/north/events", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert named.status_code == 422
        assert "routed to log 'default', not 'north'" in named.text
        assert client.get("/v1/logs/nowhere/checkpoint").status_code == 404
    with service.client(auditor) as client:
        listed = client.get("/v1/logs").json()["logs"]
        assert [log["name"] for log in listed] == ["default", "north"]
        found = client.get("/v1/logs/north/entries", params={"q": "action:record.read"})
        assert [e["entry"]["event"]["id"] for e in found.json()["entries"]] == ["ev-north-1"]
        found = client.get("/v1/entries", params={"q": "action:record.read"})
        assert [e["entry"]["event"]["id"] for e in found.json()["entries"]] == [
            "ev-south-2",
            "ev-None-3",
        ]
        checkpoint = client.get("/v1/logs/north/checkpoint").text
        assert checkpoint.startswith("acme.example/audit/north\n")
        size = int(checkpoint.split("\n")[1])
        note = client.get("/v1/deployment/checkpoint").text
        assert f"\nnorth {size} " in note


def test_a_tenant_principal_sees_only_its_logs(service: ServiceProcess) -> None:
    south = service.principal("s", "auditor", tenant="south")
    north = service.principal("n", "auditor", tenant="north")
    with service.client(south) as client:
        assert [log["name"] for log in client.get("/v1/logs").json()["logs"]] == ["default"]
        hidden = client.get("/v1/logs/north/entries")
        assert hidden.status_code == 404
        assert client.get("/v1/deployment/checkpoint").status_code == 403
    with service.client(north) as client:
        assert [log["name"] for log in client.get("/v1/logs").json()["logs"]] == [
            "default",
            "north",
        ]
        assert client.get("/v1/logs/north/entries").status_code == 200


def test_one_log_is_served_as_before(tmp_path: Path) -> None:
    """A deployment of only its default log answers appends exactly as a single log did."""
    with (
        App.init(tmp_path / "d", origin="x.example/log") as app,
        Deployment.open(tmp_path / "d") as deployment,
    ):
        assert deployment.names == ["default"]
        assert app.log == "default"
        with pytest.raises(NotFoundError, match="its logs: default"):
            deployment.app("north")
        outcome = deployment.append(Caller.host(), [orjson.dumps(_event(None, uuid.uuid4().hex))])
        assert outcome.placed == [(1, "default", 0)]


def test_detection_runs_per_log_and_alerts_list_across_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deployment(data)

    def export(tenant: str | None, actor: str) -> dict[str, Any]:
        event = _event(tenant, actor)
        return dict(
            event,
            actor={"id": actor},
            action="patients.export",
            resource={**event["resource"], "count": 500},
        )

    events = _lines(export("north", "u-n"), export(None, "u-d"))
    run_cli("append", "-", data=data, stdin=events, check=True)
    for name in ("north", "default"):
        run_cli("watch", "--once", "--log", name, data=data, check=True)
    north = json.loads(run_cli("alerts", "list", "--log", "north", "--json", data=data).stdout)
    assert [alert["group"] for alert in north] == ["actor.id=u-n"]  # north's alone
    every = json.loads(run_cli("alerts", "list", "--all-logs", "--json", data=data).stdout)
    assert sorted((alert["log"], alert["group"]) for alert in every) == [
        ("default", "actor.id=u-d"),
        ("north", "actor.id=u-n"),
    ]
