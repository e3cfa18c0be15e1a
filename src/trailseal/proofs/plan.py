"""Which perfect subtrees a proof needs (RFC 9162 sections 2.1.3.1 and 2.1.4.1).

A proof element is the hash of a subtree ``D[a:b]``. Every such range in the
RFC's recursion starts on a boundary aligned to a power of two at least as
large as the range, so it splits into a few perfect subtrees, largest first,
whose hashes :func:`fold` combines. A store that keeps every perfect node can
therefore answer any proof with O(log n) point reads and no rehashing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trailseal.proofs.hashing import node_hash


@dataclass(frozen=True, slots=True)
class NodeID:
    """A perfect subtree: ``level`` 0 is a leaf; it covers leaves
    ``[index * 2**level, (index + 1) * 2**level)``."""

    level: int
    index: int


def perfect_nodes(start: int, end: int) -> list[NodeID]:
    """Split ``[start, end)`` into aligned perfect subtrees, left to right."""
    if not 0 <= start <= end:
        raise ValueError(f"bad range [{start}, {end})")
    nodes: list[NodeID] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append(NodeID(level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 hash of consecutive perfect subtrees, largest first."""
    if not hashes:
        raise ValueError("fold needs at least one hash")
    current = hashes[-1]
    for left in reversed(hashes[:-1]):
        current = node_hash(left, current)
    return current


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _path(index: int, start: int, end: int) -> list[tuple[int, int]]:
    """The ranges of PATH(index, D[start:end]), bottom-up."""
    ranges: list[tuple[int, int]] = []
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def _subproof(old: int, start: int, end: int) -> list[tuple[int, int]]:
    """The ranges of SUBPROOF(old, D[start:end], true), bottom-up."""
    ranges: list[tuple[int, int]] = []
    whole = True
    while old != end - start:
        k = _split(end - start)
        if old <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            old -= k
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _plan(ranges: list[tuple[int, int]]) -> list[list[NodeID]]:
    return [perfect_nodes(a, b) for a, b in ranges]


def inclusion_plan(index: int, size: int) -> list[list[NodeID]]:
    """The perfect nodes behind each element of the inclusion proof of ``index``.

    Raises ValueError when ``index`` is not below ``size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    return _plan(_path(index, 0, size))


def consistency_plan(old_size: int, new_size: int) -> list[list[NodeID]]:
    """The perfect nodes behind each element of the consistency proof.

    Edge policy (RFC 9162 leaves both undefined): from size 0, and between
    equal sizes, the proof is empty.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    return _plan(_subproof(old_size, 0, new_size))
