"""What only the PostgreSQL backend has: privileges, bad URLs, two writing processes,
a server that goes away mid-batch and a connection lost at COMMIT, all against the real
PostgreSQL on 127.0.0.1:5432. (Everything both backends share is in test_ledger.py and
test_tamper.py, run on both.)"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from backends import POSTGRES, PostgresBackend
from conftest import event_lines, need_postgres, postgres, run_cli
from trailseal.errors import ConfigError, StoreUnavailableError
from trailseal.events import parse_event
from trailseal.ledger import Ledger
from trailseal.storage import open_store
from trailseal.testing import ServiceProcess, free_port, pg_ctl, wait_for_postgres


@pytest.fixture
def pg() -> Iterator[PostgresBackend]:
    yield from postgres()


def _events(count: int, seed: int) -> list:
    return [parse_event(line) for line in event_lines(count, seed=seed)]


def test_the_service_role_may_only_select_and_insert(pg: PostgresBackend, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Ledger.init(data, store=pg.store(data)) as ledger:
        ledger.append(_events(5, seed=1))
        ledger.search(ledger_filter())
    with psycopg.connect(POSTGRES, autocommit=True) as db:
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg.schema)))
        db.execute("SET session_replication_role = replica")  # no triggers: grants alone
        db.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(f"{pg.schema}_service")))
        for statement in (
            "UPDATE entries SET event_id = 'x'",
            "DELETE FROM entries",
            "TRUNCATE entries",
            "UPDATE checkpoints SET note = ''",
            "DELETE FROM checkpoints",
            "UPDATE meta SET value = 'x'",
            "DELETE FROM erasures",
            "UPDATE search_index SET actor = 'x'",
            "UPDATE details SET detail = 'x'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
                db.execute(statement)
        with db.transaction():  # what the service needs works
            assert db.execute("SELECT count(*) FROM entries").fetchone() == (5,)


def ledger_filter():
    from trailseal.ledger import SearchFilter  # noqa: PLC0415

    return SearchFilter()


def test_bad_store_urls_are_named_clearly(pg: PostgresBackend, tmp_path: Path) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    with pytest.raises(StoreUnavailableError, match="cannot connect to"):
        Ledger.init(tmp_path / "a", store=unreachable)
    assert not (tmp_path / "a" / "signing.key").exists()  # nothing half-made
    with pytest.raises(StoreUnavailableError, match="nobody-at-all"):
        Ledger.init(tmp_path / "b", store="postgresql://nobody-at-all@127.0.0.1:5432/test")
    with pytest.raises(ConfigError, match="neither a path"):
        Ledger.init(tmp_path / "c", store="mysql://root@127.0.0.1/test")
    with pytest.raises(ConfigError, match="plain identifier"):
        Ledger.init(tmp_path / "d", store=f"{POSTGRES}?schema=a;drop")
    missing = f"{POSTGRES}?schema={pg.schema}_none"
    with pytest.raises(ConfigError, match="no trailseal log in schema"):
        Ledger.open(_dir_for(tmp_path / "e", missing))
    with psycopg.connect(POSTGRES, autocommit=True) as db:  # another tool's schema
        db.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg.schema)))
        db.execute(sql.SQL("CREATE TABLE {}.entries (x int)").format(sql.Identifier(pg.schema)))
    db_role = f"{pg.schema}_service"
    with psycopg.connect(POSTGRES, autocommit=True) as db:
        db.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(db_role)))
        db.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(pg.schema), sql.Identifier(db_role)
            )
        )
    with pytest.raises(ConfigError, match="not a trailseal log"):
        Ledger.open(_dir_for(tmp_path / "f", pg.store(tmp_path)))


def test_a_newer_schema_version_is_refused(pg: PostgresBackend, tmp_path: Path) -> None:
    data = tmp_path / "data"
    Ledger.init(data, store=pg.store(data)).close()
    pg.tamper(data, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match="version 99; this trailseal reads version 1; upgrade"):
        Ledger.open(data)
    result = run_cli("get", "0", data=data)
    assert result.returncode == 1
    assert b"upgrade trailseal" in result.stderr
    assert b"Traceback" not in result.stderr


def _dir_for(data: Path, store: str) -> Path:
    data.mkdir(parents=True)
    (data / "config.toml").write_text(f'origin = "x"\nstore = "{store}"\n')
    return data


def test_cli_with_a_store_flag_and_offline_verification(
    pg: PostgresBackend, tmp_path: Path
) -> None:
    """A log written on PostgreSQL exports and passes verify-export like a SQLite one."""
    data = tmp_path / "data"
    store = pg.store(data)
    run_cli("init", "--store", store, data=data, check=True)
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(event_lines(300, seed=3)) + b"\n")
    appended = json.loads(run_cli("append", source, data=data, check=True).stdout)
    assert appended["appended"] == 300
    run_cli("export", "-o", tmp_path / "log.jsonl", data=data, check=True)
    (tmp_path / "cp").write_bytes(run_cli("checkpoint", data=data, check=True).stdout)
    vkey = run_cli("pubkey", data=data, check=True).stdout.decode().strip()
    ok = run_cli(
        "verify-export", tmp_path / "log.jsonl", "--checkpoint", tmp_path / "cp", "--vkey", vkey
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["size"] == 301  # and the export's own audit.export
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    refused = run_cli("get", "1", "--store", unreachable, data=data)
    assert refused.returncode == 1
    assert b"cannot connect to" in refused.stderr
    assert b"Traceback" not in refused.stderr


def test_two_processes_appending_concurrently_never_fork(
    pg: PostgresBackend, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    run_cli("init", "--store", pg.store(data), data=data, check=True)
    files = []
    for seed in (4, 5):
        path = tmp_path / f"events-{seed}.jsonl"
        path.write_bytes(b"\n".join(event_lines(3000, seed=seed)) + b"\n")
        files.append(path)
    script = (
        "import sys\n"
        "from trailseal.ledger import Ledger\n"
        "from trailseal.events import parse_event\n"
        "lines = open(sys.argv[2], 'rb').read().splitlines()\n"
        "with Ledger.open(sys.argv[1]) as ledger:\n"
        "    for start in range(0, len(lines), 100):\n"
        "        ledger.append([parse_event(line) for line in lines[start:start + 100]])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(data), str(path)], env=env)
        for path in files
    ]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0]
    with Ledger.open(data) as ledger:
        report = ledger.verify()
        assert report.size == 6000
        assert report.checkpoints == 60  # every batch signed, none lost, none forked


@pytest.mark.restarts_postgresql
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None,
    reason="stopping the server needs root and Debian's pg_ctlcluster",
)
def test_a_server_that_goes_away_and_comes_back(pg: PostgresBackend, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Ledger.init(data, store=pg.store(data)) as ledger:
        ledger.append(_events(100, seed=6))
        root = ledger.root(100)
        pg_ctl("stop")
        try:
            with pytest.raises(StoreUnavailableError, match=r"unreachable|cannot connect"):
                ledger.append(_events(100, seed=7))
        finally:
            pg_ctl("start")
            wait_for_postgres(POSTGRES)
        result = ledger.append(_events(100, seed=7))  # the same process goes on
        assert result.first_index == 100
        assert ledger.root(100) == root  # what was stored did not change
        assert ledger.verify().size == 200


class _Cutter:
    """A TCP proxy to PostgreSQL that, when armed, cuts the connection at the client's
    first message holding ``marker``: after passing it on and before the answer comes
    back (``forward=True``, as for a COMMIT), or without passing it on (mid-batch)."""

    def __init__(self, marker: bytes = b"COMMIT\x00", *, forward: bool = True) -> None:
        self.marker, self.forward = marker, forward
        self.port = free_port()
        self.armed = threading.Event()
        self.cut = threading.Event()
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", 5432))
            cutting = threading.Event()  # this connection's
            for pair in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(*pair, cutting), daemon=True).start()

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        from_client: bool,
        cutting: threading.Event,
    ) -> None:
        try:
            while data := source.recv(65536):
                if not from_client and cutting.is_set():
                    return  # the answer to COMMIT is dropped
                if from_client and self.armed.is_set() and self.marker in data:
                    self.armed.clear()
                    cutting.set()
                    self.cut.set()
                    if self.forward:
                        target.sendall(data)
                        time.sleep(0.5)  # the server acts; its answer never reaches the client
                    for sock in (source, target):
                        sock.shutdown(socket.SHUT_RDWR)
                    return
                target.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._server.close()


def test_a_connection_lost_after_commit_appends_nothing_twice(
    pg: PostgresBackend, tmp_path: Path
) -> None:
    """The batch was committed but the client never heard: the retry must find it (no
    second copy), and the checkpoint chain must not skip or fork."""
    cutter = _Cutter()
    data = tmp_path / "data"
    store = f"postgresql://postgres@127.0.0.1:{cutter.port}/test?schema={pg.schema}&sslmode=disable"
    try:
        with Ledger.init(data, store=store) as ledger:
            ledger.append(_events(50, seed=8))
            batch = _events(50, seed=9)
            cutter.armed.set()
            with pytest.raises(StoreUnavailableError):
                ledger.append(batch)
            assert cutter.cut.is_set()
            again = ledger.append(batch)  # the caller retries, as the client's spool does
            assert again.indexes == list(range(50, 100))
            assert again.appended == 0  # it had been committed: nothing twice
            more = ledger.append(_events(10, seed=10))
            assert more.first_index == 100
            report = ledger.verify()
            assert report.size == 110
            assert report.latest_checkpoint_size == 110
    finally:
        cutter.close()


def test_one_database_to_back_up(pg: PostgresBackend, tmp_path: Path) -> None:
    """With a PostgreSQL store, principals and detection state (cursor, alerts,
    deliveries) live in the log's own schema: nothing but settings and the key stays in
    the data directory."""
    data = tmp_path / "data"
    run_cli("init", "--store", pg.store(data), data=data, check=True)
    created = run_cli("principals", "create", "ops", "--role", "security", data=data, check=True)
    principal = json.loads(created.stdout)
    export = {
        "id": "e-export-1",
        "time": "2026-03-01T14:05:09Z",
        "actor": {"id": "u-7"},
        "action": "record.export",
        "resource": {"type": "patient", "count": 500},
    }
    run_cli("append", "-", data=data, stdin=json.dumps(export).encode(), check=True)
    run_cli("watch", "--once", data=data, check=True)
    listed = json.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    assert [alert["rule"] for alert in listed] == ["bulk_export"]
    run_cli("alerts", "resolve", str(listed[0]["id"]), "--reason", "ok", data=data, check=True)
    assert sorted(path.name for path in data.iterdir()) == [
        "config.toml",
        "signing.key",
        "signing.key.last",
        "signing.key.last.lock",
        "verifier.key",
    ]
    with psycopg.connect(POSTGRES, autocommit=True) as db:
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg.schema)))
        assert db.execute("SELECT name FROM principals").fetchall() == [("ops",)]
        assert db.execute("SELECT rule, status FROM alerts").fetchall() == [
            ("bulk_export", "resolved")
        ]
        (cursor,) = db.execute("SELECT value FROM state WHERE key = 'cursor'").fetchone()
        assert json.loads(bytes(cursor)) >= 2
    assert principal["token"].startswith("tsk_")


def test_the_service_on_a_postgresql_store(
    pg: PostgresBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TRAILSEAL_STORE", pg.store(data))
    server = ServiceProcess.boot(data)
    try:
        writer = server.client(server.principal("w", "writer"))
        body = [json.loads(line) for line in event_lines(20, seed=11)]
        assert writer.post("/v1/events", json=body).status_code == 201
        auditor = server.client(server.principal("a", "auditor"))
        assert auditor.get("/v1/entries/1").json()["index"] == 1
        assert auditor.post("/v1/verify").json()["ok"] is True
    finally:
        server.stop()
    monkeypatch.delenv("TRAILSEAL_STORE")
    with Ledger.open(data) as ledger:  # the data directory remembers its store
        actions = [ledger.get(i).entry["event"]["action"] for i in range(ledger.size())]
    assert actions[0] == "principal.create"
    assert actions[-1] == "audit.stopped"
    assert "audit.verify" in actions


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=60),
    st.sampled_from(["postgresql://", "postgres://", "postgresql://postgres@127.0.0.1:5432/"]),
)
def test_any_store_url_is_refused_clearly_or_opens(text: str, prefix: str) -> None:
    """Hostile or malformed store URLs get a trailseal error naming the problem, never a
    traceback from the driver or the URL parser, and create nothing."""
    need_postgres()
    try:
        open_store(prefix + text).close()
    except (ConfigError, StoreUnavailableError) as exc:
        assert str(exc)  # noqa: PT017 - opening may succeed; only its errors are examined
    with psycopg.connect(POSTGRES, autocommit=True) as db:
        made = db.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'trailseal%'"
        ).fetchone()
    assert made == (0,)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_schema_name_is_refused_or_looked_up(name: str) -> None:
    need_postgres()
    url = f"{POSTGRES}?{urlencode({'schema': name})}"
    with pytest.raises(ConfigError, match=r"plain identifier|no trailseal log"):
        open_store(url)


def test_a_connection_lost_in_the_middle_of_a_batch(pg: PostgresBackend, tmp_path: Path) -> None:
    """The connection goes while the batch's rows are being sent: PostgreSQL rolls the
    transaction back, the caller hears 'unavailable', nothing stored changed, and the
    retry appends the batch once."""
    cutter = _Cutter(b"COPY entries", forward=False)
    data = tmp_path / "data"
    store = f"postgresql://postgres@127.0.0.1:{cutter.port}/test?schema={pg.schema}&sslmode=disable"
    try:
        with Ledger.init(data, store=store) as ledger:
            ledger.append(_events(50, seed=11))
            root = ledger.root(50)
            batch = _events(50, seed=12)
            cutter.armed.set()
            with pytest.raises(StoreUnavailableError):
                ledger.append(batch)
            assert cutter.cut.is_set()
            assert ledger.size() == 50
            assert ledger.root(50) == root
            again = ledger.append(batch)
            assert again.appended == 50
            assert again.first_index == 50
            assert ledger.verify().size == 100
    finally:
        cutter.close()
