"""Benchmark the reports on a large log: a year of hospital traffic (10,000,000 entries by
default) on the embedded SQLite store.

    python bench/reports.py                       # 10M entries: ~30 min to build, kept
    python bench/reports.py --entries 1000000     # a smaller log
    python bench/reports.py --keep /var/tmp/rlog  # build once, measure again later

Prints, in one run, each measure beside its baseline measured on the same log:

- ``record-history`` of one patient (target < 100 ms), beside the bare SQL that finds
  the same entries in the search index and reads them (the floor of the work);
- ``hipaa-access`` for one month (target < 60 s), beside reading and decoding every
  entry of that month with no report logic (the floor);
- a search by actor and a week's time range (target < 100 ms), beside the bare SQL;
- bundle verification in entries per second, beside hashing the same entries and
  checking their inclusion proofs alone (without the zip, the manifest and the files).

Each timed operation runs five times; the median is shown. Reports run through the
application layer, as the CLI does (so each is recorded in the log).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from _logs import build, say
from trailseal.app import App, Caller, search_filter
from trailseal.events.canonical import canonical
from trailseal.proofs import leaf_hash, verify_inclusion
from trailseal.reports import verify_bundle
from trailseal.reports.bundle import parse_tlog_proof

HOST = Caller.host("bench")
YEAR = timedelta(days=365)
START = datetime(2026, 1, 1, tzinfo=UTC)


def timed(work: Callable[[], object], runs: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _sql(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{data / 'log.db'}?mode=ro", uri=True)


def _decoded(db: sqlite3.Connection, where: str, params: tuple[str, ...]) -> Iterator[object]:
    """The baseline: the entries the search index finds for ``where``, read and decoded
    with no trailseal code in the way."""
    found = db.execute(
        "SELECT e.entry FROM search_index s JOIN entries e ON e.idx = s.idx "
        f"WHERE {where} ORDER BY s.idx",
        params,
    )
    return (orjson.loads(row[0]) for row in found)


def measure(data: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    db = _sql(data)
    with App.open(data) as app:
        app.ledger.catch_up()
        # A patient with a typical history: the most common id among a sample.
        (patient,) = db.execute(
            "SELECT resource_id FROM search_index WHERE resource_type = 'patient' "
            "AND idx < 200000 GROUP BY resource_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()

        def history() -> object:
            return app.reports.produce(HOST, "record-history", {"resource": f"patient/{patient}"})

        def history_floor() -> object:
            return list(
                _decoded(db, "s.resource_type = 'patient' AND s.resource_id = ?", (patient,))
            )

        seconds, report = timed(history)
        floor, found = timed(history_floor)
        rows.append(
            (
                f"record-history, one patient ({len(found)} entries)",  # type: ignore[arg-type]
                f"{seconds * 1000:.1f} ms",
                f"{floor * 1000:.1f} ms (SQL + decode)",
                "< 100 ms",
            )
        )
        start, end = "2026-06-01T00:00:00.000000Z", "2026-07-01T00:00:00.000000Z"

        def hipaa() -> object:
            return app.reports.produce(HOST, "hipaa-access", {"period": "2026-06"})

        def month_floor() -> object:
            return sum(1 for _ in _decoded(db, "s.time >= ? AND s.time < ?", (start, end)))

        seconds, report = timed(hipaa, runs=3)
        floor, month = timed(month_floor, runs=3)
        accesses = dict(report.summary)["PHI accesses"]  # type: ignore[attr-defined]
        rows.append(
            (
                f"hipaa-access, one month ({month:,} entries, {accesses:,} PHI)",
                f"{seconds:.1f} s",
                f"{floor:.1f} s (read + decode the month)",
                "< 60 s",
            )
        )
        week = ("2026-09-01T00:00:00.000000Z", "2026-09-08T00:00:00.000000Z")
        (actor,) = db.execute(  # someone busy that week
            "SELECT actor FROM search_index WHERE time >= ? AND time < ? GROUP BY actor "
            "ORDER BY count(*) DESC LIMIT 1",
            week,
        ).fetchone()

        def search() -> object:
            query = search_filter(q=f"actor:{actor} time:2026-09-01..2026-09-07", limit=1000)
            return app.entries.search(HOST, query)

        def search_floor() -> object:
            return list(_decoded(db, "s.actor = ? AND s.time >= ? AND s.time < ?", (actor, *week)))

        seconds, found = timed(search)
        floor, _ = timed(search_floor)
        rows.append(
            (
                f"search actor + a week ({len(found)} entries)",  # type: ignore[arg-type]
                f"{seconds * 1000:.1f} ms",
                f"{floor * 1000:.1f} ms (SQL + decode)",
                "< 100 ms",
            )
        )
        say("building a bundle of a day's patient updates ...")
        bundle = app.reports.export_bundle(HOST, "action:record.update time:2026-03-02..2026-03-04")
    db.close()
    seconds, checked = timed(lambda: verify_bundle(bundle, app.verifier), runs=3)
    entries = checked.entries  # type: ignore[attr-defined]
    floor, _ = timed(lambda: _proofs_alone(bundle), runs=3)
    rows.append(
        (
            f"verify-bundle ({entries:,} entries, {len(bundle) / 2**20:.1f} MiB)",
            f"{entries / seconds:,.0f} entries/s",
            f"{entries / floor:,.0f} entries/s (proofs alone)",
            "",
        )
    )
    return rows


def _proofs_alone(bundle: bytes) -> None:
    import io  # noqa: PLC0415
    import zipfile  # noqa: PLC0415

    from trailseal.checkpoints import Checkpoint  # noqa: PLC0415

    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    note = files["checkpoint"].decode()
    checkpoint = Checkpoint.parse_text(note.split("\n\n")[0] + "\n")
    for line in files["entries.jsonl"].splitlines():
        entry = orjson.loads(line)["entry"]
        index = entry["index"]
        _, path, _ = parse_tlog_proof(files[f"proofs/{index}.tlog-proof"], "p")
        verify_inclusion(index, checkpoint.size, leaf_hash(canonical(entry)), path, checkpoint.root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, help="Build the log here once, and reuse it.")
    args = parser.parse_args()
    scratch = None
    if args.keep:
        data = args.keep
    else:
        scratch = Path(tempfile.mkdtemp(prefix="trailseal-reports-"))
        data = scratch / "data"
    try:
        if not (data / "log.db").exists():
            say(f"building a year of {args.entries:,} entries in {data} ...")
            build(
                data,
                args.entries,
                start=START,
                span=YEAR,
                seed=11,
                origin="bench.example/reports",
            )
        rows = measure(data)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    header = ("measure", "trailseal", "baseline (same run)", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
