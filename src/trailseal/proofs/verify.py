"""Proof verification, RFC 9162 sections 2.1.3.2 and 2.1.4.2. Fails closed."""

from __future__ import annotations

from collections.abc import Sequence

from trailseal.errors import ProofError
from trailseal.proofs.hashing import EMPTY_ROOT, node_hash


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != 32:
        raise ProofError(f"{name} is {len(value)} bytes; a SHA-256 hash is 32")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf)
    fn, sn, current = index, size - 1, leaf
    for position, sibling in enumerate(proof):
        _check_hash(f"proof element {position}", sibling)
        if sn == 0:
            raise ProofError(f"proof has {len(proof) - position} element(s) too many")
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is too short for the tree size")
    return current


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows ``leaf`` at ``index`` under ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for index {index} does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the old tree is a prefix of the new.

    Edge policy: from size 0 the proof must be empty and the old root the empty
    root; between equal sizes the proof must be empty and the roots equal.
    """
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree cannot shrink from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        if proof:
            raise ProofError(f"proof from size {old_size} to {new_size} must be empty")
        expected = EMPTY_ROOT if old_size == 0 else new_root
        if old_root != expected:
            raise ProofError(f"old root does not match for sizes {old_size} and {new_size}")
        return
    elements = list(proof)
    if old_size & (old_size - 1) == 0:
        elements.insert(0, old_root)
    old_hash, new_hash = _consistency_roots(old_size, new_size, elements)
    if old_hash != old_root:
        raise ProofError(f"consistency proof does not lead to the old root at size {old_size}")
    if new_hash != new_root:
        raise ProofError(f"consistency proof does not lead to the new root at size {new_size}")


def _consistency_roots(old_size: int, new_size: int, elements: list[bytes]) -> tuple[bytes, bytes]:
    """The old and new roots a consistency proof implies (RFC 9162 2.1.4.2, steps 3 to 6)."""
    if not elements:
        raise ProofError("consistency proof is empty")
    for position, element in enumerate(elements):
        _check_hash(f"proof element {position}", element)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_hash = new_hash = elements[0]
    for element in elements[1:]:
        if sn == 0:
            raise ProofError("consistency proof has too many elements")
        if fn & 1 or fn == sn:
            old_hash = node_hash(element, old_hash)
            new_hash = node_hash(element, new_hash)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            new_hash = node_hash(new_hash, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    return old_hash, new_hash
