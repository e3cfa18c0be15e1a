"""Verification: recompute every hash from the entries and hold it against signatures.

:class:`Replayer` is the shared core. Fed entries in index order, it checks each
entry's claimed index, recomputes leaf and chain hashes, grows the tree, checks
detail commitments, and collects the root at every size a checkpoint names.
:func:`verify_store` adds what only a database has (stored hashes, stored tree
nodes, the checkpoint chain, erasure records); :func:`verify_export` needs only
an export file, a checkpoint and a verifier key. Both raise a
:class:`~trailseal.errors.VerificationError` naming the first bad index and the
kind of damage, or return a :class:`VerificationReport`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from trailseal.checkpoints import Checkpoint, Verifier
from trailseal.errors import NoteError, TamperError, TrailsealError, VerificationError
from trailseal.events import canonical
from trailseal.ledger.store import Store
from trailseal.proofs import ZERO_CHAIN, CompactRange, chain_hash, leaf_hash

CHUNK = 20_000
ERASE_ACTION = "detail.erase"


@dataclass
class VerificationReport:
    """What a successful verification covered."""

    size: int
    root: str
    checkpoints: int
    latest_checkpoint_size: int
    verifier: str
    erased: list[int] = field(default_factory=list)
    against_size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "size": self.size,
            "root": self.root,
            "checkpoints_verified": self.checkpoints,
            "latest_checkpoint_size": self.latest_checkpoint_size,
            "against_size": self.against_size,
            "verifier": self.verifier,
            "detail_erased": self.erased,
        }


class _EventHead(msgspec.Struct, gc=False):
    id: str
    detail_commitment: str | None = None


class EntryHead(msgspec.Struct, gc=False):
    """The parts of an entry verification reads; the rest is skipped unparsed."""

    event: _EventHead
    index: int


_HEAD = msgspec.json.Decoder(EntryHead)


class Replayer:
    """Recomputes the log from its entries, one index at a time."""

    def __init__(self, wanted_sizes: Iterable[int]) -> None:
        self.compact = CompactRange()
        self.chain = ZERO_CHAIN
        self.roots: dict[int, bytes] = {}
        self._wanted = set(wanted_sizes)
        if 0 in self._wanted:
            self.roots[0] = self.compact.root()

    @property
    def size(self) -> int:
        return self.compact.size

    def add(self, index: int, entry: bytes) -> tuple[EntryHead, bytes, bytes]:
        """Check and absorb the entry stored at ``index``.

        Returns its head, its leaf hash and the tree nodes it completed.
        """
        if index != self.size:
            raise TamperError(
                "missing-entry", f"entries jump from {self.size - 1} to {index}", self.size
            )
        try:
            head = _HEAD.decode(entry)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            raise TamperError("modified-entry", "entry is not a trailseal entry", index) from None
        if head.index != index:
            kind = "inserted-entry" if head.index < index else "reordered"
            raise TamperError(
                kind, f"the entry stored at {index} says it is entry {head.index}", index
            )
        leaf = leaf_hash(entry)
        self.chain = chain_hash(self.chain, leaf)
        nodes = self.compact.append(leaf)
        if self.size in self._wanted:
            self.roots[self.size] = self.compact.root()
        return head, leaf, nodes


def check_detail(index: int, head: EntryHead, detail: bytes | None, salt: bytes | None) -> None:
    """A present detail must match the entry's commitment."""
    if detail is None:
        return
    committed = head.event.detail_commitment
    if committed is None or salt is None:
        raise TamperError("modified-detail", "a detail is stored for an entry without one", index)
    if hashlib.sha256(salt + detail).hexdigest() != committed:
        raise TamperError("modified-detail", "the detail does not match its commitment", index)


