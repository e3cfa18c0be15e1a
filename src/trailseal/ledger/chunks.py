"""Verifying a store in aligned chunks, in parallel processes when the log is large.

Each chunk of ``2**level`` entries is checked on its own: entry indexes, leaf
hashes, every chain link (from the stored chain hash before the chunk), the
tree nodes inside the chunk, details and erasures. It returns the perfect
subtree hashes it forms, so the caller can join chunks into the whole tree and
check the nodes that span chunks. Workers open the store read-only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import orjson

from trailseal.access.actions import trusted
from trailseal.errors import TamperError, VerificationError
from trailseal.ledger.replay import EntryHead, Replayer, check_detail
from trailseal.ledger.search import fields_of
from trailseal.ledger.workers import worker_processes
from trailseal.proofs import ZERO_CHAIN, chain_hash
from trailseal.proofs.tree import CompactRange
from trailseal.storage.base import Erasure, Purged, StoredEntry, StoreReader

LEVEL = 16  # chunks of 65,536 entries
PARALLEL_CHUNKS = 4  # below this many chunks, starting processes costs more than it saves
ERASE_ACTION = "detail.erase"


@dataclass
class ChunkResult:
    """What one chunk ``[start, end)`` contributes to the whole."""

    start: int
    end: int
    hashes: list[bytes] = field(default_factory=list)
    at_sizes: dict[int, list[bytes]] = field(default_factory=dict)
    upper_nodes: bytes = b""
    erased: list[int] = field(default_factory=list)
    purged: list[int] = field(default_factory=list)
    error: tuple[str, str, int | None] | None = None


def verify_chunk(
    opener: Callable[[], StoreReader], start: int, end: int, wanted: list[int], size: int
) -> ChunkResult:
    """Check entries ``[start, end)`` of a chunk of ``size`` entries (fewer only at the
    log's end); never raises a VerificationError, returns it."""
    store = opener()
    try:
        return _check(store, start, end, wanted, size)
    except VerificationError as exc:
        return ChunkResult(start, end, error=(exc.kind, exc.message, exc.index))
    finally:
        store.close()


def check_range(
    store: StoreReader, start: int, end: int, wanted: list[int], compact: CompactRange
) -> ChunkResult:
    """Entries ``[start, end)`` checked as a chunk is, continuing the tree whose compact
    range at ``start`` is ``compact`` (which the entries extend in place): for
    verifying only what was appended after a checkpoint verified before. Its
    ``at_sizes`` hold the whole tree's compact range at each wanted size."""
    return _check(store, start, end, wanted, end - start, compact=compact)


def _check(  # noqa: PLR0913 - a chunk, or a range continuing a known tree
    store: StoreReader,
    start: int,
    end: int,
    wanted: list[int],
    size: int,
    *,
    compact: CompactRange | None = None,
) -> ChunkResult:
    chain = ZERO_CHAIN
    if start:
        before = next(store.entries(start - 1, start), None)
        if before is None:
            raise TamperError("missing-entry", f"entry {start - 1} is missing", start - 1)
        chain = before.chain_hash
    replay = Replayer(wanted, start, chain)
    if compact is not None:
        replay.compact = compact
    details = store.details(start, end)
    result = ChunkResult(start, end)
    erasures: dict[int, Erasure] | None = None
    indexed_end = min(end, store.search_position())
    rows = store.search_rows(start, indexed_end) if indexed_end > start else {}
    purged: dict[int, Purged] | None = None
    for stored in store.entries(start, end):
        last = stored.index + 1 == start + size
        if not stored.entry:  # purged: only its kept hashes and the tree remain to check
            purged = store.purged(start, end) if purged is None else purged
            result.upper_nodes = _check_purged(replay, stored, purged, rows, last=last)
            result.purged.append(stored.index)
            continue
        head, upper = _check_entry(replay, stored, last=last)
        if stored.index < indexed_end:
            _check_search_row(stored, head, rows.get(stored.index))
        result.upper_nodes = upper
        detail = details.get(stored.index)
        if detail is not None:
            check_detail(stored.index, head, detail.detail, detail.salt)
        if head.event.detail_commitment is not None and (detail is None or detail.detail is None):
            erasures = store.erasures() if erasures is None else erasures
            _check_erasure(store, stored.index, erasures.get(stored.index))
            result.erased.append(stored.index)
    if replay.next_index != end:
        raise TamperError(
            "missing-entry",
            f"entries {replay.next_index}..{end - 1} are missing",
            replay.next_index,
        )
    result.hashes = replay.compact.hashes()
    result.at_sizes = replay.at_sizes
    return result


def _check_entry(replay: Replayer, stored: StoredEntry, *, last: bool) -> tuple[EntryHead, bytes]:
    """Replay one stored entry and compare every stored hash; return its head and the
    stored tree nodes above this chunk (only the chunk's last entry has any)."""
    index = stored.index
    if not all(isinstance(value, bytes) for value in stored[2:]):
        # SQLite keeps any value in any column: an entry rewritten as text is damage too.
        raise TamperError("modified-entry", "the entry or its hashes are stored as text", index)
    previous_chain = replay.chain
    head, leaf, nodes = replay.add(index, stored.entry)
    if leaf != stored.leaf_hash:
        damaged = "hash" if chain_hash(previous_chain, leaf) == stored.chain_hash else "entry"
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
    upper = stored.tree_nodes[len(nodes) :]
    if stored.tree_nodes[: len(nodes)] != nodes or (upper and not last):
        raise TamperError("modified-hash", "the stored tree nodes were changed", index)
    return head, upper


def _check_purged(
    replay: Replayer,
    stored: StoredEntry,
    purged: dict[int, Purged],
    rows: dict[int, tuple[object, ...]],
    *,
    last: bool,
) -> bytes:
    """A purged entry: recorded as purged, its kept chain hash and tree nodes still those
    its kept leaf gives, and no search row left; returns its tree nodes above the chunk.
    (That its leaf is the one its signed receipt lists is checked with the receipts.)"""
    index = stored.index
    if index not in purged:
        raise TamperError(
            "modified-entry", "the entry's bytes were removed without a recorded purge", index
        )
    if index in rows:
        raise TamperError("modified-search-index", "a purged entry still has a search row", index)
    nodes = replay.add_purged(index, stored.leaf_hash)
    if replay.chain != stored.chain_hash:
        raise TamperError("modified-hash", "the stored chain hash was changed", index)
    upper = stored.tree_nodes[len(nodes) :]
    if stored.tree_nodes[: len(nodes)] != nodes or (upper and not last):
        raise TamperError("modified-hash", "the stored tree nodes were changed", index)
    return upper


def _check_search_row(stored: StoredEntry, head: EntryHead, row: tuple[object, ...] | None) -> None:
    """The search index is derived from the entries and covered by no hash: its row for
    an indexed entry must be what the entry gives."""
    if row == fields_of(stored.index, head.event):
        return
    raise TamperError(
        "modified-search-index",
        "the search index lacks this entry, so searches would miss it"
        if row is None
        else "the search index's row disagrees with the entry, so searches would find it "
        "where it does not belong or miss it where it does",
        stored.index,
    )


def _check_erasure(store: StoreReader, index: int, erasure: Erasure | None) -> None:
    if erasure is None:
        raise TamperError(
            "missing-detail", "the detail was removed without a recorded erasure", index
        )
    record = next(store.entries(erasure.record_index, erasure.record_index + 1), None)
    if record is not None and not record.entry:
        return  # the erasure's record was purged since; its receipt vouches for it
    entry = orjson.loads(record.entry) if record else {}
    event = entry.get("event", {})
    resource = event.get("resource", {})
    if event.get("action") != ERASE_ACTION or resource.get("id") != str(index):
        raise TamperError(
            "missing-detail",
            f"the erasure names record entry {erasure.record_index}, which does not record it",
            index,
        )
    if not trusted(ERASE_ACTION, entry.get("submitter")):
        raise TamperError(
            "missing-detail",
            f"the erasure's record, entry {erasure.record_index}, was submitted by "
            f"{entry.get('submitter')!r}, not by the log",
            index,
        )


def run_chunks(
    opener: Callable[[], StoreReader],
    size: int,
    wanted: list[int],
    workers: int | None = None,
    level: int = LEVEL,
) -> Generator[ChunkResult, None, None]:
    """Results for every chunk of ``[0, size)``, in order; in processes for large logs."""
    chunk = 1 << level
    spans = [(start, min(start + chunk, size)) for start in range(0, size, chunk)]
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or len(spans) < PARALLEL_CHUNKS:
        for start, end in spans:
            yield verify_chunk(opener, start, end, wanted, chunk)
        return
    done = 0
    pool = worker_processes(count)
    try:
        futures = [
            pool.submit(verify_chunk, opener, start, end, wanted, chunk) for start, end in spans
        ]
        for future in futures:
            result = future.result()
            done += 1
            yield result
    except BrokenProcessPool:
        # Workers could not start (e.g. the main program came from stdin): go on here.
        for start, end in spans[done:]:
            yield verify_chunk(opener, start, end, wanted, chunk)
    finally:
        # Closed early (damage found): chunks not yet started are not needed.
        pool.shutdown(wait=True, cancel_futures=True)
