"""Retention runs: seven years of a log under mixed policies, sealed into the cold tier and
purged, held against an independent computation; proofs, consistency, verification and
reports across hot and cold; damaged segments; and a run killed at every step."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from dateutil.relativedelta import relativedelta

from conftest import run_cli
from trailseal.app import App, Caller
from trailseal.errors import PurgedError, TamperError
from trailseal.events import parse_event
from trailseal.ledger import Ledger
from trailseal.ledger.tiers import ranges
from trailseal.proofs import verify_consistency, verify_inclusion
from trailseal.testing import sample_events

START = datetime(2019, 11, 20, 9, 0, tzinfo=UTC)
BATCHES = 183  # one every 14 days: seven years
AT = START + timedelta(days=14 * BATCHES)  # the moment the run happens
POLICIES = """\
policies:
  - name: phi
    preset: hipaa              # 6 years, all hot
    match: "resource:patient"
  - name: cardholder
    preset: pci-dss            # 1 year, the last 3 months hot
    match: "tenant:tenant-3"
  - name: approvals
    preset: part11             # 2 years after the document's retirement
    total: 2 years
    hot: 6 months
  - name: rest
    total: 1 year
    hot: 3 months
    match: "-resource:patient"
"""
RETIRED = {"d-0", "d-1"}  # retired at batch 40; d-0 and d-1 have no events after it


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build(data: Path) -> None:
    """Seven years of sample events, each batch received at its own (test) time."""
    with Ledger.init(data, origin="test/retention-run") as led:
        events = sample_events(BATCHES * 8, seed=13)
        for batch in range(BATCHES):
            moment = START + timedelta(days=14 * batch)
            led.clock = lambda moment=moment: _stamp(moment)
            found = []
            for _ in range(8):
                event = next(events)
                event["time"] = _stamp(moment)
                found.append(event)
            doc = f"d-{batch % 12}"
            if not (doc in RETIRED and batch >= 40):
                found.append(_document(batch, "document.approve", doc, moment))
            if batch == 40:
                found += [_document(batch, "document.retire", d, moment) for d in sorted(RETIRED)]
            led.append([parse_event(orjson.dumps(e)) for e in found])
    (data / "retention.yaml").write_text(POLICIES)


def _document(batch: int, action: str, doc: str, moment: datetime) -> dict:
    return {
        "id": f"doc-{batch}-{action}-{doc}",
        "time": _stamp(moment),
        "actor": {"id": "u-qa", "type": "user"},
        "action": action,
        "resource": {"type": "document", "id": doc},
        "outcome": {"result": "success"},
    }


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def expected(entries: list[dict], at: datetime) -> tuple[set[int], set[int]]:
    """(purged, cold) after a run at ``at``, decided entry by entry with plain Python and
    dateutil's calendar arithmetic (not trailseal's), under the holds the test places."""
    retired = {
        e["event"]["resource"]["id"]: _parse(e["received_at"])
        for e in entries
        if e["event"]["action"] == "document.retire"
    }
    purged, cold = set(), set()
    for entry in entries:
        event, received = entry["event"], _parse(entry["received_at"])
        kind = (event.get("resource") or {}).get("type")
        tenant = event["actor"].get("tenant") or (event.get("resource") or {}).get("tenant")
        if kind == "document":
            doc = event["resource"]["id"]
            past = doc in retired and retired[doc] + relativedelta(years=2) <= at
            hot = relativedelta(months=6)
        elif kind == "patient":
            past, hot = received < at - relativedelta(years=6), None
        else:  # cardholder (tenant-3) and rest: both a year, the last 3 months hot
            past, hot = received < at - relativedelta(years=1), relativedelta(months=3)
        frozen = event["actor"]["id"].startswith("u-7")  # that hold also stops the move
        held = tenant == "tenant-5" or frozen  # every hold stops the purge
        if past and not held:
            purged.add(entry["index"])
        elif hot is not None and received < at - hot and not frozen:
            cold.add(entry["index"])
    return purged, cold


def _tiers(data: Path) -> tuple[set[int], set[int], set[int]]:
    """(purged, cold, hot) read straight from the SQLite file."""
    db = sqlite3.connect(data / "log.db")
    try:
        purged = {row[0] for row in db.execute("SELECT idx FROM purged")}
        cold = {row[0] for row in db.execute("SELECT idx FROM cold")}
        hot = {row[0] for row in db.execute("SELECT idx FROM entries WHERE entry != x''")}
    finally:
        db.close()
    return purged, cold, hot


@pytest.fixture(scope="module")
def seven_years(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("seven") / "data"
    build(data)
    with App.open(data) as app:
        privacy = Caller.host("privacy")
        app.retention.hold(privacy, "tenant:tenant-5", "matter 2026-114")
        app.retention.hold(privacy, "actor:u-7*", "HR case 88", stops_cold=True)
    return data


def _report(app: App) -> tuple[object, object, set[int]]:
    found = app.reports.produce(
        Caller.host("auditor"),
        "entries",
        {
            "query": "resource:document",
            "from": _stamp(AT - relativedelta(years=3)),
            "to": _stamp(AT),
        },
    )
    return found.summary, found.sections, found.cited


def test_a_run_over_seven_years_moves_and_purges_exactly_what_the_policies_say(
    seven_years: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        app.ledger.catch_up()
        size = app.ledger.size()
        entries = [app.ledger.get(i).entry for i in range(size)]
        checkpoints = app.ledger.store.checkpoints()
        summary, sections, cited = _report(app)
        purge, cold = expected(entries, AT)
        assert purge
        assert cold
        assert len(purge | cold) < size
        assert cited & cold
        assert cited - cold
        assert not cited & purge

        done = app.retention.run(Caller.host("privacy"), AT)
        assert done.purged == len(purge)
        assert done.sealed == len(cold)
        assert done.held > 0

    purged, in_cold, hot = _tiers(data)
    assert purged == purge
    assert in_cold == cold
    assert {i for i in hot if i < size} == set(range(size)) - purge - cold
    assert len(hot) > len({i for i in hot if i < size})  # the run's own entries, appended
    with App.open(data) as app:
        led = app.ledger
        report = led.verify()
        assert report.tiers is not None
        assert report.tiers.purged_ranges == ranges(sorted(purge))
        assert report.tiers.cold == len(cold)
        latest = led.size()
        root = led.root(latest)
        for index in sorted(set(range(size)) - purge):
            proof = led.prove_inclusion(index, latest)
            stored = led.get(index)  # a cold one is read from its segment
            assert stored.entry == entries[index]
            verify_inclusion(index, latest, proof.leaf_hash, proof.proof, root)
        for index in sorted(purge)[:50]:  # a purged one still has its leaf in the tree
            proof = led.prove_inclusion(index, latest)
            verify_inclusion(index, latest, proof.leaf_hash, proof.proof, root)
        for old_size, _note in checkpoints:
            proof = led.prove_consistency(old_size, latest)
            verify_consistency(old_size, latest, led.root(old_size), root, proof.proof)
        assert _report(app) == (summary, sections, cited)
        again = app.retention.run(Caller.host("privacy"), AT)
        assert (again.sealed, again.purged) == (0, 0)  # nothing is done twice


def test_leaf_hashes_of_purged_entries_are_listed_in_a_signed_receipt(
    seven_years: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        leaves = {i: app.ledger.get(i).leaf_hash for i in range(app.ledger.size())}
        app.retention.run(Caller.host("privacy"), AT)
        (receipt,) = app.ledger.store.receipts()
        body = json.loads(receipt.body)
        for start, end, hashes in body["ranges"]:
            for index, leaf in zip(range(start, end), hashes, strict=True):
                assert leaves[index].hex() == leaf
        assert body["run_by"] == "host:privacy"
        assert "\n\n\u2014 " in receipt.signature  # a signed note: text, blank line, signature
        with pytest.raises(PurgedError, match="purged under its retention policy"):
            app.ledger.get(int(body["ranges"][0][0]))
        (purge,) = app.ledger.search(_query("action:retention.purge"))
        assert purge.entry["event"]["resource"] == {
            "type": "receipt",
            "id": "1",
            "count": body["count"],
        }
        assert purge.entry["event"]["actor"]["id"] == "host:privacy"
        assert "under" in purge.entry["event"]["outcome"]["reason"]  # which policies


@pytest.mark.parametrize("damage", ["changed", "deleted", "replaced"])
def test_verify_detects_a_damaged_segment(seven_years: Path, tmp_path: Path, damage: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        app.retention.run(Caller.host("privacy"), AT)
    segments = sorted((data / "cold").glob("*.parquet"))
    first, second = segments[0], segments[1]
    for path in (first, second):
        path.chmod(0o644)
    if damage == "changed":
        raw = bytearray(first.read_bytes())
        raw[len(raw) // 3] ^= 0xFF
        first.write_bytes(bytes(raw))
    elif damage == "deleted":
        first.unlink()
    else:
        first.write_bytes(second.read_bytes())
    with App.open(data) as app, pytest.raises(TamperError, match="segment"):
        app.ledger.verify()
    result = run_cli("verify", "--data", str(data))
    assert result.returncode != 0
    assert b"segment" in result.stderr


KILL = """
import os, signal, sys
from datetime import datetime
from trailseal.app import App, Caller