def _open_checkpoints(store: Store, verifier: Verifier, origin: str) -> list[Checkpoint]:
    """Every stored checkpoint, signature-checked, forming an unbroken signed chain."""
    opened: list[Checkpoint] = []
    previous = 0
    for size, note in store.checkpoints():
        try:
            checkpoint = Checkpoint.open(note, verifier, origin)
        except NoteError as exc:
            raise TamperError(
                "forged-checkpoint", f"checkpoint at size {size}: {exc.message}", size - 1
            ) from None
        if checkpoint.size != size:
            raise TamperError(
                "forged-checkpoint", f"checkpoint row {size} holds size {checkpoint.size}", size - 1
            )
        if checkpoint.prev_size != previous:
            raise TamperError(
                "missing-checkpoint",
                f"checkpoint at size {size} follows size {checkpoint.prev_size}, but the store's "
                f"previous checkpoint is at size {previous}; a checkpoint was deleted",
                (checkpoint.prev_size or 0) - 1,
            )
        opened.append(checkpoint)
        previous = size
    return opened


def verify_store(  # noqa: C901 - one pass over the entries checks each stored part in turn
    store: Store, verifier: Verifier, origin: str, against: str | None = None
) -> VerificationReport:
    """Verify everything in ``store``; ``against`` is a checkpoint note kept elsewhere."""
    checkpoints = _open_checkpoints(store, verifier, origin)
    outside = _open_against(against, verifier, origin)
    wanted = {c.size for c in checkpoints} | ({outside.size} if outside else set())
    replay = Replayer(wanted)
    size = store.size()
    erasures = store.erasures()
    erased: list[int] = []
    for start in range(0, size, CHUNK):
        end = min(start + CHUNK, size)
        details = store.details(start, end)
        for stored in store.entries(start, end):
            index = stored.index
            previous_chain = replay.chain
            head, leaf, nodes = replay.add(index, stored.entry)
            if leaf != stored.leaf_hash:
                damaged = (
                    "hash" if chain_hash(previous_chain, leaf) == stored.chain_hash else "entry"
                )
                raise TamperError(
                    f"modified-{damaged}",
                    "the stored leaf hash was changed"
                    if damaged == "hash"
                    else "the entry's bytes no longer match its leaf hash",
                    index,
                )
            if replay.chain != stored.chain_hash:
                raise TamperError("modified-hash", "the stored chain hash was changed", index)
            if head.event.id != stored.event_id:
                raise TamperError("modified-entry", "the stored event id column was changed", index)
            if nodes != stored.tree_nodes:
                raise TamperError("modified-hash", "the stored tree nodes were changed", index)
            detail = details.get(index)
            if detail is not None:
                check_detail(index, head, detail.detail, detail.salt)
            if head.event.detail_commitment is not None and (
                detail is None or detail.detail is None
            ):
                _check_erasure(index, erasures, store)
                erased.append(index)
    if replay.size != size:
        raise TamperError(
            "missing-entry", f"the log has {replay.size} of {size} entries", replay.size
        )
    _check_roots(checkpoints, replay, size)
    if outside is not None:
        _check_against(outside, replay)
    latest = checkpoints[-1] if checkpoints else None
    return VerificationReport(
        size=size,
        root=replay.compact.root().hex(),
        checkpoints=len(checkpoints),
        latest_checkpoint_size=latest.size if latest else 0,
        verifier=str(verifier),
        erased=erased,
        against_size=outside.size if outside else None,
    )


def _open_against(note: str | None, verifier: Verifier, origin: str) -> Checkpoint | None:
    if note is None:
        return None
    try:
        return Checkpoint.open(note, verifier, origin)
    except NoteError as exc:
        raise NoteError(f"the --against checkpoint: {exc.message}") from None


def _check_erasure(index: int, erasures: dict[int, Any], store: Store) -> None:
    erasure = erasures.get(index)
    if erasure is None:
        raise TamperError(
            "missing-detail", "the detail was removed without a recorded erasure", index
        )
    record = next(store.entries(erasure.record_index, erasure.record_index + 1), None)
    event = orjson.loads(record.entry)["event"] if record else {}
    resource = event.get("resource", {})
    if event.get("action") != ERASE_ACTION or resource.get("id") != str(index):
        raise TamperError(
            "missing-detail",
            f"the erasure names record entry {erasure.record_index}, which does not record it",
            index,
        )


