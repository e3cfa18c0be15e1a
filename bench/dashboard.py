"""Benchmark the dashboard's pages on a log of 1,000,000 entries (a month of a hospital
group's traffic) served by a real `trailseal serve` process on the embedded SQLite store.

    python bench/dashboard.py                        # 1M entries: ~2 min to build
    python bench/dashboard.py --keep /var/tmp/dlog   # build once, measure again later

Each page is fetched ``--runs`` times (30 by default) by one signed-in auditor over
loopback; the table shows the median and the 95th percentile of the whole request (the
page's reads, their records in the log, rendering, HTTP), beside baselines measured in
the same run against the same server: ``/healthz`` (an HTTP round trip and nothing
else) and the JSON API's answer to the same read where there is one. Target: every
page under 300 ms at p95.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from _logs import build, say
from trailseal.testing import ServiceProcess

MONTH = timedelta(days=30)
START = datetime(2026, 10, 1, tzinfo=UTC)
TARGET = 0.300


def timed(client: httpx.Client, path: str, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")
    times.sort()
    return statistics.median(times), times[max(0, round(0.95 * len(times)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def measure(data: Path, runs: int) -> list[tuple[str, ...]]:
    name = f"admin-{time.time_ns()}"
    created = subprocess.run(
        [
            *(sys.executable, "-m", "trailseal", "principals", "create", name, "--role", "admin"),
            "--data",
            str(data),
        ],
        check=True,
        capture_output=True,
    )
    service = ServiceProcess(data, orjson.loads(created.stdout)["token"], ("--rate", "100000"))
    service.start()
    try:
        auditor = service.principal(f"auditor-{time.time_ns()}", "auditor")
        web = service.signed_in(auditor)
        api = service.client(auditor)
        size = api.get("/v1/checkpoint").text.split("\n")[1]
        index = int(size) // 2
        entry = api.get(f"/v1/entries/{index}").json()["entry"]["event"]
        actor = entry["actor"]["id"]
        record = f"{entry['resource']['type']}/{entry['resource']['id']}"
        page2 = re.search(r'cursor=([A-Za-z0-9_-]+)"', web.get("/search?q=action:record.read").text)
        assert page2 is not None
        rows: list[tuple[str, ...]] = []
        floor = timed(api, "/healthz", runs)
        pages = [
            ("overview", "/", None),
            ("search: newest first, no query", "/search", "/v1/entries?order=newest&limit=50"),
            (
                f"search: actor:{actor}",
                f"/search?q=actor:{actor}",
                f"/v1/entries?q=actor:{actor}&order=newest&limit=50",
            ),
            ("search: page 2 (a cursor)", f"/search?q=action:record.read&cursor={page2[1]}", None),
            ("search: count by day", "/search?q=&count_by=day", "/v1/entries?count_by=day"),
            (f"entry {index} (with its proof)", f"/entries/{index}", f"/v1/entries/{index}"),
            (
                f"record history {record}",
                f"/history?resource={record}",
                f"/v1/entries?q=resource:{record}&limit=50",
            ),
            (
                f"actor timeline {actor}",
                f"/timeline?actor={actor}&since=2026-10-20&until=2026-10-26",
                None,
            ),
            ("alerts", "/alerts", "/v1/alerts"),
            ("reports", "/reports", None),
        ]
        for name, path, baseline in pages:
            say(f"  {name} ...")
            median, p95 = timed(web, path, runs)
            base = timed(api, baseline, runs) if baseline else floor
            label = "API, same read" if baseline else "/healthz"
            rows.append(
                (
                    name,
                    ms(median),
                    ms(p95),
                    f"{ms(base[1])} p95 ({label})",
                    "yes" if p95 < TARGET else "NO",
                )
            )
        return rows
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="Build the log here once, and reuse it.")
    args = parser.parse_args()
    scratch = None
    if args.keep:
        data = args.keep
    else:
        scratch = Path(tempfile.mkdtemp(prefix="trailseal-dashboard-"))
        data = scratch / "data"
    try:
        if not (data / "log.db").exists():
            say(f"building a month of {args.entries:,} entries in {data} ...")
            build(
                data,
                args.entries,
                start=START,
                span=MONTH,
                seed=12,
                origin="bench.example/dashboard",
            )
        rows = measure(data, args.runs)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    header = ("page", "median", "p95", "baseline (same run)", "p95 < 300 ms")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
