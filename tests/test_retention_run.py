"""Retention runs: seven years of a log under mixed policies, sealed into the cold tier and
purged, held against an independent computation; proofs, consistency, verification and
reports across hot and cold; damaged segments; and a run killed at every step."""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from backends import Backend
from conftest import run_cli
from trailseal.app import App, Caller
from trailseal.checkpoints import Verifier, open_note
from trailseal.errors import BusyError, PurgedError, TamperError
from trailseal.events import parse_event
from trailseal.ledger import Ledger
from trailseal.ledger.tiers import ranges
from trailseal.proofs import verify_consistency, verify_inclusion
from trailseal.storage.segments import ColdStorageError
from trailseal.testing import ServiceProcess, sample_events

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


def build(data: Path, store: str | None = None) -> None:
    """Seven years of sample events, each batch received at its own (test) time."""
    with Ledger.init(data, origin="test/retention-run", store=store) as led:
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


def _run(app: App, at: datetime, **options: Any) -> Any:
    """A run at ``at``, the log's clock set to it (a run is never dated after now)."""
    app.ledger.clock = lambda: _stamp(at)
    return app.retention.run(Caller.host("privacy"), at, **options)


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
        app.ledger.clock = lambda: _stamp(AT - timedelta(days=1))
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

        done = _run(app, AT)
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
        again = _run(app, AT)
        assert (again.sealed, again.purged) == (0, 0)  # nothing is done twice
        after = app.retention.plan(Caller.host("auditor"), AT)
        assert sum(p.in_cold for p in after.policies) == len(cold)
        assert all(p.cold - p.in_cold == 0 for p in after.policies)  # nothing left to seal
        assert sum(p.purge for p in after.policies) == 0


