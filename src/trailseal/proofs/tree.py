"""The compact range: the right border of a growing tree, for appends."""

from __future__ import annotations

from trailseal.proofs.hashing import EMPTY_ROOT, node_hash
from trailseal.proofs.plan import NodeID, perfect_nodes


class CompactRange:
    """The perfect subtrees covering leaves ``[0, size)``, largest first.

    Appending a leaf merges equal-sized subtrees and reports every perfect
    node it completed, so a store can keep them for O(log n) proofs.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None) -> None:
        hashes = hashes or []
        if len(hashes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} holds {size.bit_count()} hashes")
        self.size = size
        self._hashes = list(hashes)

    @staticmethod
    def border(size: int) -> list[NodeID]:
        """The perfect nodes whose hashes make up the compact range of ``size``."""
        return perfect_nodes(0, size)

    def append(self, leaf: bytes) -> list[tuple[NodeID, bytes]]:
        """Add one leaf hash; return the perfect nodes (level >= 1) it completed."""
        completed: list[tuple[NodeID, bytes]] = []
        index = self.size
        current = leaf
        level = 0
        while (index >> level) & 1:
            current = node_hash(self._hashes.pop(), current)
            level += 1
            completed.append((NodeID(level, index >> level), current))
        self._hashes.append(current)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """The RFC 9162 root of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        current = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            current = node_hash(left, current)
        return current

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self._hashes)
