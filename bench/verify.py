"""Benchmark verification under load: the full pass against `verify --since`, and the
latency of appends while many clients ask the service to verify at once.

    python bench/verify.py                  # a 300,000-entry log, 16 concurrent verifies
    python bench/verify.py --entries 100000 --callers 8

Prints, in one run:

- the full verification of the log (the baseline) beside `verify --since` a
  checkpoint at 99% of it (what a nightly run does after the first night);
- the latency of single-event appends over HTTP with nothing else going on
  (the baseline), then while ``--callers`` clients call `POST /v1/verify` in a
  loop: one verification runs at a time, the others are answered 429.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

from trailseal.ledger import Ledger
from trailseal.testing import ServiceProcess, sample_events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=300_000)
    parser.add_argument("--callers", type=int, default=16)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="trailseal-verify-"))
    try:
        rows = run(args.entries, args.callers, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}} | result")
    for name, value in rows:
        print(f"{name:<{width}} | {value}")


def run(count: int, callers: int, scratch: Path) -> list[tuple[str, str]]:
    data = scratch / "data"
    print(f"writing {count:,} entries ...", file=sys.stderr)
    lines = [orjson.dumps(event) for event in sample_events(count)]
    cut = count * 99 // 100
    with Ledger.init(data, origin="bench.example/verify") as ledger:
        for chunk in ledger.prepare_lines(lines[:cut]):
            ledger.append_prepared(chunk.prepared)
        kept = ledger.checkpoint()  # as a nightly run keeps the one it ended on
        for chunk in ledger.prepare_lines(lines[cut:]):
            ledger.append_prepared(chunk.prepared)
        print("verifying: full pass, then --since ...", file=sys.stderr)
        started = time.perf_counter()
        ledger.verify()
        full = time.perf_counter() - started
        started = time.perf_counter()
        report = ledger.verify(since=kept)
        since = time.perf_counter() - started
    rows = [
        ("entries", f"{count:,}"),
        ("full verification (baseline)", f"{full:.2f} s"),
        (f"verify --since the checkpoint at {report.since_size:,}", f"{since:.2f} s"),
        ("  = share of the full pass", f"{since / full:.3f}"),
    ]
    rows += _appends_under_verification(data, callers)
    return rows


def _appends_under_verification(data: Path, callers: int) -> list[tuple[str, str]]:
    created = _admin(data)
    service = ServiceProcess(data, created)
    service.start()
    try:
        writer = service.principal("bench-writer", "writer")
        auditor = service.principal("bench-auditor", "auditor")
        print("appends alone ...", file=sys.stderr)
        alone = _append_latencies(service, writer, 100)
        print(f"appends while {callers} clients verify ...", file=sys.stderr)
        answers: dict[int, int] = {}
        stop = threading.Event()

        def verify_loop() -> None:
            with service.client(auditor) as http:
                while not stop.is_set():
                    code = http.post("/v1/verify").status_code
                    answers[code] = answers.get(code, 0) + 1
                    if code == 429:  # come back later, as Retry-After says
                        stop.wait(0.2)

        threads = [threading.Thread(target=verify_loop, daemon=True) for _ in range(callers)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        loaded = _append_latencies(service, writer, 100)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        service.stop()
    return [
        ("append over HTTP, nothing else: p50 / p99 (baseline)", _ms(alone)),
        (f"append while {callers} clients verify: p50 / p99", _ms(loaded)),
        (
            "  verify answers (200 ran, 429 told to wait)",
            ", ".join(f"{code}: {n}" for code, n in sorted(answers.items())),
        ),
    ]


def _admin(data: Path) -> str:
    import subprocess  # noqa: PLC0415 - only here

    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "trailseal",
            "principals",
            "create",
            "bench-admin",
            "--role",
            "admin",
            "--data",
            str(data),
        ],
        check=True,
        capture_output=True,
    )
    return str(orjson.loads(created.stdout)["token"])


def _append_latencies(service: ServiceProcess, token: str, count: int) -> list[float]:
    taken = []
    with httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as http:
        for event in sample_events(count, seed=int(time.time())):
            started = time.perf_counter()
            http.post("/v1/events", json=event).raise_for_status()
            taken.append(time.perf_counter() - started)
            time.sleep(0.02)
    return taken


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:.1f} / {p99 * 1000:.1f} ms"


if __name__ == "__main__":
    main()
