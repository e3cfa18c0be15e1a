"""Replaying entries: recompute leaf hashes, the chain and the tree, one index at a time.

Shared by verification of a store (chunk by chunk, possibly in parallel) and
of an export (one pass, no database).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec

from trailseal.errors import TamperError
from trailseal.ledger.search import IndexedActor, IndexedOutcome, IndexedResource
from trailseal.proofs import ZERO_CHAIN, CompactRange, chain_hash, leaf_hash


class _EventHead(msgspec.Struct, gc=False):
    id: str
    actor: IndexedActor
    action: str
    time: str
    detail_commitment: str | None = None
    # what the search index holds, so that verification decodes each entry once
    resource: IndexedResource | None = None
    outcome: IndexedOutcome | None = None


class EntryHead(msgspec.Struct, gc=False):
    """The parts of an entry verification reads; the rest is skipped unparsed."""

    event: _EventHead
    index: int
    submitter: str | None = None


_HEAD = msgspec.json.Decoder(EntryHead)


class Replayer:
    """Recomputes entries ``start, start+1, ...``: their chain from ``chain`` and the
    perfect subtrees they form (``start`` must be aligned to a power of two at
    least as large as the range replayed)."""

    def __init__(
        self, wanted_sizes: Iterable[int], start: int = 0, chain: bytes = ZERO_CHAIN
    ) -> None:
        self.start = start
        self.next_index = start
        self.compact = CompactRange()
        self.chain = chain
        self.at_sizes: dict[int, list[bytes]] = {}
        self._wanted = {size for size in wanted_sizes if size >= start}
        if start in self._wanted:
            self.at_sizes[start] = []

    def add(self, index: int, entry: bytes) -> tuple[EntryHead, bytes, bytes]:
        """Check and absorb the entry stored at ``index``.

        Returns its head, its leaf hash and the tree nodes it completed
        (within this replay's range).
        """
        if index != self.next_index:
            raise TamperError(
                "missing-entry",
                f"entries jump from {self.next_index - 1} to {index}",
                self.next_index,
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
        self.next_index = index + 1
        if self.next_index in self._wanted:
            self.at_sizes[self.next_index] = self.compact.hashes()
        return head, leaf, nodes

    def add_purged(self, index: int, leaf: bytes) -> bytes:
        """Absorb a purged entry from its kept leaf hash (its bytes are gone, so only the
        chain and the tree over it can be checked); returns the tree nodes it completed."""
        if index != self.next_index:
            raise TamperError(
                "missing-entry",
                f"entries jump from {self.next_index - 1} to {index}",
                self.next_index,
            )
        self.chain = chain_hash(self.chain, leaf)
        nodes = self.compact.append(leaf)
        self.next_index = index + 1
        if self.next_index in self._wanted:
            self.at_sizes[self.next_index] = self.compact.hashes()
        return nodes


def check_detail(index: int, head: EntryHead, detail: bytes | None, salt: bytes | None) -> None:
    """A present detail must match the entry's commitment."""
    if detail is None:
        return
    committed = head.event.detail_commitment
    if committed is None or salt is None:
        raise TamperError("modified-detail", "a detail is stored for an entry without one", index)
    if hashlib.sha256(salt + detail).hexdigest() != committed:
        raise TamperError("modified-detail", "the detail does not match its commitment", index)
