"""Benchmark ingestion over HTTP with the Python client, against the library as the ceiling.

    python bench/ingest.py                  # 200,000 events
    python bench/ingest.py --events 50000

Prints, in one run: events/s from the first `emit` until the client's spool
is drained (every event durable in the log), the cost of `emit` on the
caller's thread (p50, p99), and the same events appended directly through the
library (the bulk path, no HTTP) as the ceiling.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

from trailseal.client import Client
from trailseal.ledger import Ledger
from trailseal.testing import ServiceProcess, sample_events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="trailseal-ingest-"))
    try:
        run(args.events, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(count: int, scratch: Path) -> None:
    print(f"generating {count:,} events ...", file=sys.stderr)
    events = list(sample_events(count))

    print("library ceiling ...", file=sys.stderr)
    lines = [orjson.dumps(event) for event in events]
    with Ledger.init(scratch / "direct", origin="bench.example/direct") as ledger:
        started = time.perf_counter()
        for chunk in ledger.prepare_lines(lines):
            ledger.append_prepared(chunk.prepared)
        ceiling = count / (time.perf_counter() - started)

    print("HTTP with the client ...", file=sys.stderr)
    service = ServiceProcess.boot(scratch / "served", "--rate", "100000")
    try:
        token = service.principal("bench-app", "writer")
        client = Client(service.url, token, scratch / "spool", max_spool_bytes=2 * 1024**3)
        costs: list[int] = []
        clock = time.perf_counter_ns
        started = time.perf_counter()
        for event in events:
            before = clock()
            client.emit(event)
            costs.append(clock() - before)
        emitted = time.perf_counter() - started
        client.close(timeout=600)
        elapsed = time.perf_counter() - started
        sent = client.status.sent
    finally:
        service.stop()
    with Ledger.open(scratch / "served") as served:
        served.verify()
    costs.sort()
    p50, p99 = costs[len(costs) // 2] / 1000, costs[int(len(costs) * 0.99)] / 1000

    rows = [
        ("events", f"{count:,}", ""),
        ("library, bulk path (ceiling)", f"{ceiling:,.0f}/s", ""),
        ("HTTP batches with the client, until durable", f"{sent / elapsed:,.0f}/s", ">= 20,000/s"),
        ("  = share of the ceiling", f"{sent / elapsed / ceiling:.2f}", ""),
        ("emit() on the caller's thread: p50 / p99", f"{p50:.1f} / {p99:.1f} us", "p99 < 20 us"),
        ("emit() loop alone", f"{count / emitted:,.0f}/s", ""),
    ]
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in (("measure", "result", "target"), *rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)))


if __name__ == "__main__":
    main()
