"""The storage conformance suite: appends, idempotency, group commit, proofs, erasure,
search, append-only enforcement and refusals, each run on both backends (a real SQLite
file, and a schema of the real PostgreSQL on 127.0.0.1)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends import Backend
from conftest import append_sample, event_lines
from trailseal import (
    ConfigError,
    IdConflictError,
    Ledger,
    NotFoundError,
    ProofError,
    SearchFilter,
    StorageError,
    verify_consistency,
    verify_inclusion,
)
from trailseal.checkpoints import Checkpoint
from trailseal.events import parse_event
from trailseal.ledger import verify_export
from trailseal.ledger.search import fixed_width, normalize_time
from trailseal.proofs import leaf_hash


@pytest.fixture
def ledger(backend: Backend, data_dir: Path) -> Iterator[Ledger]:
    with Ledger.init(data_dir, origin="test.example/log", store=backend.store(data_dir)) as opened:
        yield opened


def _event(n: int, **extra: object) -> object:
    raw = {
        "id": f"evt-{n}",
        "time": "2026-03-01T14:05:09Z",
        "actor": {"id": f"u-{n % 3}"},
        "action": "record.read",
        "resource": {"type": "patient", "id": f"p-{n}"},
        **extra,
    }
    return parse_event(orjson.dumps(raw))


def test_append_assigns_consecutive_indexes_and_signs(ledger: Ledger) -> None:
    result = ledger.append([_event(i) for i in range(5)])
    assert (result.indexes, result.appended, result.first_index, result.size) == (
        [0, 1, 2, 3, 4],
        5,
        0,
        5,
    )
    checkpoint = Checkpoint.open(ledger.checkpoint(), ledger.verifier, ledger.origin)
    assert checkpoint.size == 5
    assert checkpoint.root == ledger.root(5)


def test_entry_shape_and_hashes(ledger: Ledger) -> None:
    ledger.append([_event(0, detail={"before": {"ward": "3B"}, "after": {"ward": "4A"}})])
    view = ledger.get(0)
    assert set(view.entry) == {"event", "index", "received_at", "submitter"}
    assert view.entry["submitter"].startswith("host:")  # the library runs on the host
    assert "detail" not in view.entry["event"]
    assert len(view.entry["event"]["detail_commitment"]) == 64
    assert view.detail == {"before": {"ward": "3B"}, "after": {"ward": "4A"}}
    stored = next(ledger.store.entries(0, 1))
    assert view.leaf_hash == leaf_hash(stored.entry)


def test_resend_is_idempotent_and_stores_nothing(ledger: Ledger) -> None:
    first = ledger.append([_event(1), _event(2, detail={"x": 1})])
    again = ledger.append([_event(2, detail={"x": 1}), _event(1), _event(3)])
    assert first.indexes == [0, 1]
    assert again.indexes == [1, 0, 2]
    assert again.appended == 1
    assert ledger.size() == 3
    assert len(ledger.store.checkpoints()) == 2
    nothing = ledger.append([_event(1)])
    assert nothing.appended == 0
    assert len(ledger.store.checkpoints()) == 2  # no empty checkpoint


def test_resend_with_different_content_is_refused(ledger: Ledger) -> None:
    ledger.append([_event(1, detail={"x": 1})])
    with pytest.raises(IdConflictError, match="already used by entry 0"):
        ledger.append([_event(1, detail={"x": 2})])
    with pytest.raises(IdConflictError):
        ledger.append([_event(1, action="record.delete")])
    assert ledger.size() == 1


def test_duplicate_ids_within_one_batch(ledger: Ledger) -> None:
    result = ledger.append([_event(1), _event(2), _event(1)])
    assert result.indexes == [0, 1, 0]
    with pytest.raises(IdConflictError, match="earlier line of this batch"):
        ledger.append([_event(7), _event(7, action="record.update")])
    assert ledger.size() == 2


def test_concurrent_appends_share_one_sequencer(ledger: Ledger) -> None:
    """Regression: threads appending first once built two sequencers on one connection."""
    lines = event_lines(4000)
    errors: list[BaseException] = []

    def worker(part: list[bytes]) -> None:
        try:
            for start in range(0, len(part), 100):
                ledger.append([parse_event(line) for line in part[start : start + 100]])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(lines[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ledger.size() == 4000
    report = ledger.verify()
    assert report.size == 4000
    assert report.checkpoints <= 40  # batches waiting together were committed together


def test_two_processes_appending_to_one_log(backend: Backend, data_dir: Path) -> None:
    """A second writer (another process) is noticed: the head is reloaded, not overwritten."""
    store = backend.store(data_dir)
    with Ledger.init(data_dir, origin="test.example/log", store=store) as first:
        first.append([_event(0)])
        with Ledger.open(data_dir) as second:
            second.append([_event(1)])
        first.append([_event(2)])
        assert first.size() == 3
        first.verify()


def test_proofs_match_signed_roots(ledger: Ledger) -> None:
    append_sample(ledger, 1000, batch=300)
    sizes = [size for size, _ in ledger.store.checkpoints()]
    assert sizes == [300, 600, 900, 1000]
    for index in (0, 1, 299, 300, 999):
        proof = ledger.prove_inclusion(index, 600 if index < 600 else 1000)
        verify_inclusion(proof.index, proof.size, proof.leaf_hash, proof.proof, proof.root)
    for old, new in [(300, 600), (600, 1000), (1, 1000), (0, 1000), (1000, 1000)]:
        proof = ledger.prove_consistency(old, new)
        verify_consistency(old, new, proof.old_root, proof.new_root, proof.proof)
        for size, note in ledger.store.checkpoints():
            signed = Checkpoint.open(note, ledger.verifier)
            if size == new:
                assert signed.root == proof.new_root


def test_proofs_outside_the_log_are_refused(ledger: Ledger) -> None:
    append_sample(ledger, 10)
    with pytest.raises(ProofError):
        ledger.prove_inclusion(10)
    with pytest.raises(ProofError):
        ledger.prove_inclusion(3, 11)
    with pytest.raises(ProofError):
        ledger.prove_consistency(5, 11)
    with pytest.raises(ProofError):
        ledger.prove_consistency(6, 5)
    with pytest.raises(NotFoundError):
        ledger.get(10)


def test_erasure_keeps_every_proof_and_is_itself_logged(ledger: Ledger, backend: Backend) -> None:
    ledger.append([_event(0, detail={"ssn": "123-45-6789"}), _event(1)])
    record = ledger.erase(0, "right to erasure request RE-17", actor="dpo-1")
    assert record == 2
    view = ledger.get(0)
    assert view.detail is None
    assert view.erased == "right to erasure request RE-17"
    erased_record = ledger.get(2).entry["event"]
    assert erased_record["action"] == "detail.erase"
    assert erased_record["resource"] == {"type": "entry", "id": "0"}
    report = ledger.verify()
    assert report.erased == [0]
    (rows,) = backend.query(ledger.settings.data_dir, "SELECT count(*) FROM details")[0]
    assert rows == 0
    with pytest.raises(NotFoundError, match="already erased"):
        ledger.erase(0, "again")
    with pytest.raises(NotFoundError, match="no detail"):
        ledger.erase(1, "nothing there")


def test_erasure_needs_a_reason(ledger: Ledger) -> None:
    ledger.append([_event(0, detail={"x": 1})])
    with pytest.raises(Exception, match="reason"):
        ledger.erase(0, "   ")


def test_triggers_refuse_update_and_delete(ledger: Ledger, backend: Backend) -> None:
    ledger.append([_event(0, detail={"x": 1})])
    ledger.search(SearchFilter())  # fills the search index, which is append-only too
    for statement in (
        "UPDATE entries SET entry = x'00'",
        "DELETE FROM entries",
        "UPDATE entries SET leaf_hash = x'00'",
        "DELETE FROM checkpoints",
        "UPDATE checkpoints SET note = ''",
        "DELETE FROM details",
        "UPDATE details SET detail = x'00'",
        "UPDATE meta SET value = 'x'",
        "DELETE FROM meta",
        "UPDATE search_index SET actor = 'x'",
    ):
        with pytest.raises(Exception, match="trailseal"):
            backend.guarded(ledger.settings.data_dir, statement)
    ledger.verify()


def test_export_verifies_offline(ledger: Ledger, tmp_path: Path) -> None:
    append_sample(ledger, 500, batch=200)
    ledger.erase(3, "retention") if ledger.get(3).entry["event"].get("detail_commitment") else None
    lines = list(ledger.export())
    report = verify_export(lines, ledger.checkpoint(), ledger.verifier)
    assert report.size == ledger.size()
    rows = [orjson.loads(line) for line in lines]
    assert [row["entry"]["index"] for row in rows] == list(range(ledger.size()))


def test_search_filters(ledger: Ledger) -> None:
    ledger.append(
        [
            _event(0),
            _event(1, action="record.update", outcome={"result": "denied"}),
            _event(2, action="record.export", time="2026-03-02T00:00:00Z"),
            _event(3, resource={"type": "document", "id": "spec-7", "tenant": "acme"}),
        ]
    )

    def found(**kwargs: object) -> list[int]:
        return [view.index for view in ledger.search(SearchFilter(**kwargs))]

    assert found(actor="u-0") == [0, 3]
    assert found(action="record.*") == [0, 1, 2, 3]
    assert found(action="record.e*") == [2]
    assert found(action="record.update") == [1]
    assert found(outcome="denied") == [1]
    assert found(resource_type="document", resource_id="spec-7") == [3]
    assert found(tenant="acme") == [3]
    assert found(since="2026-03-02T00:00:00.000000Z") == [2]
    assert found(until="2026-03-02T00:00:00.000000Z") == [0, 1, 3]
    assert found(limit=2) == [0, 1]
    ledger.append([_event(9)])
    assert found(actor="u-0") == [0, 3, 4]  # the index catches up before every search


def test_signer_refuses_a_checkpoint_inconsistent_with_what_it_signed(
    ledger: Ledger, backend: Backend
) -> None:
    append_sample(ledger, 20)
    backend.tamper(
        ledger.settings.data_dir, "DELETE FROM entries WHERE idx >= 10", "DELETE FROM checkpoints"
    )
    with Ledger.open(ledger.settings.data_dir) as reopened:
        with pytest.raises(Exception, match="refusing to sign"):
            reopened.append([_event(100)])
        assert reopened.size() == 10


def test_key_file_with_loose_permissions_is_refused(ledger: Ledger) -> None:
    ledger.settings.key_path.chmod(0o644)
    with Ledger.open(ledger.settings.data_dir) as reopened:
        with pytest.raises(ConfigError, match="chmod 600"):
            reopened.append([_event(0)])
        assert reopened.size() == 0


def test_init_refuses_to_overwrite(backend: Backend, data_dir: Path) -> None:
    store = backend.store(data_dir)
    Ledger.init(data_dir, store=store).close()
    with pytest.raises(ConfigError, match="already exists"):
        Ledger.init(data_dir, store=store)
    named = store or f"sqlite:///{data_dir / 'log.db'}"
    with pytest.raises(ConfigError, match="already"):  # the same store from another directory
        Ledger.init(data_dir.parent / "elsewhere", store=named)
    assert not (data_dir.parent / "elsewhere" / "signing.key").exists()  # nothing half-made


def test_open_missing_or_foreign_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trailseal init"):
        Ledger.open(tmp_path / "nowhere")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "log.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="not a trailseal log"):
        Ledger.open(tmp_path / "junk")


def test_signing_key_kept_apart_from_the_data(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "log.key"
    key.parent.mkdir()
    with Ledger.init(tmp_path / "data", key_path=key) as ledger:
        ledger.append([_event(0)])
    assert not (tmp_path / "data" / "signing.key").exists()
    assert (tmp_path / "keys" / "log.key.last").exists()
    with Ledger.open(tmp_path / "data") as reopened:  # the config remembers where the key is
        reopened.append([_event(1)])
        assert reopened.size() == 2


def test_store_error_leaves_log_intact(data_dir: Path) -> None:
    """SQLite: another writer holds the file's lock (PostgreSQL's faults are in
    test_postgres.py: a server that goes away, a connection lost at COMMIT)."""
    ledger = Ledger.init(data_dir)
    ledger.append([_event(0)])
    blocker = sqlite3.connect(ledger.settings.db_path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    ledger.store.db.execute("PRAGMA busy_timeout = 100")
    with pytest.raises(StorageError):
        ledger.append([_event(1)])
    blocker.rollback()
    blocker.close()
    ledger.append([_event(1)])
    assert ledger.verify().size == 2
    ledger.close()


def test_reads_never_see_a_batch_before_it_commits(ledger: Ledger) -> None:
    ledger.append([_event(0)])
    seen: list[int] = []

    def write_then_abandon() -> None:
        with ledger.store.append_transaction():
            ledger.store.db.execute(
                "INSERT INTO entries VALUES (1, 'x', 'x', 'x', 'x', NULL)"  # bytes in either
            )
            seen.append(ledger.size())
            try:
                ledger.get(1)
            except NotFoundError:
                seen.append(-1)
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError, match="abandon"):
        write_then_abandon()
    assert seen == [1, -1]
    assert ledger.size() == 1
    ledger.append([_event(1)])
    assert ledger.verify().size == 2


def test_search_while_appending_from_another_thread(ledger: Ledger) -> None:
    """Search writes its index on the writer connection; it must wait for, not join,
    an append in progress."""
    lines = event_lines(3000, seed=17)
    failures: list[BaseException] = []

    def appender() -> None:
        try:
            for start in range(0, len(lines), 300):
                ledger.append([parse_event(line) for line in lines[start : start + 300]])
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=appender)
    thread.start()
    while thread.is_alive():
        ledger.search(SearchFilter(action="record.*", limit=10))
    thread.join()
    assert failures == []
    assert ledger.verify().size == 3000


@given(
    st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001 - hypothesis wants naive bounds; 4-digit years
    st.integers(min_value=0, max_value=6),
)
def test_search_index_times_sort_as_text(moment: datetime, digits: int) -> None:
    """The index stores event times at fixed width so that text order is time order."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + moment.strftime("%f")[:digits]
    text += "Z"
    assert fixed_width(text) == normalize_time(text)


