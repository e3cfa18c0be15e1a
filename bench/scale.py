"""Benchmark appends past one process: 1, 2 and 4 logs on PostgreSQL, each with one and
with two `serve` processes, beside the single-log SQLite figure, and end-to-end latency
(emit to the index acknowledged) through HTTP and through NATS JetStream.

    python bench/scale.py                      # 40,000 events a throughput run
    python bench/scale.py --events 10000 --latency 500

What it measures, in one run:

- **throughput**: 4 producer processes, each posting its share of the events in
  batches of 100 over HTTP to `POST /v1/events`, which routes each event by its tenant
  (the sample events' 24 tenants shared evenly among the logs); to one `serve` on
  SQLite (one log, the baseline), and on PostgreSQL to a deployment of 1, 2 and 4 logs
  served by one `serve` and by two (producers split between them); with batches that
  mix every log's events, and with each producer's events ordered by log (a batch then
  mostly goes to one log, as when each host sends its own tenant's events);
- **latency**: one event at a time, from `Client.emit` to `Client.flush` returning
  (the log has acknowledged its index), through HTTP and through JetStream (a
  `nats-server -js` started for the run), median and p95.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from trailseal.testing import ServiceProcess, drop_postgres_log, free_port, sample_events

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
PRODUCER = """
import sys, httpx, orjson
url, token, path = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(path, "rb").read().splitlines()
with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
    for start in range(0, len(lines), 100):
        r = c.post("/v1/events", content=b"\\n".join(lines[start:start + 100]),
                   headers={"Content-Type": "application/x-ndjson"})
        assert r.status_code == 201, r.text
"""


def _cli(*args: str | Path) -> bytes:
    return subprocess.run(
        [sys.executable, "-m", "trailseal", *map(str, args)], check=True, capture_output=True
    ).stdout


def _log(root: Path, store: str | None, logs: int = 1) -> tuple[Path, str]:
    data = root / uuid.uuid4().hex[:8]
    flags = ("--store", store) if store else ()
    _cli("init", "--data", data, *flags)
    for k in range(1, logs):
        tenants = [f"tenant-{j}" for j in range(24) if j % logs == k]
        routes = [flag for tenant in tenants for flag in ("--tenant", tenant)]
        _cli("logs", "create", f"log{k}", "--data", data, *flags, *routes)
        if store:
            SCHEMAS.append(f"{store.rsplit('=', 1)[1]}_log{k}")
    writer = json.loads(_cli("principals", "create", "writer", "--role", "writer", "--data", data))
    return data, writer["token"]


def _routed(event: dict[str, object], logs: int) -> int:
    """The log the sample event's tenant is routed to (tenant-J to log J mod logs)."""
    resource = event.get("resource")
    tenant = resource.get("tenant") if isinstance(resource, dict) else None
    return int(str(tenant).rsplit("-", 1)[1]) % logs if tenant else 0


def throughput(
    root: Path,
    events: int,
    store: str | None,
    services: int,
    logs: int = 1,
    *,
    by_log: bool = False,
) -> float:
    """Events a second; ``by_log``: each producer's events ordered by the log they route
    to, so a batch of 100 mostly goes to one log (as when each host sends its own
    tenant's events), instead of splitting among them."""
    data, token = _log(root, store, logs)
    running = [ServiceProcess(data, token) for _ in range(services)]
    for service in running:
        service.start()
    files = []
    for n in range(4):
        path = root / f"producer-{uuid.uuid4().hex[:6]}-{n}.jsonl"
        chosen = list(sample_events(events // 4, seed=40 + n))
        if by_log:
            chosen.sort(key=lambda event: _routed(event, logs))
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in chosen))
        files.append(path)
    started = time.perf_counter()
    producers = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER, running[n % services].url, token, str(path)]
        )
        for n, path in enumerate(files)
    ]
    assert all(p.wait(timeout=900) == 0 for p in producers)
    elapsed = time.perf_counter() - started
    for service in running:
        service.stop()
    return events / elapsed


def latency(root: Path, count: int, url: str, nats: str | None) -> list[float]:
    from trailseal.client import Client  # noqa: PLC0415

    data, token = _log(root, None)
    service = ServiceProcess(data, token, ("--nats", nats) if nats else ())
    service.start()
    waits = []
    try:
        target = nats or service.url
        with Client(target, token, spool=root / uuid.uuid4().hex) as client:
            for event in sample_events(count, seed=50):
                started = time.perf_counter()
                client.emit(event)
                client.flush(timeout=60)
                waits.append(time.perf_counter() - started)
    finally:
        service.stop()
    del url
    return waits


def _nats(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    process = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(root / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return process, f"nats://127.0.0.1:{port}"


SCHEMAS: list[str] = []


def _schema() -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    SCHEMAS.append(name)
    return f"{POSTGRES}?schema={name}"


def _drop_schemas() -> None:
    """The run's schemas and their roles go when it ends."""
    for name in SCHEMAS:
        drop_postgres_log(f"{POSTGRES}?schema={name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--latency", type=int, default=1_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="trailseal-scale-"))
    os.environ.pop("TRAILSEAL_STORE", None)
    nats_process, nats_url = _nats(root)
    try:
        baseline = throughput(root, args.events, None, 1)
        rows: list[tuple[str, float, float | None]] = [
            ("1 log, 1 serve, SQLite (baseline)", baseline, None)
        ]
        for logs in (1, 2, 4):
            for services in (1, 2):
                mixed = throughput(root, args.events, _schema(), services, logs)
                grouped = (
                    throughput(root, args.events, _schema(), services, logs, by_log=True)
                    if logs > 1
                    else None
                )
                name = f"{logs} log{'s' if logs > 1 else ''}, {services} serve, PostgreSQL"
                rows.append((name, mixed, grouped))
        http = latency(root, args.latency, "", None)
        stream = latency(root, args.latency, "", nats_url)
    finally:
        nats_process.kill()
        _drop_schemas()
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.events:,} events, 4 producer processes, batches of 100; one run")
    print(f"  {'':<36} {'mixed batches':>26}   {'batches by log':>17}")
    for name, rate, grouped in rows:
        by_log = f"{grouped:>10,.0f} ({grouped / baseline:4.0%})" if grouped else f"{'-':>17}"
        print(f"  {name:<36} {rate:>10,.0f} ({rate / baseline:4.0%}) events/s   {by_log}")
    for name, waits in (("HTTP", http), ("JetStream", stream)):
        ordered = sorted(waits)
        p95 = ordered[int(len(ordered) * 0.95) - 1]
        print(
            f"  latency emit->index, {name:<10} median {statistics.median(waits) * 1000:6.1f} ms"
            f"   p95 {p95 * 1000:6.1f} ms   ({len(waits)} events, one at a time)"
        )


if __name__ == "__main__":
    main()
