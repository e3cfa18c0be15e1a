"""Tampering with the database directly is detected, naming the first bad index and the kind.

Each test runs on both backends (a SQLite file, a PostgreSQL schema). It gets the
append-only triggers out of the way first, as anyone holding the file or a superuser
can, and runs the real `trailseal verify` in a subprocess: it must exit 3.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from backends import Backend
from conftest import append_sample, run_cli
from trailseal.access import entry_tenant
from trailseal.app import App, Caller, search_filter
from trailseal.checkpoints import Checkpoint, Signer, Verifier
from trailseal.errors import VerificationError
from trailseal.events import event_from_mapping
from trailseal.ledger import Ledger, SearchFilter
from trailseal.proofs import ZERO_CHAIN, CompactRange, chain_hash, leaf_hash

SIZE = 200
BATCH = 50  # checkpoints at 50, 100, 150, 200


_BACKENDS: dict[Path, Backend] = {}


@pytest.fixture
def copy(backend: Backend, tmp_path: Path) -> Iterator[Path]:
    """A log of 200 entries in four signed batches, with a checkpoint and the verifier
    key kept outside it (as an auditor would)."""
    data = tmp_path / "data"
    with Ledger.init(data, origin="tamper.example/log", store=backend.store(data)) as ledger:
        append_sample(ledger, SIZE, batch=BATCH)
        (tmp_path / "kept-checkpoint").write_text(ledger.checkpoint())
        (tmp_path / "auditor.vkey").write_text(str(ledger.verifier))
    _BACKENDS[data] = backend
    yield data
    del _BACKENDS[data]


def tamper(data: Path, *statements: str, params: tuple = ()) -> None:
    _BACKENDS[data].tamper(data, *statements, params=params)


def query(data: Path, statement: str, params: tuple = ()) -> list[tuple]:
    return _BACKENDS[data].query(data, statement, params)


def verify(data: Path, *extra: str) -> tuple[int, str]:
    result = run_cli("verify", "--json", *extra, data=data)
    return result.returncode, result.stderr.decode()


def assert_detected(data: Path, kind: str, index: int | None, *extra: str) -> None:
    """The CLI (one process, whole-log chunks) and the library checking many small chunks
    in worker processes must both name the same damage."""
    code, message = verify(data, *extra)
    assert code == 3, message
    assert kind in message, message
    if index is not None:
        assert re.search(rf"\bat index {index}\b", message), message
    options = dict(zip(extra[::2], extra[1::2], strict=True))
    against = Path(options["--against"]).read_text() if "--against" in options else None
    trusted = (
        Verifier.from_string(Path(options["--vkey"]).read_text()) if "--vkey" in options else None
    )
    with Ledger.open(data) as ledger, pytest.raises(VerificationError) as caught:
        ledger.verify(against, trusted, workers=2, chunk_level=3)
    assert caught.value.kind == kind
    if index is not None:
        assert caught.value.index == index


def test_pristine_log_verifies(copy: Path) -> None:
    code, message = verify(copy, "--against", str(copy.parent / "kept-checkpoint"))
    assert code == 0, message


def test_modified_event_field(copy: Path) -> None:
    b = _BACKENDS[copy]
    replaced = b.blob(f"replace({b.text('entry')}, '\"u-', '\"x-')")
    tamper(copy, f"UPDATE entries SET entry = {replaced} WHERE idx = 57")
    assert_detected(copy, "modified-entry", 57)


@pytest.mark.parametrize("column", ["leaf_hash", "chain_hash"])
def test_modified_stored_hash(copy: Path, column: str) -> None:
    noise = _BACKENDS[copy].random_bytes("32")
    tamper(copy, f"UPDATE entries SET {column} = {noise} WHERE idx = 42")
    assert_detected(copy, "modified-hash", 42)


def test_modified_tree_node(copy: Path) -> None:
    noise = _BACKENDS[copy].random_bytes("length(tree_nodes)")
    tamper(copy, f"UPDATE entries SET tree_nodes = {noise} WHERE idx = 63")
    assert_detected(copy, "modified-hash", 63)


def test_deleted_entry_in_the_middle(copy: Path) -> None:
    tamper(copy, "DELETE FROM entries WHERE idx = 100")
    assert_detected(copy, "missing-entry", 100)


def test_tail_truncated_with_its_checkpoints(copy: Path) -> None:
    tamper(copy, "DELETE FROM entries WHERE idx >= 150", "DELETE FROM checkpoints WHERE size > 150")
    # What is left is a consistent, correctly signed shorter log: only a checkpoint
    # kept outside the database can tell that entries were cut off.
    with Ledger.open(copy) as ledger:
        assert ledger.verify().size == 150
    # `trailseal verify` records its result, and the signer keeps the last checkpoint it
    # signed beside the key: it refuses to sign over the cut, and that is the finding.
    code, message = verify(copy)
    assert code == 3
    assert "this key already signed size 200" in message
    assert_detected(copy, "truncated", 150, "--against", str(copy.parent / "kept-checkpoint"))


def test_tail_truncated_but_checkpoints_left(copy: Path) -> None:
    tamper(copy, "DELETE FROM entries WHERE idx >= 180")
    assert_detected(copy, "truncated", 180)


def _forge_entry(data: Path, index: int) -> bytes:
    ((entry,),) = query(data, "SELECT entry FROM entries WHERE idx = ?", (index,))
    forged = orjson.loads(bytes(entry))
    forged["event"]["id"] = "forged-0001"
    forged["event"]["action"] = "record.delete"
    return orjson.dumps(forged, option=orjson.OPT_SORT_KEYS)


def test_inserted_entry(copy: Path) -> None:
    forged = _forge_entry(copy, 80)
    tamper(
        copy,
        *[f"UPDATE entries SET idx = idx + 1 WHERE idx = {i}" for i in range(SIZE - 1, 79, -1)],
    )
    ((previous_chain,),) = query(copy, "SELECT chain_hash FROM entries WHERE idx = 79")
    leaf = leaf_hash(forged)
    tamper(
        copy,
        "INSERT INTO entries VALUES (80, 'forged-0001', ?, ?, ?, NULL)",
        params=(forged, leaf, chain_hash(bytes(previous_chain), leaf)),
    )
    assert_detected(copy, "inserted-entry", 81)


def test_two_entries_swapped(copy: Path) -> None:
    tamper(
        copy,
        "UPDATE entries SET idx = -1 WHERE idx = 30",
        "UPDATE entries SET idx = 30 WHERE idx = 31",
        "UPDATE entries SET idx = 31 WHERE idx = -1",
    )
    assert_detected(copy, "reordered", 30)


def test_checkpoint_row_deleted(copy: Path) -> None:
    tamper(copy, "DELETE FROM checkpoints WHERE size = 100")
    assert_detected(copy, "missing-checkpoint", 99)


def test_last_checkpoint_row_deleted(copy: Path) -> None:
    tamper(copy, "DELETE FROM checkpoints WHERE size = 200")
    assert_detected(copy, "unsigned-entries", 150)


def test_checkpoint_signed_with_another_key(copy: Path) -> None:
    ((note,),) = query(copy, "SELECT note FROM checkpoints WHERE size = 100")
    text = note[: note.index("\n\n") + 1]
    forged = Signer.generate("tamper.example/log").sign(text)
    tamper(copy, "UPDATE checkpoints SET note = ? WHERE size = 100", params=(forged,))
    assert_detected(copy, "forged-checkpoint", 99)


def _rewrite_everything(data: Path, change: Callable[[dict], None]) -> None:
    """What someone holding the database but not the key can do at most: rewrite every
    hash, re-sign every checkpoint with a key of their own and record that key."""
    rows = query(data, "SELECT idx, entry FROM entries ORDER BY idx")
    sizes = [size for (size,) in query(data, "SELECT size FROM checkpoints ORDER BY size")]
    signer = Signer.generate("tamper.example/log")
    compact, chain, previous = CompactRange(), ZERO_CHAIN, 0
    steps: list[tuple[str, tuple]] = []
    rewrite = "UPDATE entries SET entry = ?, leaf_hash = ?, chain_hash = ?, tree_nodes = ? "
    for index, original in rows:
        parsed = orjson.loads(bytes(original))
        if index == 10:
            change(parsed)
        entry = orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS)
        leaf = leaf_hash(entry)
        chain = chain_hash(chain, leaf)
        nodes = compact.append(leaf)
        steps.append((rewrite + "WHERE idx = ?", (entry, leaf, chain, nodes or None, index)))
        if compact.size in sizes:
            note = Checkpoint("tamper.example/log", compact.size, compact.root(), previous).sign(
                signer
            )
            steps.append(("UPDATE checkpoints SET note = ? WHERE size = ?", (note, compact.size)))
            previous = compact.size
    steps.append(("UPDATE meta SET value = ? WHERE key = 'verifier'", (str(signer.verifier),)))
    _BACKENDS[data].run(data, steps)


def test_wholesale_rewrite_resigned_with_another_key(copy: Path) -> None:
    _rewrite_everything(copy, lambda entry: entry["event"]["actor"].update(id="u-innocent"))
    with Ledger.open(copy) as ledger:  # self-consistent: the database alone cannot be
        ledger.verify()  # trusted for its key
    # `trailseal verify` records its result with the real signing key, which is not the
    # key the rewritten database names: recording is refused, and says why.
    code, message = verify(copy)
    assert code == 1
    assert "but this log is verified with" in message
    assert_detected(copy, "forged-checkpoint", 49, "--vkey", str(copy.parent / "auditor.vkey"))
    code, message = verify(copy, "--against", str(copy.parent / "kept-checkpoint"))
    assert code == 3
    assert "--against checkpoint" in message


def test_modified_detail(copy: Path) -> None:
    ((index,),) = query(copy, "SELECT min(idx) FROM details")
    detail = _BACKENDS[copy].blob("'{\"after\":{}}'")
    tamper(copy, f"UPDATE details SET detail = {detail} WHERE idx = {index}")
    assert_detected(copy, "modified-detail", index)


def test_detail_removed_without_erasure(copy: Path) -> None:
    ((index,),) = query(copy, "SELECT min(idx) FROM details")
    tamper(copy, f"DELETE FROM details WHERE idx = {index}")
    assert_detected(copy, "missing-detail", index)


def test_event_id_column_changed(copy: Path) -> None:
    tamper(copy, "UPDATE entries SET event_id = 'someone-else' WHERE idx = 7")
    assert_detected(copy, "modified-entry", 7)


def test_an_erasure_recorded_by_a_writer_is_not_believed(copy: Path) -> None:
    """Issue 10, point 5: a writer appended its own detail.erase entry, and someone with
    access to the database then removed the detail under it; verify let it pass."""
    ((index,),) = query(copy, "SELECT min(idx) FROM details")
    with Ledger.open(copy) as ledger:
        forged = event_from_mapping(
            {
                "id": "forged-erasure",
                "time": "2026-03-01T14:05:09Z",
                "actor": {"id": "dpo"},
                "action": "detail.erase",
                "resource": {"type": "entry", "id": str(index)},
            }
        )
        record = ledger.append([forged], "pr-hostile-writer").indexes[0]
    tamper(
        copy,
        f"INSERT INTO erasures VALUES ({index}, 'forged', '2026-03-01T14:05:09Z', {record})",
        f"DELETE FROM details WHERE idx = {index}",
    )
    assert_detected(copy, "missing-detail", index)


def _indexed(data: Path) -> None:
    with Ledger.open(data) as ledger:
        ledger.search(SearchFilter(limit=1))  # the index catches up with every entry


def test_a_search_row_moved_to_another_tenant_leaks_nothing(copy: Path) -> None:
    """Issue 10, point 4: a search-index row whose tenant was changed in the database let a
    tenant-bound auditor receive another tenant's entry through search."""
    _indexed(copy)
    ((victim, tenant),) = query(
        copy, "SELECT idx, tenant FROM search_index WHERE tenant <> 'tenant-2' LIMIT 1"
    )
    tamper(copy, f"UPDATE search_index SET tenant = 'tenant-2' WHERE idx = {victim}")
    with App.open(copy) as app:
        principal, _ = app.principals.create(Caller.host(), "t2-auditor", "auditor", "tenant-2")
        found = app.entries.search(Caller(principal), search_filter(limit=1000))
    assert victim not in [view.index for view in found]
    assert {entry_tenant(view.entry["event"]) for view in found} == {"tenant-2"}
    assert tenant != "tenant-2"
    assert_detected(copy, "modified-search-index", victim)


