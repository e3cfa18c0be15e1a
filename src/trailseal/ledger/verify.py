"""Verification: recompute every hash from the entries and hold it against signatures.

:func:`verify_store` checks a database: the chain of signed checkpoints, then
every entry chunk by chunk (:mod:`trailseal.ledger.chunks`, in parallel for
large logs), then the roots the chunks form against every signed root and
against a checkpoint kept elsewhere. :func:`verify_export` needs only an
export file, a checkpoint and a verifier key. Both raise a
:class:`~trailseal.errors.VerificationError` naming the first bad index and
the kind of damage, or return a :class:`VerificationReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import orjson

from trailseal.access.actions import trusted
from trailseal.checkpoints import Checkpoint, Verifier
from trailseal.errors import NoteError, TamperError, TrailsealError, VerificationError
from trailseal.events import canonical
from trailseal.ledger.chunks import ERASE_ACTION, LEVEL, ChunkResult, check_range, run_chunks
from trailseal.ledger.replay import EntryHead, Replayer, check_detail
from trailseal.ledger.search import IndexedResource
from trailseal.ledger.tiers import TierReport, check_tiers
from trailseal.proofs import EMPTY_ROOT, CompactRange, fold
from trailseal.storage.base import StoreReader

__all__ = ["ERASE_ACTION", "VerificationReport", "verify_export", "verify_since", "verify_store"]

_NO_TARGET = IndexedResource()


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
    since_size: int | None = None  # checked only what was appended after this size
    tiers: TierReport | None = None  # the cold tier's segments and the purge receipts

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "size": self.size,
            "root": self.root,
            "checkpoints_verified": self.checkpoints,
            "latest_checkpoint_size": self.latest_checkpoint_size,
            "against_size": self.against_size,
            "since_size": self.since_size,
            "verifier": self.verifier,
            "detail_erased": self.erased,
            "cold_segments": self.tiers.segments if self.tiers else 0,
            "cold_entries": self.tiers.cold if self.tiers else 0,
            "purge_receipts": self.tiers.receipts if self.tiers else 0,
            "purged_ranges": [list(r) for r in self.tiers.purged_ranges] if self.tiers else [],
            "unrecorded_segments": self.tiers.unrecorded if self.tiers else [],
        }


def _open_checkpoints(
    store: StoreReader, verifier: Verifier, origin: str, after: int = 0
) -> list[Checkpoint]:
    """Every stored checkpoint, signature-checked, forming an unbroken signed chain (from
    the first past size ``after``: the rest were checked by an earlier verification)."""
    opened: list[Checkpoint] = []
    previous = 0
    for size, note in store.checkpoints():
        if size <= after:
            previous = size
            continue
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


def _open_against(note: str | None, verifier: Verifier, origin: str) -> Checkpoint | None:
    return None if note is None else _open_note(note, verifier, origin, "--against")


def _open_note(note: str, verifier: Verifier, origin: str, option: str) -> Checkpoint:
    try:
        return Checkpoint.open(note, verifier, origin)
    except NoteError as exc:
        raise NoteError(f"the {option} checkpoint: {exc.message}") from None


@dataclass
class _Tree:
    """Joins chunk results into the whole tree, checking the nodes that span chunks."""

    compact: CompactRange = field(default_factory=CompactRange)
    roots: dict[int, bytes] = field(default_factory=dict)
    erased: list[int] = field(default_factory=list)
    root: bytes = EMPTY_ROOT

    def join(self, chunk: ChunkResult, complete: bool) -> None:
        if chunk.error is not None:
            raise TamperError(*chunk.error)
        before = self.compact.hashes()
        for size, hashes in chunk.at_sizes.items():
            joined = before + hashes
            self.roots[size] = fold(joined) if joined else EMPTY_ROOT
        self.erased += chunk.erased
        if complete:
            (chunk_root,) = chunk.hashes
            if self.compact.append(chunk_root) != chunk.upper_nodes:
                raise TamperError(
                    "modified-hash", "the stored tree nodes were changed", chunk.end - 1
                )
            self.root = self.compact.root()
        else:
            self.root = fold(before + chunk.hashes)


def verify_store(  # noqa: PLR0913 - each is a separate input to what is trusted
    store: StoreReader,
    verifier: Verifier,
    origin: str,
    against: str | None = None,
    *,
    opener: Callable[[], StoreReader] | None = None,
    workers: int | None = None,
    chunk_level: int = LEVEL,
    progress: Callable[[int], object] | None = None,
) -> VerificationReport:
    """Verify everything in ``store``; ``against`` is a checkpoint note kept elsewhere.

    ``opener`` opens more read-only handles on the same store, for worker
    processes; without it the chunks are checked one after another here.
    """
    checkpoints = _open_checkpoints(store, verifier, origin)
    outside = _open_against(against, verifier, origin)
    size = store.size()
    _check_sizes(checkpoints, outside, size)
    if store.search_position() > size:
        raise TamperError(
            "modified-search-index",
            f"the search index has rows up to {store.search_position() - 1}, beyond the log",
            size,
        )
    tiers = check_tiers(store, verifier, origin)
    wanted = sorted({c.size for c in checkpoints} | ({outside.size} if outside else set()) | {0})
    tree = _Tree()
    chunks = run_chunks(
        opener or (lambda: _Borrowed(store)), size, wanted, workers if opener else 1, chunk_level
    )
    with closing(chunks):
        for chunk in chunks:
            tree.join(chunk, complete=chunk.end - chunk.start == 1 << chunk_level)
            if progress is not None:
                progress(chunk.end)
    tree.roots.setdefault(0, EMPTY_ROOT)
    for checkpoint in checkpoints:
        if tree.roots[checkpoint.size] != checkpoint.root:
            raise TamperError(
                "root-mismatch",
                f"the entries do not produce the root signed at size {checkpoint.size}",
                checkpoint.size - 1,
            )
    latest = _signed_to(checkpoints[-1].size if checkpoints else 0, size)
    if outside is not None and tree.roots[outside.size] != outside.root:
        raise TamperError(
            "rewritten",
            f"the log's root at size {outside.size} differs from the checkpoint kept outside it",
        )
    return VerificationReport(
        size=size,
        root=tree.root.hex(),
        checkpoints=len(checkpoints),
        latest_checkpoint_size=latest,
        verifier=str(verifier),
        erased=tree.erased,
        against_size=outside.size if outside else None,
        tiers=tiers,
    )


def verify_since(  # noqa: PLR0913 - as verify_store, plus the checkpoint to start from
    store: StoreReader,
    verifier: Verifier,
    origin: str,
    since_note: str,
    *,
    piece: int = 1 << LEVEL,
    progress: Callable[[int], object] | None = None,
) -> VerificationReport:
    """Verify what was appended after ``since_note``, a checkpoint an earlier verification
    covered: the stored tree at its size must hash to its root, and every entry after
    it is checked as a full verification checks it (leaf, chain, tree nodes, details,
    erasures, search rows), extending that tree up to every later checkpoint, each of
    which must match. Entries before it are trusted as verified then."""
    since = _open_note(since_note, verifier, origin, "--since")
    size = store.size()
    if since.size > size:
        raise TamperError(
            "truncated",
            f"the log holds {size} entries but the --since checkpoint covers {since.size}",
            size,
        )
    checkpoints = _open_checkpoints(store, verifier, origin, after=since.size)
    border = store.nodes(CompactRange.border(since.size)) if since.size else []
    if (fold(border) if border else EMPTY_ROOT) != since.root:
        raise TamperError(
            "rewritten",
            f"the stored tree at size {since.size} is not the one the --since checkpoint signed",
            since.size - 1,
        )
    compact = CompactRange(since.size, border)
    wanted = sorted(c.size for c in checkpoints)
    roots: dict[int, bytes] = {since.size: since.root}
    erased: list[int] = []
    for start in range(since.size, size, piece):
        result = check_range(store, start, min(size, start + piece), wanted, compact)
        if result.error is not None:
            raise TamperError(*result.error)
        roots |= {at: fold(hashes) for at, hashes in result.at_sizes.items()}
        erased += result.erased
        if progress is not None:
            progress(min(size, start + piece))
    for checkpoint in checkpoints:
        if roots.get(checkpoint.size) != checkpoint.root:
            raise TamperError(
                "root-mismatch",
                f"the entries do not produce the root signed at size {checkpoint.size}",
                checkpoint.size - 1,
            )
    latest = _signed_to(checkpoints[-1].size if checkpoints else since.size, size)
    return VerificationReport(
        size=size,
        root=roots[size].hex(),
        checkpoints=len(checkpoints),
        latest_checkpoint_size=latest,
        verifier=str(verifier),
        erased=erased,
        since_size=since.size,
    )


def _signed_to(latest: int, size: int) -> int:
    """``latest``, the size the newest checkpoint covers, which must be the whole log."""
    if latest != size:
        raise TamperError(
            "unsigned-entries",
            f"entries {latest}..{size - 1} are covered by no checkpoint; every batch is signed "
            "when it is committed, so a checkpoint was removed",
            latest,
        )
    return latest


def _check_sizes(checkpoints: list[Checkpoint], outside: Checkpoint | None, size: int) -> None:
    """Entries cut off the end show as checkpoints that cover more than the log holds."""
    for checkpoint in checkpoints:
        if checkpoint.size > size:
            raise TamperError(
                "truncated",
                f"a stored checkpoint covers {checkpoint.size} entries; the log holds {size}",
                size,
            )
    if outside is not None and outside.size > size:
        raise TamperError(
            "truncated",
            f"the log holds {size} entries but a checkpoint signed at size "
            f"{outside.size} was kept outside it: entries were removed from the end",
            size,
        )


class _Borrowed:
    """The caller's own store, lent to in-process chunk checks without closing it."""

    def __init__(self, store: StoreReader) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def close(self) -> None:
        """The lender closes it."""