def test_concurrent_erasures_are_idempotent(ledger: Ledger) -> None:
    """Issue 10, point 12: concurrent erasures of one entry wrote several detail.erase
    entries. Eight threads released together per entry: one record, one erasure."""
    ledger.append([_event(n, detail={"ssn": f"123-45-{n:04d}"}) for n in range(6)])
    for index in range(6):
        barrier = threading.Barrier(8)
        outcomes: list[object] = []

        def erase(
            target: int = index, gate: threading.Barrier = barrier, seen: list = outcomes
        ) -> None:
            gate.wait()
            try:
                seen.append(ledger.erase(target, "right to erasure"))
            except NotFoundError as exc:
                seen.append(type(exc).__name__)

        threads = [threading.Thread(target=erase) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(isinstance(o, int) for o in outcomes) == 1, outcomes
        assert outcomes.count("NothingToEraseError") == 7
    records = [
        view
        for view in map(ledger.get, range(ledger.size()))
        if view.entry["event"]["action"] == "detail.erase"
    ]
    assert len(records) == 6
    assert ledger.verify().erased == list(range(6))


def test_writers_sharing_a_key_never_trip_over_its_last_signed_record(tmp_path: Path) -> None:
    """Found with issue 10 (a service and its detection both append, each through a
    ledger of its own): the record of the last checkpoint signed was replaced through
    one fixed temporary file, so two writers failed each other's appends (a 500 to a
    client) and the record could move backwards."""
    data = tmp_path / "data"
    lines = event_lines(200, seed=21)
    errors: list[BaseException] = []
    with Ledger.init(data, origin="race.example/log") as first, Ledger.open(data) as second:

        def write(ledger: Ledger, part: list[bytes]) -> None:
            for line in part:
                try:
                    ledger.append([parse_event(line)])
                except BaseException as exc:  # every failure is the finding
                    errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(first, lines[:100])),
            threading.Thread(target=write, args=(second, lines[100:])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors[:3]
        kept = Checkpoint.open(
            (data / "signing.key.last").read_text(), first.verifier, "race.example/log"
        )
        assert kept.size == first.size() == 200