def test_a_search_row_removed_is_reported(copy: Path) -> None:
    """Rows deleted from the index made search silently miss entries: verify says so."""
    _indexed(copy)
    tamper(copy, "DELETE FROM search_index WHERE idx = 77")
    assert_detected(copy, "modified-search-index", 77)


def test_a_search_row_rewritten_is_reported(copy: Path) -> None:
    _indexed(copy)
    tamper(copy, "UPDATE search_index SET action = 'record.read', actor = 'u-x' WHERE idx = 12")
    with Ledger.open(copy) as ledger:  # the forged terms find nothing: results are checked
        assert [v.index for v in ledger.search(SearchFilter(actor="u-x"))] == []
    assert_detected(copy, "modified-search-index", 12)


def test_an_entry_rewritten_as_text_is_damage(copy: Path) -> None:
    """Issue 10, point 13: an entry rewritten as TEXT instead of BLOB made verify exit 1
    with a traceback. (SQLite only: a PostgreSQL bytea column cannot hold text.)"""
    if _BACKENDS[copy].name != "sqlite":
        pytest.skip("a PostgreSQL bytea column cannot hold text")
    tamper(copy, "UPDATE entries SET entry = CAST(entry AS TEXT) WHERE idx = 33")
    code, message = verify(copy)
    assert "Traceback" not in message
    assert code == 3
    assert_detected(copy, "modified-entry", 33)