data, step, at = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])

def fault(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)

with App.open(data) as app:
    app.retention.run(Caller.host("privacy"), at, fault=fault)
"""
STEPS = [
    "seal:write",
    "seal:stored",
    "seal:recorded",
    "reseal:write",
    "purge:receipt",
    "purge:done",
    "purge:recorded",
    "retire:delete",
]
LATER = AT + relativedelta(months=7)  # purges reach into what the first run sealed


@pytest.fixture(scope="module")
def sealed_once(seven_years: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seven years after a first run, so that a later run reseals, purges cold
    entries and retires segments."""
    data = tmp_path_factory.mktemp("sealed") / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        app.retention.run(Caller.host("privacy"), AT)
    return data


@pytest.fixture(scope="module")
def uninterrupted(sealed_once: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    data = tmp_path_factory.mktemp("whole") / "data"
    shutil.copytree(sealed_once, data)
    with App.open(data) as app:
        done = app.retention.run(Caller.host("privacy"), LATER)
    assert done.resealed
    assert done.deleted
    purged, cold, hot = _tiers(data)
    before = len(hot | cold | purged) - done.recovered - 2  # the run's seal and purge records
    return purged, {i for i in cold if i < before}, before


@pytest.mark.parametrize("step", STEPS)
def test_a_run_killed_at_any_step_verifies_and_the_next_run_finishes(
    sealed_once: Path, uninterrupted: tuple, tmp_path: Path, step: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(sealed_once, data)
    killed = subprocess.run(
        [sys.executable, "-c", KILL, str(data), step, LATER.isoformat()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with App.open(data) as app:
        app.ledger.verify()  # the state a kill leaves verifies
        app.retention.run(Caller.host("privacy"), LATER)
        app.ledger.verify()
        purged, cold, _hot = _tiers(data)
        # The same entries purged and sealed; only the run's own records may differ in
        # where they are (a record an interrupted run left to the next is older by then).
        assert (purged, {i for i in cold if i < uninterrupted[2]}) == uninterrupted[:2]
        receipts = {str(r.id) for r in app.ledger.store.receipts()}
        app.ledger.catch_up()
        recorded = {
            v.entry["event"]["resource"]["id"]
            for v in app.ledger.search(_query("action:retention.purge"))
        }
        assert receipts <= recorded  # every purge is an entry, even one a kill interrupted
    files = {p.name for p in (data / "cold").glob("*.parquet")}
    with App.open(data) as app:
        live = {
            s.name + ".parquet"
            for s in app.ledger.store.segments()
            if s.id in app.ledger.store.cold_counts()
        }
    assert live <= files  # nothing half-sealed: every live segment is whole and present


def _query(text: str):
    from trailseal.ledger import SearchFilter  # noqa: PLC0415
    from trailseal.query import parse  # noqa: PLC0415

    return SearchFilter(where=parse(text).root, limit=10_000)


def test_the_cli_runs_retention(seven_years: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    result = run_cli("retention", "run", "--at", AT.isoformat(), "--json", "--data", str(data))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["purged"] > 0
    assert found["sealed"] > 0
    assert b"sealed" in result.stderr
    checked = run_cli("verify", "--data", str(data), "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["purged_ranges"]
    assert report["cold_segments"] > 0


def test_duckdb_reads_a_segment_directly(seven_years: Path, tmp_path: Path) -> None:
    """The docs' DuckDB example, run as written there."""
    duckdb = pytest.importorskip("duckdb")
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        app.retention.run(Caller.host("privacy"), AT)
    rows = duckdb.sql(
        f"SELECT action, count(*) AS n FROM read_parquet('{data}/cold/*.parquet') "
        "GROUP BY action ORDER BY n DESC"
    ).fetchall()
    _purged, cold, _hot = _tiers(data)
    assert sum(n for _, n in rows) == len(cold)
    (actor,) = duckdb.sql(
        f"SELECT json_extract_string(decode(entry), '$.event.actor.id') AS actor "
        f"FROM read_parquet('{data}/cold/*.parquet') LIMIT 1"
    ).fetchall()
    assert actor[0].startswith("u-")