def read_export(
    lines: Iterable[bytes],
) -> Iterator[tuple[int, dict[str, Any], bytes | None, bytes | None]]:
    """Parse export lines into (line number, entry, detail bytes, salt)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            if "purged" in row:  # a purged entry: its index and kept leaf hash only
                index, leaf = int(row["purged"]), bytes.fromhex(row["leaf_hash"])
                yield number, {"purged": index, "leaf_hash": leaf}, None, None
                continue
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


def _absorb_purged(replay: Replayer, entry: dict[str, Any], number: int) -> int:
    """A purged entry's line: its kept leaf extends the chain and the tree."""
    if entry["purged"] != replay.next_index:
        raise VerificationError("malformed-export", f"line {number}: a purged entry out of order")
    replay.add_purged(replay.next_index, entry["leaf_hash"])
    return int(entry["purged"])


def _absorb_entry(replay: Replayer, entry: dict[str, Any], number: int) -> EntryHead:
    if replay.next_index == 0 and entry.get("index") != 0:
        raise VerificationError(
            "partial-export",
            f"the export starts at entry {entry.get('index')}; checking it against a "
            "checkpoint needs every entry from 0",
        )
    try:
        data = canonical(entry)
    except TrailsealError:
        raise VerificationError("malformed-export", f"line {number}: bad entry") from None
    head, _, _ = replay.add(replay.next_index, data)
    return head