def _checkpoint_file(data: Path, size: int) -> Path:
    """The log's own checkpoint at ``size``, saved as an earlier verification would."""
    ((note,),) = query(data, f"SELECT note FROM checkpoints WHERE size = {size}")
    kept = data.parent / f"verified-{size}.note"
    kept.write_text(note)
    return kept


def test_verify_since_checks_only_what_came_after_a_verified_checkpoint(copy: Path) -> None:
    """Issue 10, point 15: `verify --since CHECKPOINT_FILE` checks what was appended after
    a checkpoint verified before, and the consistency proof between the two."""
    since = _checkpoint_file(copy, 100)
    result = run_cli("verify", "--json", "--since", since, data=copy)
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert (report["since_size"], report["checkpoints_verified"]) == (100, 2)
    with Ledger.open(copy) as ledger:
        assert report["root"] == ledger.root(report["size"]).hex()
    b = _BACKENDS[copy]
    replaced = b.blob(f"replace({b.text('entry')}, '\"u-', '\"x-')")
    tamper(copy, f"UPDATE entries SET entry = {replaced} WHERE idx = 157")
    assert_detected(copy, "modified-entry", 157, "--since", str(since))


def test_verify_since_trusts_the_prefix_but_not_a_rewritten_tree(copy: Path) -> None:
    """Entries before the checkpoint are trusted as verified then (the full pass is what
    finds damage there); a stored tree that no longer hashes to the checkpoint's root
    is found all the same."""
    since = _checkpoint_file(copy, 100)
    b = _BACKENDS[copy]
    replaced = b.blob(f"replace({b.text('entry')}, '\"u-', '\"x-')")
    tamper(copy, f"UPDATE entries SET entry = {replaced} WHERE idx = 57")
    code, message = verify(copy, "--since", str(since))
    assert code == 0, message
    assert verify(copy)[0] == 3  # the full pass stays available, and finds it
    noise = b.random_bytes("length(tree_nodes)")
    tamper(copy, f"UPDATE entries SET tree_nodes = {noise} WHERE idx = 63")  # the node [0, 64)
    code, message = verify(copy, "--since", str(since))
    assert code == 3
    assert "rewritten" in message


def test_verify_since_a_checkpoint_beyond_the_log_is_truncation(copy: Path, tmp_path: Path) -> None:
    since = _checkpoint_file(copy, 200)
    tamper(copy, "DELETE FROM checkpoints WHERE size > 150", "DELETE FROM entries WHERE idx >= 150")
    code, message = verify(copy, "--since", str(since))
    assert code == 3
    assert "truncated" in message
    other = tmp_path / "other.note"
    other.write_text(Signer.generate("tamper.example/log").sign("tamper.example/log\n10\nAA==\n"))
    code, message = verify(copy, "--since", str(other))
    assert code == 3
    assert "--since checkpoint" in message
