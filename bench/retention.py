"""Benchmark retention on a log of 10,000,000 entries received over 30 months, under one
policy that keeps entries hot for 3 months: a run seals 90% of the log into the cold
tier (a local folder of Parquet segments) on the embedded SQLite store.

    python bench/retention.py                           # 10M entries: ~30 min to build
    python bench/retention.py --entries 1000000         # a quicker look
    python bench/retention.py --keep /var/tmp/rlog      # keep the built (unsealed) log

It prints, in one run:

- **sealing throughput**: entries sealed per second by `retention run` (reading each entry,
  writing zstd Parquet, storing and reading it back, signing its manifest, dropping the
  bytes from the hot store), beside the bulk append rate of the same log measured while
  building it;
- **bytes per entry**: the hot store (the SQLite file's used pages, search index
  included) per entry before the run, beside the cold tier's segment bytes per sealed
  entry (target: cold at most one fifth of hot), and what the hot store still holds per
  entry after it (hashes, tree nodes, search rows, and the hot 10%);
- **record-history**: the report over one record's whole history, for records whose
  entries are all cold, after the run (a fresh process: no segment footers cached yet,
  then warm), beside the same reports on the same log before the run, all hot
  (target: under 1 s);
- **verify**: a full verification after the run (every segment read whole and every
  cold entry checked), beside the same before it.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _logs import build, say
from trailseal.app import App, Caller
from trailseal.ledger import SearchFilter
from trailseal.query import parse

START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=913)  # 30 months
AT = START + SPAN + timedelta(hours=1)
POLICY = "policies:\n  - name: everything\n    total: 4 years\n    hot: 3 months\n"
TARGET_RATIO, TARGET_HISTORY = 5.0, 1.0


def used_bytes(data: Path) -> int:
    """The SQLite file's pages in use (free pages are reused by later appends)."""
    db = sqlite3.connect(data / "log.db")
    try:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    return int((pages - free) * size)


def records(data: Path, count: int, below: int) -> list[str]:
    """``count`` patient records whose every entry lies below index ``below`` (cold)."""
    rng = random.Random(5)
    chosen: list[str] = []
    with App.open(data) as app:
        tried = 0
        while len(chosen) < count and tried < 5000:
            tried += 1
            record = f"patient/p-{rng.randint(1, 200_000)}"
            query = SearchFilter(where=parse(f"resource:{record}").root, limit=10_000)
            found = [view.index for view in app.ledger.find(query, details=False)]
            if found and max(found) < below:
                chosen.append(record)
    return chosen


def history_times(data: Path, chosen: list[str]) -> tuple[float, float, float, int]:
    """(first report's seconds in a fresh process, median, p95, entries per report)."""
    times, cited = [], 0
    with App.open(data) as app:
        auditor = Caller.host("auditor")
        for record in chosen:
            began = time.perf_counter()
            report = app.reports.produce(auditor, "record-history", {"resource": record})
            times.append(time.perf_counter() - began)
            cited += len(report.cited)
    ordered = sorted(times[1:]) or times
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return times[0], statistics.median(ordered), p95, cited // len(chosen)


def verify_seconds(data: Path) -> float:
    """A full `verify` (every entry, hot and cold, every segment and receipt)."""
    with App.open(data) as app:
        began = time.perf_counter()
        app.ledger.verify()
        return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--records", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="build the log here once, and reuse it")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trailseal-retention-"))
    built = args.keep or (work / "built")
    if not (built / "log.db").exists():
        say(f"building {args.entries:,} entries received over 30 months ...")
        append_rate = build(
            built,
            args.entries,
            start=START,
            span=SPAN,
            seed=3,
            origin="bench/retention",
            received=True,
        )
        (built / "retention.yaml").write_text(POLICY)
    else:  # the log was built earlier: measure the baseline now, on a fresh log
        say("measuring the bulk append rate on a fresh log of 300,000 entries ...")
        baseline = work / "baseline"
        append_rate = build(
            baseline, 300_000, start=START, span=SPAN, seed=4, origin="bench/b", received=True
        )
        shutil.rmtree(baseline)
    data = work / "data"
    shutil.copytree(built, data)
    try:
        with App.open(data) as app:
            size = app.ledger.size()
            cold_edge = app.ledger.first_received("2026-04-01T00:00:00.000000Z")
        hot_bytes = used_bytes(data) / size
        chosen = records(data, args.records, cold_edge)
        say(f"{len(chosen)} records with only cold entries; their reports, all hot ...")
        before = history_times(data, chosen)
        say("verifying, all hot ...")
        verify_before = verify_seconds(data)

        say("running retention (sealing about 90% of the log) ...")
        with App.open(data) as app:
            app.ledger.clock = lambda: AT.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            began = time.perf_counter()
            done = app.retention.run(Caller.host("privacy"), AT, progress=None)
            sealing = time.perf_counter() - began
        cold_bytes = sum(p.stat().st_size for p in (data / "cold").glob("*.parquet"))
        after_hot = used_bytes(data) / size
        say("the same reports, now cold ...")
        after = history_times(data, chosen)
        say("verifying, 91% cold ...")
        verify_after = verify_seconds(data)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    seal_rate = done.sealed / sealing
    per_cold = cold_bytes / max(done.sealed, 1)
    print(
        f"\nretention on {size:,} entries; {done.sealed:,} sealed into "
        f"{len(done.segments)} segments ({done.sealed / size:.0%} of the log)\n"
    )
    print(f"{'measure':<46} {'value':>14} {'baseline':>14}  target")
    print(f"{'sealing (entries/s) vs bulk append':<46} {seal_rate:>14,.0f} {append_rate:>14,.0f}")
    print(
        f"{'bytes/entry: cold segment vs hot store':<46} {per_cold:>14,.0f} "
        f"{hot_bytes:>14,.0f}  cold <= hot/5: "
        f"{'met' if per_cold * TARGET_RATIO <= hot_bytes else 'MISSED'} "
        f"(1/{hot_bytes / per_cold:.1f})"
    )
    print(
        f"{'bytes/entry left in the hot store after':<46} {after_hot:>14,.0f} {hot_bytes:>14,.0f}"
    )
    print(
        f"{'record-history, first in a fresh process (s)':<46} {after[0]:>14.3f} {before[0]:>14.3f}"
    )
    print(f"{'record-history, median (s)':<46} {after[1]:>14.3f} {before[1]:>14.3f}")
    print(
        f"{'record-history, p95 (s)':<46} {after[2]:>14.3f} {before[2]:>14.3f}  "
        f"< {TARGET_HISTORY:.0f} s: {'met' if after[2] < TARGET_HISTORY else 'MISSED'}"
    )
    print(f"{'entries per record-history report':<46} {after[3]:>14,} {before[3]:>14,}")
    print(f"{'verify, the whole log (s)':<46} {verify_after:>14.1f} {verify_before:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
