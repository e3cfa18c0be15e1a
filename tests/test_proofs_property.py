"""Property tests: proofs from stored perfect nodes equal a naive RFC 9162 reference."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from trailseal.errors import ProofError
from trailseal.proofs import (
    CompactRange,
    NodeID,
    completing_leaf,
    consistency_plan,
    fold,
    inclusion_plan,
    leaf_hash,
    node_hash,
    perfect_nodes,
    verify_consistency,
    verify_inclusion,
)


def _leaves(size: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(size)]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, written as the RFC states it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], *, whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, leaves[:k], whole=whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], whole=False), mth(leaves[:k])]


class NodeStore:
    """What a backend keeps: leaf hashes and the nodes each leaf completed."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.completed: list[bytes] = []
        compact = CompactRange()
        for leaf in leaves:
            self.completed.append(compact.append(leaf))
        self.root = compact.root()

    def get(self, node: NodeID) -> bytes:
        if node.level == 0:
            return self.leaves[node.index]
        blob = self.completed[completing_leaf(node)]
        return blob[32 * (node.level - 1) : 32 * node.level]

    def proof(self, plan: list[list[NodeID]]) -> list[bytes]:
        return [fold([self.get(n) for n in element]) for element in plan]


sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=150, deadline=None)
@given(sizes, st.data())
def test_inclusion_matches_reference(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    store = NodeStore(leaves)
    assert store.root == mth(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = store.proof(inclusion_plan(index, size))
    assert proof == path(index, leaves)
    verify_inclusion(index, size, leaves[index], proof, store.root)
    if proof:
        broken = list(proof)
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        broken[position] = bytes([broken[position][0] ^ 1, *broken[position][1:]])
        try:
            verify_inclusion(index, size, leaves[index], broken, store.root)
        except ProofError:
            pass
        else:
            raise AssertionError("a flipped proof element verified")


@settings(max_examples=150, deadline=None)
@given(sizes, st.data())
def test_consistency_matches_reference(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    store = NodeStore(leaves)
    old = data.draw(st.integers(min_value=1, max_value=size))
    proof = store.proof(consistency_plan(old, size))
    assert proof == subproof(old, leaves, whole=True)
    verify_consistency(old, size, mth(leaves[:old]), store.root, proof)
    if old < size:
        other = [*_leaves(old + 1)[1:], leaves[0]]  # a different history of the same length
        try:
            verify_consistency(old, size, mth(other[:old]), store.root, proof)
        except ProofError:
            pass
        else:
            raise AssertionError("a rewritten history was accepted as consistent")


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=10_000))
def test_perfect_nodes_cover_the_range_exactly(a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    covered = []
    for node in perfect_nodes(start, end):
        width = 1 << node.level
        assert (node.index * width) % width == 0
        covered.extend(range(node.index * width, (node.index + 1) * width))
    assert covered == list(range(start, end))
