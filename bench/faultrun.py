"""The fault run of issue 16, at any size: producer processes stream events through NATS
JetStream into two `serve` processes sharing a deployment of several logs on one
PostgreSQL, while in turn one `serve` is SIGKILLed, then the other, then the NATS server,
and PostgreSQL is restarted once.

At the end every event is in exactly one log (the one its tenant is routed to) exactly
once, every log verifies (each checkpoint consistent with the one before), a deployment
checkpoint signed before the faults still checks out against every log, and no producer
holds an event it was told was stored but is not: each producer's spool has drained,
which it does only as the log gives indexes.

`tests/test_scale_faults.py` runs it sized for CI; `python bench/scale_faults.py` runs
it over 1,000,000 events. Real processes, real SIGKILL, the real PostgreSQL and NATS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg

from trailseal.app import Caller
from trailseal.app.deployment import Deployment
from trailseal.testing import (
    NatsProcess,
    ServiceProcess,
    pg_ctl,
    wait_for_postgres,
)

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
TENANTS = 24  # sample events carry tenant-0 ... tenant-23 (and some none)
PRODUCER = """
import sys, time, json
from trailseal.client import Client
from trailseal.testing import sample_events
url, spool, name = sys.argv[1:4]
count, pace = int(sys.argv[4]), float(sys.argv[5])
client = Client(url, "", spool)
for n, event in enumerate(sample_events(count, seed=sum(map(ord, name)))):
    client.emit(dict(event, id=f"{name}-{n}"))
    if pace and n % 20 == 0:
        time.sleep(pace)
client.flush(timeout=3600)
print(json.dumps({"sent": client.status.sent, "pending": client.pending_bytes}))
client.close(timeout=5)
"""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Outcome:
    """What a fault run found."""

    events: int
    seconds: float
    recovery: dict[str, float]
    per_log: dict[str, int]  # each log's share of the producers' events
    problems: list[str] = field(default_factory=list)


def _cli(*args: str | Path) -> bytes:
    return subprocess.run(
        [sys.executable, "-m", "trailseal", *map(str, args)], check=True, capture_output=True
    ).stdout


def deploy(data: Path, store: str, logs: int) -> str:
    """A deployment of ``logs`` logs on ``store`` (the default and log1, log2, ...; the
    sample tenants shared among them); returns an administrator's token."""
    _cli("init", "--data", data, "--store", store, "--origin", "faults.example/audit")
    for k in range(1, logs):
        tenants = [f"tenant-{j}" for j in range(TENANTS) if j % logs == k]
        flags = [flag for tenant in tenants for flag in ("--tenant", tenant)]
        _cli("logs", "create", f"log{k}", "--data", data, "--store", store, *flags)
    made = _cli("principals", "create", "root", "--role", "admin", "--data", data)
    return str(json.loads(made)["token"])


def _count(schemas: list[str]) -> int:
    total = 0
    with psycopg.connect(POSTGRES, connect_timeout=2) as db:
        for schema in schemas:
            row = db.execute(f'SELECT count(*) FROM "{schema}".entries').fetchone()
            total += int(row[0]) if row else 0
    return total


def _recovery(schemas: list[str], fault: Callable[[], None], timeout: float = 120) -> float:
    """Seconds from the fault until the logs grow again."""
    before = _count(schemas)
    started = time.monotonic()
    fault()
    while time.monotonic() - started < timeout:
        try:
            if _count(schemas) > before:
                return time.monotonic() - started
        except psycopg.OperationalError:
            pass  # PostgreSQL is restarting
        time.sleep(0.05)
    raise RuntimeError("the logs did not grow again after the fault")


def run(
    root: Path,
    schema: str,
    *,
    producers: int,
    events: int,
    logs: int,
    pace: float,
    settle: float,
) -> Outcome:
    """Stream ``events`` events from each of ``producers`` processes (sleeping ``pace``
    seconds every 20) into a deployment of ``logs`` logs in ``schema``, with the faults
    starting ``settle`` seconds in; then check everything."""
    data = root / "data"
    store = f"{POSTGRES}?schema={schema}"
    admin = deploy(data, store, logs)
    schemas = [schema, *(f"{schema}_log{k}" for k in range(1, logs))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    nats = NatsProcess(root)
    nats.start()
    serves = [ServiceProcess(data, admin, ("--nats", nats.url)) for _ in range(2)]
    for service in serves:
        service.start()
    started = time.monotonic()
    running = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PRODUCER,
                nats.url,
                str(root / f"spool-{n}"),
                f"p{n}",
                str(events),
                str(pace),
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        for n in range(producers)
    ]
    times: dict[str, float] = {}
    results: list[Any] = []
    try:
        time.sleep(settle)
        with Deployment.open(data) as deployment:
            before = deployment.checkpoint(Caller.host())

        def kill(service: ServiceProcess) -> Callable[[], None]:
            def fault() -> None:
                assert service.process is not None
                os.kill(service.process.pid, signal.SIGKILL)
                service.process.wait(timeout=10)

            return fault

        times["serve A SIGKILLed"] = _recovery(schemas, kill(serves[0]))
        serves[0].start()
        times["serve B SIGKILLed"] = _recovery(schemas, kill(serves[1]))
        serves[1].start()

        def kill_nats() -> None:
            nats.kill()
            time.sleep(0.5)
            nats.start()

        times["NATS SIGKILLed, started again"] = _recovery(schemas, kill_nats)

        def restart_postgres() -> None:
            pg_ctl("stop")
            pg_ctl("start")
            wait_for_postgres(POSTGRES)

        times["PostgreSQL restarted"] = _recovery(schemas, restart_postgres)
        say(f"faults done at {time.monotonic() - started:.0f} s; waiting for the producers")
        for producer in running:
            out, _ = producer.communicate(timeout=7200)
            results.append(json.loads(out.splitlines()[-1]))
        seconds = time.monotonic() - started
    finally:
        for producer in running:
            if producer.poll() is None:
                producer.kill()
        for service in serves:
            service.stop()
        nats.kill()
    outcome = Outcome(producers * events, seconds, times, {})
    if results != [{"sent": events, "pending": 0}] * producers:
        outcome.problems.append(f"a producer holds events not stored: {results}")
    _check(data, before, producers, events, outcome)
    return outcome


def _check(data: Path, before: str, producers: int, events: int, outcome: Outcome) -> None:
    """Every event in exactly one log, the one it routes to, once; every log verifies; the
    deployment checkpoint signed before the faults checks out against every log."""
    expected = {f"p{n}-{i}" for n in range(producers) for i in range(events)}
    seen: set[str] = set()
    with Deployment.open(data) as deployment:
        deployment.check_checkpoint(before)
        for app in deployment.apps():
            report = app.ledger.verify()
            ours = 0
            for line in app.ledger.export():
                event = orjson.loads(line)["entry"]["event"]
                if event["id"] not in expected:
                    continue
                ours += 1
                if event["id"] in seen:
                    outcome.problems.append(f"{event['id']} stored twice")
                seen.add(event["id"])
                tenant = event.get("resource", {}).get("tenant") or event["actor"].get("tenant")
                if deployment.routes.route(tenant) != app.log:
                    outcome.problems.append(f"{event['id']} in log {app.log}, not its tenant's")
            outcome.per_log[app.log] = ours
            if report.size != app.ledger.size():
                outcome.problems.append(f"log {app.log}: verified {report.size} entries")
    missing = expected - seen
    if missing:
        outcome.problems.append(f"{len(missing)} events missing, e.g. {sorted(missing)[:3]}")