def verify_export(lines: Iterable[bytes], note: str, verifier: Verifier) -> VerificationReport:
    """Verify an export against a signed checkpoint, with no database."""
    checkpoint = Checkpoint.open(note, verifier)
    replay = Replayer({checkpoint.size})
    erased: list[int] = []
    recorded: set[str | None] = set()  # entries whose erasure the log recorded
    purged: list[int] = []
    for number, entry, detail, salt in read_export(lines):
        if "purged" in entry:
            purged.append(_absorb_purged(replay, entry, number))
            continue
        head = _absorb_entry(replay, entry, number)
        check_detail(head.index, head, detail, salt)
        if detail is None and head.event.detail_commitment is not None:
            erased.append(head.index)
        if head.event.action == ERASE_ACTION and trusted(ERASE_ACTION, head.submitter):
            recorded.add((head.event.resource or _NO_TARGET).id)
    unrecorded = [index for index in erased if str(index) not in recorded]
    if unrecorded:
        raise TamperError(
            "missing-detail",
            "the detail was removed without an erasure recorded by the log",
            unrecorded[0],
        )
    if checkpoint.size > replay.next_index:
        raise TamperError(
            "truncated",
            f"the export holds {replay.next_index} entries; the checkpoint covers "
            f"{checkpoint.size}",
            replay.next_index,
        )
    hashes = replay.at_sizes.get(checkpoint.size, [])
    if (fold(hashes) if hashes else EMPTY_ROOT) != checkpoint.root:
        raise TamperError(
            "root-mismatch",
            f"the export does not produce the root signed at size {checkpoint.size}",
        )
    if replay.next_index > checkpoint.size:
        raise VerificationError(
            "uncovered-entries",
            f"entries {checkpoint.size}..{replay.next_index - 1} are not covered by the "
            "checkpoint; verify against a newer one",
            checkpoint.size,
        )
    return VerificationReport(
        size=replay.next_index,
        root=checkpoint.root.hex(),
        checkpoints=1,
        latest_checkpoint_size=checkpoint.size,
        verifier=str(verifier),
        erased=erased,
    )
