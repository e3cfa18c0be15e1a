"""The fault run, sized for CI: producer processes streaming through NATS JetStream into
two `serve` processes on one PostgreSQL log, while each in turn is SIGKILLed (one serve,
the other serve, the NATS server) and PostgreSQL is restarted once.

At the end every event is in the log exactly once, the log verifies (every checkpoint
consistent with the one before), and no producer holds an event it was told was stored
but is not: each producer's spool has drained, which it does only as the log gives
indexes. The time each fault took to recover from (until the log grew again) is
printed. Issue 16 asks for this over 1,000,000 events and several logs; several logs are
not built yet, and this is the one-log version.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from backends import PostgresBackend
from conftest import POSTGRES_URL, postgres, run_cli
from test_postgres import _pg_ctl, _wait_for_postgres
from test_stream import NATS, NatsServer
from trailseal.app import App
from trailseal.testing import ServiceProcess

PRODUCERS = 3
EVENTS = 4_000  # each: 12,000 in all
PRODUCER = """
import sys, time, json
from trailseal.client import Client
from trailseal.testing import sample_events
url, spool, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = Client(url, "", spool)
for n, event in enumerate(sample_events(count, seed=hash(name) % 1000)):
    client.emit(dict(event, id=f"{name}-{n}"))
    if n % 20 == 0:
        time.sleep(0.15)  # a stream of about 30 s, for every fault to land in
client.flush(timeout=600)
print(json.dumps({"sent": client.status.sent, "pending": client.pending_bytes}))
client.close(timeout=5)
"""


@pytest.fixture
def pg() -> Iterator[PostgresBackend]:
    yield from postgres()


def _count(schema: str) -> int:
    with psycopg.connect(POSTGRES_URL, connect_timeout=2) as db:
        (found,) = db.execute(f'SELECT count(*) FROM "{schema}".entries').fetchone() or (0,)
    return int(found)


def _recovery(schema: str, fault: Callable[[], None], timeout: float = 60) -> float:
    """Seconds from the fault until the log grows again."""
    before = _count(schema)
    started = time.monotonic()
    fault()
    while time.monotonic() - started < timeout:
        try:
            if _count(schema) > before:
                return time.monotonic() - started
        except psycopg.OperationalError:
            pass  # PostgreSQL is restarting
        time.sleep(0.05)
    raise AssertionError("the log did not grow again after the fault")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None,
    reason="restarting PostgreSQL needs root and Debian's pg_ctlcluster",
)
def test_faults_in_turn_lose_nothing(pg: PostgresBackend, tmp_path: Path) -> None:
    if not Path(NATS).exists():
        pytest.skip("nats-server is not installed")
    data = tmp_path / "data"
    run_cli("init", "--store", pg.store(data), data=data, check=True)
    created = run_cli("principals", "create", "root", "--role", "admin", data=data, check=True)
    admin = json.loads(created.stdout)["token"]
    nats = NatsServer(tmp_path)
    nats.start()
    serves = [ServiceProcess(data, admin, ("--nats", nats.url)) for _ in range(2)]
    for service in serves:
        service.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    producers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PRODUCER,
                nats.url,
                str(tmp_path / f"spool-{n}"),
                f"p{n}",
                str(EVENTS),
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        for n in range(PRODUCERS)
    ]
    times: dict[str, float] = {}
    try:
        time.sleep(1.5)

        def kill_serve(service: ServiceProcess) -> Callable[[], None]:
            def fault() -> None:
                assert service.process is not None
                os.kill(service.process.pid, signal.SIGKILL)
                service.process.wait(timeout=10)

            return fault

        times["serve A killed"] = _recovery(pg.schema, kill_serve(serves[0]))
        serves[0].start()
        times["serve B killed"] = _recovery(pg.schema, kill_serve(serves[1]))
        serves[1].start()

        def kill_nats() -> None:
            nats.kill()
            time.sleep(0.5)
            nats.start()

        times["NATS killed and started"] = _recovery(pg.schema, kill_nats)

        def restart_postgres() -> None:
            _pg_ctl("stop")
            _pg_ctl("start")
            _wait_for_postgres()

        times["PostgreSQL restarted"] = _recovery(pg.schema, restart_postgres)
        results = []
        for producer in producers:
            out, _ = producer.communicate(timeout=600)
            results.append(json.loads(out.splitlines()[-1]))
    finally:
        for producer in producers:
            if producer.poll() is None:
                producer.kill()
        for service in serves:
            service.stop()
        nats.kill()
    print("recovery times:", {name: f"{seconds:.2f} s" for name, seconds in times.items()})
    assert results == [{"sent": EVENTS, "pending": 0}] * PRODUCERS  # nothing left unstored
    with App.open(data) as app:
        report = app.ledger.verify()
        lines = [orjson.loads(line) for line in app.ledger.export()]
    ids = [line["entry"]["event"]["id"] for line in lines if "entry" in line]
    ours = [i for i in ids if i.startswith("p")]
    assert len(ours) == len(set(ours))  # none twice
    assert set(ours) == {f"p{n}-{i}" for n in range(PRODUCERS) for i in range(EVENTS)}
    assert report.size == len(lines)
