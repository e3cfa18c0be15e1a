"""Benchmark the ledger on each store against its floor and a naive baseline, in one run.

    python bench/ledger.py                 # 1,000,000 events on SQLite (several minutes)
    python bench/ledger.py --events 100000 # a quicker look
    python bench/ledger.py --store postgresql://postgres@127.0.0.1/test  # and PostgreSQL

Prints one table with a column per store: trailseal's durable batched append
(validation, canonical bytes, hashing, tree, commit, checkpoint) beside that
store's floor (SQLite: parse each JSON line and insert it as-is, WAL,
synchronous=FULL, 10,000 a transaction; PostgreSQL: parse each line and binary
COPY it as-is into an unindexed table, 10,000 a transaction), the naive
baseline (stdlib json, one SQLite transaction per event, no hashing),
verification, inclusion-proof latency, search catch-up and bytes per event.
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
import psycopg
from psycopg import sql

from trailseal.events import canonical, parse_event
from trailseal.ledger import Ledger
from trailseal.ledger.search import catch_up
from trailseal.storage import is_postgres
from trailseal.storage.postgres import parse_url
from trailseal.testing import drop_postgres_log, sample_events

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


def postgres_floor(lines: list[bytes], url: str) -> float:
    """Parse each line (orjson) and COPY it as-is (binary) into an unindexed table,
    10,000 rows a transaction, each commit durable (synchronous_commit on)."""
    conninfo, schema = parse_url(url)
    floor_schema = sql.Identifier(f"{schema}_floor")
    table = sql.Identifier(f"{schema}_floor", "events")
    with psycopg.connect(conninfo, autocommit=True) as db:
        db.execute(sql.SQL("CREATE SCHEMA {}").format(floor_schema))
        db.execute(sql.SQL("CREATE TABLE {} (id bigint, line bytea NOT NULL)").format(table))
        started = time.perf_counter()
        for start in range(0, len(lines), BATCH):
            chunk = lines[start : start + BATCH]
            for line in chunk:
                orjson.loads(line)
            with (
                db.transaction(),
                db.cursor().copy(
                    sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(table)
                ) as copy,
            ):
                copy.set_types(["int8", "bytea"])
                for offset, line in enumerate(chunk, start=start):
                    copy.write_row((offset, line))
        elapsed = time.perf_counter() - started
        db.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(floor_schema))
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


def disk_bytes(ledger: Ledger) -> int:
    """Bytes the log's store holds (SQLite files; PostgreSQL relations with indexes)."""
    if is_postgres(ledger.settings.store):
        _, schema = parse_url(ledger.settings.store)
        return int(
            ledger.store.db.execute(  # type: ignore[attr-defined]
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 't')",
                (schema,),
            ).fetchone()[0]
        )
    ledger.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
    return sum(f.stat().st_size for f in ledger.settings.data_dir.glob("log.db*"))


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
    parser.add_argument(
        "--store",
        action="append",
        help="A postgresql:// URL: a column for a fresh schema in it (dropped afterwards), "
        "beside the SQLite column that is always measured; repeat for more.",
    )
    parser.add_argument("--dir", type=Path, default=None, help="Scratch directory.")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="trailseal-bench-", dir=args.dir))
    try:
        run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fresh(store: str, n: int) -> str | None:
    """The store URL for column ``n``: SQLite in the data directory, or a new schema."""
    if not is_postgres(store):
        return None
    schema = f"bench_{n}_{random.Random().randrange(16**8):08x}"
    base = store.split("?schema=", maxsplit=1)[0].split("&schema=", maxsplit=1)[0]
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}schema={schema}"


