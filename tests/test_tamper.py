"""Tampering with the SQLite file directly is detected, naming the first bad index and the kind.

Each test drops the append-only triggers first, as anyone holding the file can,
and runs the real `trailseal verify` in a subprocess: it must exit 3.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from conftest import append_sample, run_cli
from trailseal.checkpoints import Checkpoint, Signer, Verifier
from trailseal.errors import VerificationError
from trailseal.ledger import Ledger
from trailseal.proofs import ZERO_CHAIN, CompactRange, chain_hash, leaf_hash

SIZE = 200
BATCH = 50  # checkpoints at 50, 100, 150, 200


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("pristine") / "data"
    with Ledger.init(data, origin="tamper.example/log") as ledger:
        append_sample(ledger, SIZE, batch=BATCH)
        (data.parent / "kept-checkpoint").write_text(ledger.checkpoint())
        (data.parent / "auditor.vkey").write_text(str(ledger.verifier))
    return data


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(pristine, data)
    shutil.copy(pristine.parent / "kept-checkpoint", tmp_path / "kept-checkpoint")
    shutil.copy(pristine.parent / "auditor.vkey", tmp_path / "auditor.vkey")
    return data


def tamper(data: Path, *statements: str, params: tuple = ()) -> None:
    db = sqlite3.connect(data / "log.db")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    for statement in statements:
        db.execute(statement, params if "?" in statement else ())
    db.commit()
    db.close()


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
    tamper(
        copy,
        "UPDATE entries SET entry = "
        "CAST(replace(CAST(entry AS TEXT), '\"u-', '\"x-') AS BLOB) WHERE idx = 57",
    )
    assert_detected(copy, "modified-entry", 57)


@pytest.mark.parametrize("column", ["leaf_hash", "chain_hash"])
def test_modified_stored_hash(copy: Path, column: str) -> None:
    tamper(copy, f"UPDATE entries SET {column} = randomblob(32) WHERE idx = 42")
    assert_detected(copy, "modified-hash", 42)


def test_modified_tree_node(copy: Path) -> None:
    tamper(copy, "UPDATE entries SET tree_nodes = randomblob(length(tree_nodes)) WHERE idx = 63")
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
    db = sqlite3.connect(data / "log.db")
    (entry,) = db.execute("SELECT entry FROM entries WHERE idx = ?", (index,)).fetchone()
    db.close()
    forged = orjson.loads(entry)
    forged["event"]["id"] = "forged-0001"
    forged["event"]["action"] = "record.delete"
    return orjson.dumps(forged, option=orjson.OPT_SORT_KEYS)


def test_inserted_entry(copy: Path) -> None:
    forged = _forge_entry(copy, 80)
    tamper(
        copy,
        *[f"UPDATE entries SET idx = idx + 1 WHERE idx = {i}" for i in range(SIZE - 1, 79, -1)],
    )
    db = sqlite3.connect(copy / "log.db")
    (previous_chain,) = db.execute("SELECT chain_hash FROM entries WHERE idx = 79").fetchone()
    leaf = leaf_hash(forged)
    db.execute(
        "INSERT INTO entries VALUES (80, 'forged-0001', ?, ?, ?, NULL)",
        (forged, leaf, chain_hash(previous_chain, leaf)),
    )
    db.commit()
    db.close()
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
    db = sqlite3.connect(copy / "log.db")
    (note,) = db.execute("SELECT note FROM checkpoints WHERE size = 100").fetchone()
    db.close()
    text = note[: note.index("\n\n") + 1]
    forged = Signer.generate("tamper.example/log").sign(text)
    tamper(copy, "UPDATE checkpoints SET note = ? WHERE size = 100", params=(forged,))
    assert_detected(copy, "forged-checkpoint", 99)


def _rewrite_everything(data: Path, change: Callable[[dict], None]) -> None:
    """What someone holding the database but not the key can do at most: rewrite every
    hash, re-sign every checkpoint with a key of their own and record that key."""
    db = sqlite3.connect(data / "log.db")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    rows = db.execute("SELECT idx, entry FROM entries ORDER BY idx").fetchall()
    sizes = [size for (size,) in db.execute("SELECT size FROM checkpoints ORDER BY size")]
    signer = Signer.generate("tamper.example/log")
    compact, chain, previous = CompactRange(), ZERO_CHAIN, 0
    for index, original in rows:
        parsed = orjson.loads(original)
        if index == 10:
            change(parsed)
        entry = orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS)
        leaf = leaf_hash(entry)
        chain = chain_hash(chain, leaf)
        nodes = compact.append(leaf)
        db.execute(
            "UPDATE entries SET entry = ?, leaf_hash = ?, chain_hash = ?, tree_nodes = ? "
            "WHERE idx = ?",
            (entry, leaf, chain, nodes or None, index),
        )
        if compact.size in sizes:
            note = Checkpoint("tamper.example/log", compact.size, compact.root(), previous).sign(
                signer
            )
            db.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (note, compact.size))
            previous = compact.size
    db.execute("UPDATE meta SET value = ? WHERE key = 'verifier'", (str(signer.verifier),))
    db.commit()
    db.close()


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
    db = sqlite3.connect(copy / "log.db")
    (index,) = db.execute("SELECT min(idx) FROM details").fetchone()
    db.close()
    tamper(
        copy, f"UPDATE details SET detail = CAST('{{\"after\":{{}}}}' AS BLOB) WHERE idx = {index}"
    )
    assert_detected(copy, "modified-detail", index)


def test_detail_removed_without_erasure(copy: Path) -> None:
    db = sqlite3.connect(copy / "log.db")
    (index,) = db.execute("SELECT min(idx) FROM details").fetchone()
    db.close()
    tamper(copy, f"DELETE FROM details WHERE idx = {index}")
    assert_detected(copy, "missing-detail", index)


def test_event_id_column_changed(copy: Path) -> None:
    tamper(copy, "UPDATE entries SET event_id = 'someone-else' WHERE idx = 7")
    assert_detected(copy, "modified-entry", 7)