def _check_roots(checkpoints: list[Checkpoint], replay: Replayer, size: int) -> None:
    for checkpoint in checkpoints:
        if checkpoint.size > size:
            raise TamperError(
                "truncated",
                f"a stored checkpoint covers {checkpoint.size} entries; the log holds {size}",
                size,
            )
        if replay.roots[checkpoint.size] != checkpoint.root:
            raise TamperError(
                "root-mismatch",
                f"the entries do not produce the root signed at size {checkpoint.size}",
                checkpoint.size - 1,
            )
    latest = checkpoints[-1].size if checkpoints else 0
    if latest != size:
        raise TamperError(
            "unsigned-entries",
            f"entries {latest}..{size - 1} are covered by no checkpoint; every batch is signed "
            "when it is committed, so a checkpoint was removed",
            latest,
        )


def _check_against(outside: Checkpoint, replay: Replayer) -> None:
    if outside.size > replay.size:
        raise TamperError(
            "truncated",
            f"the log holds {replay.size} entries but a checkpoint signed at size "
            f"{outside.size} was kept outside it: entries were removed from the end",
            replay.size,
        )
    if replay.roots[outside.size] != outside.root:
        raise TamperError(
            "rewritten",
            f"the log's root at size {outside.size} differs from the checkpoint kept outside it",
            None,
        )


def read_export(
    lines: Iterable[bytes],
) -> Iterator[tuple[int, dict[str, Any], bytes | None, bytes | None]]:
    """Parse export lines into (line number, entry, detail bytes, salt)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            entry = row["entry"]
            detail = row.get("detail")
            salt = row.get("salt")
            yield (
                number,
                entry,
                None if detail is None else canonical(detail),
                None if salt is None else bytes.fromhex(salt),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, TrailsealError) as exc:
            raise VerificationError(
                "malformed-export", f"line {number} is not an export row ({exc})"
            ) from None


def verify_export(lines: Iterable[bytes], note: str, verifier: Verifier) -> VerificationReport:
    """Verify an export against a signed checkpoint, with no database."""
    checkpoint = Checkpoint.open(note, verifier)
    replay = Replayer({checkpoint.size})
    erased: list[int] = []
    for number, entry, detail, salt in read_export(lines):
        if replay.size == 0 and entry.get("index") != 0:
            raise VerificationError(
                "partial-export",
                f"the export starts at entry {entry.get('index')}; checking it against a "
                "checkpoint needs every entry from 0",
            )
        try:
            data = canonical(entry)
        except TrailsealError:
            raise VerificationError("malformed-export", f"line {number}: bad entry") from None
        head, _, _ = replay.add(replay.size, data)
        check_detail(head.index, head, detail, salt)
        if detail is None and head.event.detail_commitment is not None:
            erased.append(head.index)
    if checkpoint.size > replay.size:
        raise TamperError(
            "truncated",
            f"the export holds {replay.size} entries; the checkpoint covers {checkpoint.size}",
            replay.size,
        )
    if replay.roots[checkpoint.size] != checkpoint.root:
        raise TamperError(
            "root-mismatch",
            f"the export does not produce the root signed at size {checkpoint.size}",
        )
    if replay.size > checkpoint.size:
        raise VerificationError(
            "uncovered-entries",
            f"entries {checkpoint.size}..{replay.size - 1} are not covered by the checkpoint; "
            "verify against a newer one",
            checkpoint.size,
        )
    return VerificationReport(
        size=replay.size,
        root=checkpoint.root.hex(),
        checkpoints=1,
        latest_checkpoint_size=checkpoint.size,
        verifier=str(verifier),
        erased=erased,
    )