def measure(args: argparse.Namespace, lines: list[bytes], scratch: Path, store: str | None) -> dict:
    """Every figure of one store's column."""
    found: dict = {}
    say(f"[{store or 'sqlite'}] floor ...")
    if store is None:
        found["floor"] = floor(lines, scratch / "floor.db")
    else:
        found["floor"] = postgres_floor(lines, store)
    say(f"[{store or 'sqlite'}] trailseal bulk append ...")
    ledger = Ledger.init(scratch / "log", origin="bench.example/log", store=store)
    step = max(len(lines) // 10, BATCH)
    found["append"] = bulk_append(
        lines, ledger, lambda done: done % step == 0 and say(f"  {done:,}")
    )
    say(f"[{store or 'sqlite'}] per-event append on {args.event_path_events:,} events ...")
    second_store = _fresh(store, 99) if store else None
    with Ledger.init(scratch / "log2", origin="bench.example/log2", store=second_store) as second:
        found["event"] = event_append(lines[: args.event_path_events], second)
    if second_store:
        drop_postgres_log(second_store)
    found["disk"] = disk_bytes(ledger) / len(lines)
    say(f"[{store or 'sqlite'}] verify ...")
    started = time.perf_counter()
    report = ledger.verify()
    found["verify"] = report.size / (time.perf_counter() - started)
    found["size"] = report.size
    rng = random.Random(1)
    latencies = []
    for _ in range(args.proofs):
        index = rng.randrange(report.size)
        started = time.perf_counter()
        ledger.prove_inclusion(index, report.size)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    found["p50"] = latencies[len(latencies) // 2] * 1e6
    found["p99"] = latencies[int(len(latencies) * 0.99)] * 1e6
    say(f"[{store or 'sqlite'}] search index catch-up ...")
    started = time.perf_counter()
    indexed = catch_up(ledger.store)
    found["index"] = indexed / (time.perf_counter() - started)
    found["with_index"] = disk_bytes(ledger) / len(lines)
    ledger.close()
    return found


def run(args: argparse.Namespace, scratch: Path) -> None:
    # SQLite, the embedded default, is always measured; each --store URL adds a column.
    stores = ["sqlite", *(store for store in args.store or [] if is_postgres(store))]
    say(f"generating {args.events:,} events ...")
    lines = [orjson.dumps(event) for event in sample_events(args.events)]
    sample = [orjson.loads(line) for line in lines[:: max(1, len(lines) // 20_000)]]
    canonical_size = statistics.fmean(len(canonical(event)) for event in sample)
    line_size = statistics.fmean(len(line) for line in lines)
    say(f"naive baseline on {args.naive_events:,} events ...")
    naive_rate = naive(lines[: args.naive_events], scratch / "naive.db")

    columns: list[tuple[str, dict]] = []
    for n, store in enumerate(stores):
        url = _fresh(store, n)
        place = scratch / f"store-{n}"
        place.mkdir()
        try:
            columns.append(("PostgreSQL" if url else "SQLite", measure(args, lines, place, url)))
        finally:
            if url:
                drop_postgres_log(url)
    print_table(args, columns, naive_rate, line_size, canonical_size)


def print_table(
    args: argparse.Namespace,
    columns: list[tuple[str, dict]],
    naive_rate: float,
    line_size: float,
    canonical_size: float,
) -> None:
    def each(render: Callable[[dict], str]) -> list[str]:
        return [render(found) for _, found in columns]

    def ratio(found: dict) -> str:
        return f"{found['append']:,.0f}/s = {found['append'] / found['floor']:.2f}x floor"

    rows = [
        ["events", *each(lambda _: f"{args.events:,}"), ""],
        [
            "event size: JSON line / canonical",
            *each(lambda _: f"{line_size:.0f} B / {canonical_size:.0f} B"),
            "",
        ],
        [
            f"naive: stdlib json, SQLite txn/event ({args.naive_events:,})",
            *each(lambda _: f"{naive_rate:,.0f}/s"),
            "",
        ],
        ["floor: parse + insert as-is, 10k/txn", *each(lambda f: f"{f['floor']:,.0f}/s"), ""],
        [
            "trailseal durable append, bulk path",
            *each(lambda f: f"{ratio(f)} {_verdict(f['append'] >= f['floor'] / 2)}"),
            ">= 0.5x its floor",
        ],
        [
            "  and against naive",
            *each(lambda f: f"{f['append'] / naive_rate:.0f}x naive"),
            ">= 50x naive",
        ],
        [
            f"  per-event API, 1 thread ({args.event_path_events:,})",
            *each(lambda f: f"{f['event']:,.0f}/s"),
            "",
        ],
        [
            "trailseal verify",
            *each(lambda f: f"{f['verify']:,.0f}/s {_verdict(f['verify'] >= 3e5)}"),
            ">= 300,000/s",
        ],
        [
            "inclusion proof: p50 / p99",
            *each(lambda f: f"{f['p50']:.0f} / {f['p99']:.0f} us {_verdict(f['p99'] < 1000)}"),
            "p99 < 1,000 us",
        ],
        [
            "on disk per event (all but search index)",
            *each(lambda f: f"{f['disk']:.0f} B = {f['disk'] / canonical_size:.2f}x canonical"),
            "<= 1.5x (SQLite)",
        ],
        ["search index catch-up (after appends)", *each(lambda f: f"{f['index']:,.0f}/s"), ""],
        [
            "on disk per event with search index",
            *each(lambda f: f"{f['with_index']:.0f} B = {f['with_index'] / canonical_size:.2f}x"),
            "",
        ],
    ]
    header = ["measure", *(name for name, _ in columns), "target"]
    width = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)))
    print("-+-".join("-" * w for w in width))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, width, strict=True)))


def _verdict(ok: bool) -> str:
    return "(met)" if ok else "(MISSED)"


if __name__ == "__main__":
    main()
