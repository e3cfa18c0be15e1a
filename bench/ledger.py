"""Benchmark the ledger against a floor and a naive baseline, measured in the same run.

    python bench/ledger.py                 # 1,000,000 events (several minutes)
    python bench/ledger.py --events 100000 # a quicker look

Prints one table: trailseal's durable batched append (validation, canonical
bytes, hashing, tree, SQLite commit, checkpoint), the floor (parse each JSON
line and insert it as-is into SQLite, WAL, synchronous=FULL, 10,000 a
transaction), the naive baseline (stdlib json, one transaction per event, no
hashing), verification, inclusion-proof latency and bytes on disk per event.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from trailseal.events import canonical, parse_event
from trailseal.ledger import Ledger
from trailseal.ledger.search import catch_up
from trailseal.testing import sample_events

BATCH = 10_000


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, line BLOB NOT NULL)")
    return db


def floor(lines: list[bytes], path: Path) -> float:
    """Parse each line (orjson) and insert it as-is, 10,000 rows a transaction."""
    db = _connect(path)
    started = time.perf_counter()
    for start in range(0, len(lines), BATCH):
        chunk = lines[start : start + BATCH]
        for line in chunk:
            orjson.loads(line)
        db.execute("BEGIN")
        db.executemany("INSERT INTO events (line) VALUES (?)", [(line,) for line in chunk])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return len(lines) / elapsed


def naive(lines: list[bytes], path: Path) -> float:
    """What a naive logger does: SQLite's defaults (rollback journal, synchronous=FULL),
    stdlib json, one transaction per event, no hashing."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, line BLOB NOT NULL)")
    started = time.perf_counter()
    for line in lines:
        json.loads(line)
        db.execute("BEGIN")
        db.execute("INSERT INTO events (line) VALUES (?)", (line,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return len(lines) / elapsed


def bulk_append(lines: list[bytes], ledger: Ledger, progress: Callable[[int], None]) -> float:
    """The bulk path `trailseal append FILE` uses: lines are parsed, validated and
    prepared in worker processes a few chunks ahead while the sequencer commits."""
    started = time.perf_counter()
    done = 0
    for chunk in ledger.prepare_lines(lines):
        if chunk.problems:
            raise RuntimeError(chunk.problems[0])
        ledger.append_prepared(chunk.prepared)
        done += len(chunk.prepared)
        progress(done)
    return len(lines) / (time.perf_counter() - started)


def event_append(lines: list[bytes], ledger: Ledger) -> float:
    """The per-event library path: parse and append batches of 10,000 on one thread."""
    limits = ledger.limits
    started = time.perf_counter()
    for start in range(0, len(lines), BATCH):
        ledger.append([parse_event(line, limits) for line in lines[start : start + BATCH]])
    return len(lines) / (time.perf_counter() - started)


def disk_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.glob("log.db*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--naive-events", type=int, default=20_000)
    parser.add_argument("--proofs", type=int, default=5_000)
    parser.add_argument(
        "--event-path-events",
        type=int,
        default=200_000,
        help="Events for the per-event append path (a second, separate log).",
    )
    parser.add_argument("--dir", type=Path, default=None, help="Scratch directory.")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="trailseal-bench-", dir=args.dir))
    try:
        run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(args: argparse.Namespace, scratch: Path) -> None:
    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    say(f"generating {args.events:,} events ...")
    lines = [orjson.dumps(event) for event in sample_events(args.events)]
    sample = [orjson.loads(line) for line in lines[:: max(1, len(lines) // 20_000)]]
    canonical_size = statistics.fmean(len(canonical(event)) for event in sample)
    line_size = statistics.fmean(len(line) for line in lines)

    say("floor ...")
    floor_rate = floor(lines, scratch / "floor.db")
    say(f"naive baseline on {args.naive_events:,} events ...")
    naive_rate = naive(lines[: args.naive_events], scratch / "naive.db")

    say("trailseal bulk append ...")
    ledger = Ledger.init(scratch / "log", origin="bench.example/log")
    step = max(len(lines) // 10, BATCH)
    append_rate = bulk_append(lines, ledger, lambda done: done % step == 0 and say(f"  {done:,}"))
    say(f"trailseal per-event append on {args.event_path_events:,} events ...")
    with Ledger.init(scratch / "log2", origin="bench.example/log2") as second:
        event_rate = event_append(lines[: args.event_path_events], second)
    ledger.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    on_disk = disk_bytes(scratch / "log") / len(lines)

    say("verify ...")
    started = time.perf_counter()
    report = ledger.verify()
    verify_rate = report.size / (time.perf_counter() - started)

    say("inclusion proofs ...")
    rng = random.Random(1)
    latencies = []
    for _ in range(args.proofs):
        index = rng.randrange(report.size)
        started = time.perf_counter()
        ledger.prove_inclusion(index, report.size)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e6
    p99 = latencies[int(len(latencies) * 0.99)] * 1e6

    say("search index catch-up ...")
    started = time.perf_counter()
    indexed = catch_up(ledger.store)
    index_rate = indexed / (time.perf_counter() - started)
    ledger.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with_index = disk_bytes(scratch / "log") / len(lines)
    ledger.close()

    ratio = f"{append_rate / floor_rate:.2f}x floor, {append_rate / naive_rate:.0f}x naive"
    rows = [
        ("events", f"{args.events:,}", "", ""),
        (
            "event size: JSON line / canonical",
            f"{line_size:.0f} B / {canonical_size:.0f} B",
            "",
            "",
        ),
        ("floor: parse + insert as-is, 10k/txn", f"{floor_rate:,.0f}/s", "", ""),
        (f"naive: stdlib json, txn/event ({args.naive_events:,})", f"{naive_rate:,.0f}/s", "", ""),
        (
            "trailseal durable append, bulk path",
            f"{append_rate:,.0f}/s = {ratio}",
            ">= 0.5x floor, >= 50x naive",
            _verdict(append_rate >= floor_rate / 2 and append_rate >= 50 * naive_rate),
        ),
        (f"  per-event API, 1 thread ({args.event_path_events:,})", f"{event_rate:,.0f}/s", "", ""),
        ("trailseal verify", f"{verify_rate:,.0f}/s", ">= 300,000/s", _verdict(verify_rate >= 3e5)),
        (
            f"inclusion proof at {report.size:,}: p50 / p99",
            f"{p50:.0f} / {p99:.0f} us",
            "p99 < 1,000 us",
            _verdict(p99 < 1000),
        ),
        (
            "on disk per event (all but search index)",
            f"{on_disk:.0f} B = {on_disk / canonical_size:.2f}x canonical",
            "<= 1.5x",
            _verdict(on_disk <= 1.5 * canonical_size),
        ),
        ("search index catch-up (after appends)", f"{index_rate:,.0f}/s", "", ""),
        (
            "on disk per event with search index",
            f"{with_index:.0f} B = {with_index / canonical_size:.2f}x canonical",
            "",
            "",
        ),
    ]
    width = [max(len(str(row[i])) for row in rows) for i in range(4)]
    header = ("measure", "result", "target", "")
    print(" | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)))
    print("-+-".join("-" * w for w in width))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, width, strict=True)))


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    main()