def test_leaf_hashes_of_purged_entries_are_listed_in_a_signed_receipt(
    seven_years: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        leaves = {i: app.ledger.get(i).leaf_hash for i in range(app.ledger.size())}
        _run(app, AT)
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


def test_both_backends_seal_purge_and_refuse_anything_else(
    backend: Backend, tmp_path: Path
) -> None:
    """The same run on the real PostgreSQL as on SQLite; and the store's own guards let
    an entry's bytes go only for a recorded seal or purge."""
    data = tmp_path / "data"
    build(data, backend.store(data))
    with App.open(data) as app:
        app.ledger.clock = lambda: _stamp(AT - timedelta(days=1))
        app.retention.hold(Caller.host("privacy"), "tenant:tenant-5", "matter")
        app.retention.hold(Caller.host("privacy"), "actor:u-7*", "case", stops_cold=True)
        size = app.ledger.size()
        entries = [app.ledger.get(i).entry for i in range(size)]
        purge, cold = expected(entries, AT)
        _run(app, AT)
        assert {i for (i,) in backend.query(data, "SELECT idx FROM purged")} == purge
        assert {i for (i,) in backend.query(data, "SELECT idx FROM cold")} == cold
        assert app.ledger.verify().tiers.purged_ranges == ranges(sorted(purge))  # type: ignore[union-attr]
        some_cold = min(cold)
        assert app.ledger.get(some_cold).entry == entries[some_cold]
    hot = min(set(range(size)) - purge - cold)
    empty = backend.blob("''")
    for statement in (
        f"UPDATE entries SET entry = {empty} WHERE idx = {hot}",
        f"DELETE FROM search_index WHERE idx = {hot}",
        f"UPDATE cold SET segment = 0 WHERE idx = {some_cold}",
        f"DELETE FROM cold WHERE idx = {some_cold}",
        "DELETE FROM purged",
        "DELETE FROM receipts",
        "UPDATE segments SET manifest = '{}'",
    ):
        with pytest.raises(Exception, match="trailseal"):
            backend.guarded(data, statement)


@pytest.mark.parametrize("damage", ["changed", "deleted", "replaced"])
def test_verify_detects_a_damaged_segment(seven_years: Path, tmp_path: Path, damage: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        _run(app, AT)
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
    if damage != "changed":  # a run's look at size and presence sees these two
        with App.open(data) as app, pytest.raises(ColdStorageError, match="nothing was changed"):
            _run(app, LATER)
    result = run_cli("verify", "--data", str(data))
    assert result.returncode != 0
    assert b"segment" in result.stderr


KILL = """
import os, signal, sys
from datetime import datetime
from trailseal.app import App, Caller
from trailseal.checkpoints import Verifier, open_note

data, step = sys.argv[1], sys.argv[2]
at = datetime.fromisoformat(sys.argv[3].replace("Z", "+00:00"))

def fault(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)

with App.open(data) as app:
    app.ledger.clock = lambda: sys.argv[3]
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
        _run(app, AT)
    return data


@pytest.fixture(scope="module")
def uninterrupted(sealed_once: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    data = tmp_path_factory.mktemp("whole") / "data"
    shutil.copytree(sealed_once, data)
    with App.open(data) as app:
        done = _run(app, LATER)
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
        [sys.executable, "-c", KILL, str(data), step, _stamp(LATER)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with App.open(data) as app:
        app.ledger.verify()  # the state a kill leaves verifies
        _run(app, LATER)
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
        counts = app.ledger.store.cold_counts()
        live = {s.name + ".parquet" for s in app.ledger.store.segments() if s.id in counts}
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
    early = run_cli("retention", "run", "--at", "now+30d", "--data", str(data))
    assert early.returncode != 0
    assert b"cannot be dated after now" in early.stderr
    checked = run_cli("verify", "--data", str(data), "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["purged_ranges"]
    assert report["cold_segments"] > 0


def test_duckdb_reads_a_segment_directly(seven_years: Path, tmp_path: Path) -> None:
    """The docs' DuckDB example, run as written there."""
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        _run(app, AT)
    docs = (Path(__file__).parents[1] / "docs" / "retention.md").read_text()
    (block,) = re.findall(r"```sql\n(.*?)\n```", docs, flags=re.DOTALL)
    counts, by_record = (
        statement.replace("DATA/", f"{data}/")
        for statement in block.split(";")
        if statement.strip().strip("-")
    )
    _purged, cold, _hot = _tiers(data)
    rows = duckdb.sql(counts).fetchall()
    assert sum(n for _, n in rows) == len(cold)
    some = duckdb.sql(by_record.replace("'MRN-0001'", "resource_id")).fetchall()
    assert len(some) == len(cold)
    assert all(actor.startswith("u-") for _idx, actor in some)


# -- the cold tier in S3-compatible object storage --------------------------------------
# moto's server mode stands in for S3 (the real service cannot be reached from here): a
# real HTTP server on loopback that speaks the S3 API, Object Lock included. What it does
# not enforce (shortening a compliance-mode retention, a retain-until date in the past)
# trailseal guards itself; docs/retention.md says which.


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    import boto3  # noqa: PLC0415 - only where object storage is tested

    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(name, value)
    return boto3.client("s3")


def _bucket(s3: Any, *, locked: bool = True) -> str:
    name = f"trail-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
    return name


def _to_s3(seven_years: Path, tmp_path: Path, location: str) -> Path:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    (data / "retention.yaml").write_text(f"cold: {location}\n" + POLICIES)
    return data


def test_segments_go_to_object_storage_under_compliance_mode_object_lock(
    seven_years: Path, tmp_path: Path, s3: Any
) -> None:
    bucket = _bucket(s3)
    data = _to_s3(seven_years, tmp_path, f"s3://{bucket}/segments")
    with App.open(data) as app:
        entries = {i: app.ledger.get(i).entry for i in range(app.ledger.size())}
        done = _run(app, AT)
        assert done.sealed > 0
        for segment in app.ledger.store.segments():
            manifest = json.loads(segment.manifest)
            head = s3.head_object(Bucket=bucket, Key=f"segments/{segment.name}.parquet")
            assert head["ObjectLockMode"] == "COMPLIANCE"
            until = head["ObjectLockRetainUntilDate"].astimezone(UTC)
            assert until.replace(microsecond=0) == _parse(manifest["retain_until"]).replace(
                microsecond=0
            )
            assert until > AT
        assert app.ledger.verify().tiers.segments == len(done.segments)  # type: ignore[union-attr]
    _purged, cold, _hot = _tiers(data)
    with App.open(data) as app:  # a fresh process's cache: read back from the bucket
        for index in sorted(cold)[:20]:
            assert app.ledger.get(index).entry == entries[index]


def test_a_bucket_without_object_lock_refuses_and_nothing_changes(
    seven_years: Path, tmp_path: Path, s3: Any
) -> None:
    data = _to_s3(seven_years, tmp_path, f"s3://{_bucket(s3, locked=False)}/segments")
    with App.open(data) as app:
        with pytest.raises(ColdStorageError, match="refused to store"):
            _run(app, AT)
        app.ledger.verify()
    assert _tiers(data)[:2] == (set(), set())


def test_unreachable_object_storage_stops_the_run_and_nothing_changes(
    seven_years: Path, tmp_path: Path, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    del s3
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    data = _to_s3(seven_years, tmp_path, "s3://trail-nowhere/segments")
    with App.open(data) as app:
        with pytest.raises(ColdStorageError, match="cannot reach"):
            _run(app, AT)
        app.ledger.verify()
    assert _tiers(data)[:2] == (set(), set())


@pytest.mark.parametrize("damage", ["changed", "deleted"])
def test_verify_detects_a_segment_damaged_in_the_bucket(
    seven_years: Path, tmp_path: Path, s3: Any, damage: str
) -> None:
    bucket = _bucket(s3)
    data = _to_s3(seven_years, tmp_path, f"s3://{bucket}/segments")
    with App.open(data) as app:
        _run(app, AT)
        name = app.ledger.store.segments()[0].name
    key = f"segments/{name}.parquet"
    if damage == "changed":  # a newer version under the same name
        s3.put_object(Bucket=bucket, Key=key, Body=b"PAR1 not the segment PAR1")
    else:  # a delete marker hides it
        s3.delete_object(Bucket=bucket, Key=key)
    with App.open(data) as app, pytest.raises(TamperError, match=name):
        app.ledger.verify()
    with App.open(data) as app, pytest.raises(ColdStorageError, match=name):
        _run(app, LATER)


OLD_SQLITE = """
DROP TABLE segments; DROP TABLE cold; DROP TABLE purged; DROP TABLE receipts;
DROP TRIGGER entries_vacate_only; DROP TRIGGER entries_vacated_only;
DROP TRIGGER search_index_purge_only; DROP TRIGGER details_erase_only;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'trailseal: entries is append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'trailseal: entries is append-only'); END;
CREATE TRIGGER search_index_no_delete BEFORE DELETE ON search_index
BEGIN SELECT RAISE(ABORT, 'trailseal: search_index is append-only'); END;
CREATE TRIGGER details_erase_only BEFORE DELETE ON details
WHEN NOT EXISTS (SELECT 1 FROM erasures WHERE idx = OLD.idx)
BEGIN SELECT RAISE(ABORT, 'trailseal: a detail is removed only by a recorded erasure'); END;
"""
OLD_POSTGRES = """
DROP TABLE segments, cold, purged, receipts CASCADE;
DROP TRIGGER entries_vacate_only ON entries; DROP TRIGGER entries_no_delete ON entries;
DROP TRIGGER search_index_no_update ON search_index;
DROP TRIGGER search_index_purge_only ON search_index;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse();
CREATE TRIGGER search_index_append_only BEFORE UPDATE OR DELETE ON search_index
    FOR EACH ROW EXECUTE FUNCTION refuse();
"""


def test_a_log_made_before_retention_gains_it_at_open(backend: Backend, tmp_path: Path) -> None:
    """A log whose schema predates the cold tier (made by an older trailseal) gets its
    tables and guards the first time it is opened, and a run then works as on any."""
    data = tmp_path / "data"
    build(data, backend.store(data))
    if backend.name == "sqlite":
        db = sqlite3.connect(data / "log.db")
        db.executescript(OLD_SQLITE)
        db.close()
    else:
        backend.run(data, [(s, ()) for s in OLD_POSTGRES.split(";") if s.strip()])
    with App.open(data) as app:
        done = _run(app, AT)
        assert done.purged > 0
        app.ledger.verify()


def test_the_api_runs_retention_and_answers_gone_for_a_purged_entry(
    seven_years: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        _run(app, AT)
        (receipt,) = app.ledger.store.receipts()
        purged = json.loads(receipt.body)["ranges"][0][0]
    created = run_cli("principals", "create", "root", "--role", "admin", "--data", str(data))
    service = ServiceProcess(data, json.loads(created.stdout)["token"], ())
    service.start()
    try:
        privacy = service.principal("po", "privacy")
        auditor = service.principal("au", "auditor")
        with service.client(auditor) as http:
            gone = http.get(f"/v1/entries/{purged}")
            assert gone.status_code == 410, gone.text
            assert "purged" in gone.json()["detail"]
            assert http.post("/v1/retention/run").status_code == 403
            proof = http.get("/v1/proofs/inclusion", params={"index": purged})
            assert proof.status_code == 200, proof.text  # its proof remains
            (given,) = http.get("/v1/retention/receipts").json()["receipts"]
            assert json.loads(given["body"])["ranges"][0][0] == purged
        with service.client(privacy) as http:
            done = http.post("/v1/retention/run")
            assert done.status_code == 200, done.text
            assert set(done.json()) >= {"sealed", "purged", "receipts", "held"}
    finally:
        service.stop()


def test_serve_runs_retention_on_its_schedule(seven_years: Path, tmp_path: Path) -> None:
    """The schedule `serve` follows: a new schedule starts now, then runs when due."""
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    (data / "retention.yaml").write_text('schedule: "0 3 * * *"\n' + POLICIES)
    first = AT.replace(hour=1, minute=0)
    with App.open(data) as app:
        app.ledger.clock = lambda: _stamp(first + timedelta(days=1))
        assert app.retention.run_due(first) is None  # starts counting now
        assert app.retention.run_due(first + timedelta(hours=1)) is None  # 02:00: not yet
        done = app.retention.run_due(first + timedelta(hours=2, minutes=1))  # 03:01
        assert done is not None
        assert done.purged > 0
        assert app.retention.run_due(first + timedelta(hours=3)) is None  # ran today
    assert (data / "retention.state.json").exists()


@pytest.mark.parametrize(
    ("tamper", "kind"),
    [
        ("UPDATE entries SET entry = x'' WHERE idx = {hot}", "modified-entry"),
        ("UPDATE receipts SET body = replace(body, '\"count\"', '\"c0unt\"')", "forged-receipt"),
        ("INSERT INTO purged VALUES ({hot}, 1, '2020-01-01T00:00:00.000000Z')", "forged-receipt"),
        (
            "UPDATE segments SET manifest = replace(manifest, '\"rows\"', '\"r0ws\"')",
            "forged-manifest",
        ),
        ("DELETE FROM cold WHERE idx = {cold}", "modified-entry"),
    ],
)
def test_verify_names_tampering_with_what_retention_recorded(
    seven_years: Path, tmp_path: Path, tamper: str, kind: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        _run(app, AT)
    purged, cold, hot = _tiers(data)
    db = sqlite3.connect(data / "log.db")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute(tamper.format(hot=min(hot - purged - cold), cold=min(cold)))
    db.commit()
    db.close()
    with App.open(data) as app, pytest.raises(TamperError) as caught:
        app.ledger.verify()
    assert caught.value.kind == kind


MATCHES = ["resource:patient", "tenant:tenant-3", "action:record.*", "-resource:patient", None]
PERIODS = ["30 days", "6 months", "1 year", "2 years", "5 years"]


@st.composite
def policy_files(draw: st.DrawFn) -> str:
    """Policy files of one to three policies over the sample log's fields."""
    chosen = draw(st.lists(st.sampled_from(MATCHES), min_size=1, max_size=3, unique=True))
    lines = ["policies:"]
    for n, match in enumerate(chosen):
        total = draw(st.sampled_from(range(1, len(PERIODS))))
        hot = draw(st.one_of(st.none(), st.sampled_from(range(total))))
        lines.append(f"  - name: p{n}\n    total: {PERIODS[total]}")
        if hot is not None:
            lines.append(f"    hot: {PERIODS[hot]}")
        if match is not None:
            lines.append(f'    match: "{match}"')
    return "\n".join(lines) + "\n"


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=policy_files(), months=st.integers(0, 40))
def test_any_policies_a_run_does_what_the_plan_said_and_the_log_verifies(
    seven_years: Path, tmp_path_factory: pytest.TempPathFactory, text: str, months: int
) -> None:
    """For policies drawn at random and a moment drawn at random: the run seals and purges
    exactly what the plan counted, the log verifies, and a second run does nothing."""
    data = tmp_path_factory.mktemp("any") / "data"
    shutil.copytree(seven_years, data)
    (data / "retention.yaml").write_text(text)
    at = START + relativedelta(months=months + 40)
    with App.open(data) as app:
        app.ledger.clock = lambda: _stamp(at)
        planned = app.retention.plan(Caller.host("auditor"), at)
        done = _run(app, at)
        assert done.purged == sum(p.purge for p in planned.policies)
        assert done.sealed == sum(p.cold for p in planned.policies)
        app.ledger.verify()
        again = _run(app, at)
        assert (again.sealed, again.purged) == (0, 0)


def test_a_second_run_while_one_is_in_progress_is_refused(
    seven_years: Path, tmp_path: Path
) -> None:
    """Another process holding the run (here: its lock) makes a run refuse, changing nothing."""
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with (data / "retention.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with App.open(data) as app, pytest.raises(BusyError, match="already in progress"):
            _run(app, AT)
    assert _tiers(data)[:2] == (set(), set())
    with App.open(data) as app:
        assert _run(app, AT).purged > 0  # released: the next run goes ahead


def test_a_purge_receipt_is_handed_out_and_checks_with_the_verifier_key_alone(
    seven_years: Path, tmp_path: Path
) -> None:
    """`retention receipts --receipt N --json` gives the body exactly as signed and the
    signed note; with only the verifier key, its signature and SHA-256 check out."""
    data = tmp_path / "data"
    shutil.copytree(seven_years, data)
    with App.open(data) as app:
        _run(app, AT)
    listed = run_cli("retention", "receipts", "--data", str(data), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["receipt"] for r in json.loads(listed.stdout)] == [1]
    given = run_cli("retention", "receipts", "--receipt", "1", "--data", str(data), "--json")
    assert given.returncode == 0, given.stderr
    receipt = json.loads(given.stdout)
    verifier = Verifier.from_string((data / "verifier.key").read_text().strip())
    kind, origin, name, digest = open_note(receipt["signature"], verifier).splitlines()
    assert (kind, origin, name) == ("trailseal purge receipt v1", "test/retention-run", "receipt 1")
    assert hashlib.sha256(receipt["body"].encode()).hexdigest() == digest
    assert json.loads(receipt["body"])["count"] > 0
    missing = run_cli("retention", "receipts", "--receipt", "9", "--data", str(data))
    assert missing.returncode != 0
    assert b"no receipt 9" in missing.stderr
