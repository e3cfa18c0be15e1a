"""The compact range: the right border of a growing tree, for appends."""

from __future__ import annotations

from trailseal.proofs.hashing import EMPTY_ROOT, node_hash
from trailseal.proofs.plan import NodeID, perfect_nodes


def completing_leaf(node: NodeID) -> int:
    """The leaf whose append completes ``node`` (level >= 1)."""
    return ((node.index + 1) << node.level) - 1


class CompactRange:
    """The perfect subtrees covering leaves ``[0, size)``, largest first.

    Appending leaf ``k`` merges equal-sized subtrees and completes the perfect
    nodes of levels 1..t that end at ``k`` (t = trailing one bits of ``k``).
    :meth:`append` returns their hashes concatenated in level order, so a store
    can keep them beside the leaf for O(log n) proofs: the node of level ``L``
    and index ``i`` is bytes ``32*(L-1)`` to ``32*L`` of what leaf
    ``((i + 1) << L) - 1`` completed (see :func:`completing_leaf`).
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

    def append(self, leaf: bytes) -> bytes:
        """Add one leaf hash; return the hashes of the nodes it completed, level 1 first."""
        completed = b""
        index = self.size
        current = leaf
        while index & 1:
            current = node_hash(self._hashes.pop(), current)
            completed += current
            index >>= 1
        self._hashes.append(current)
        self.size += 1
        return completed

    def hashes(self) -> list[bytes]:
        """The perfect subtree hashes covering the range, largest first."""
        return list(self._hashes)

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
