"""Known-answer vectors: RFC 9162 hashing and proofs, C2SP signed notes.

Corrupted variants of each must fail.
"""

from __future__ import annotations

import pytest

from trailseal.checkpoints import Signer, Verifier, open_note
from trailseal.errors import ConfigError, NoteError, ProofError
from trailseal.proofs import (
    EMPTY_ROOT,
    CompactRange,
    NodeID,
    consistency_plan,
    fold,
    inclusion_plan,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def _leaves(vectors: dict) -> list[bytes]:
    return [leaf_hash(bytes.fromhex(data)) for data in vectors["leaf_data"]]


def _node(leaves: list[bytes], node: NodeID) -> bytes:
    """A naive subtree hash straight from the leaves (RFC 9162 MTH)."""
    start, end = node.index << node.level, (node.index + 1) << node.level

    def mth(a: int, b: int) -> bytes:
        if b - a == 1:
            return leaves[a]
        k = 1 << ((b - a - 1).bit_length() - 1)
        return node_hash(mth(a, a + k), mth(a + k, b))

    return mth(start, end)


def _proof(leaves: list[bytes], plan: list[list[NodeID]]) -> list[bytes]:
    return [fold([_node(leaves, n) for n in element]) for element in plan]


def _root(vectors: dict, size: int) -> bytes:
    return bytes.fromhex(vectors["roots_by_size"][size])


def test_leaf_hashes(vectors: dict) -> None:
    assert [h.hex() for h in _leaves(vectors)] == vectors["leaf_hashes"]


def test_roots_by_size_from_compact_range(vectors: dict) -> None:
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT == _root(vectors, 0)
    for size, leaf in enumerate(_leaves(vectors), start=1):
        compact.append(leaf)
        assert compact.root() == _root(vectors, size)


def test_inclusion_vectors(vectors: dict) -> None:
    leaves = _leaves(vectors)
    for case in vectors["inclusion"]:
        index, size = case["index"], case["size"]
        proof = _proof(leaves, inclusion_plan(index, size))
        assert [p.hex() for p in proof] == case["proof"]
        verify_inclusion(index, size, leaves[index], proof, _root(vectors, size))


def test_consistency_vectors(vectors: dict) -> None:
    leaves = _leaves(vectors)
    for case in vectors["consistency"]:
        old, new = case["old_size"], case["new_size"]
        proof = _proof(leaves, consistency_plan(old, new))
        assert [p.hex() for p in proof] == case["proof"]
        verify_consistency(old, new, _root(vectors, old), _root(vectors, new), proof)


def _flip(data: bytes, bit: int = 0) -> bytes:
    return bytes([data[0] ^ (1 << bit), *data[1:]])


def test_corrupted_inclusion_proofs_fail(vectors: dict) -> None:
    leaves = _leaves(vectors)
    for case in vectors["inclusion"]:
        index, size = case["index"], case["size"]
        proof = [bytes.fromhex(p) for p in case["proof"]]
        root = _root(vectors, size)
        variants: list[tuple[int, int, bytes, list[bytes], bytes]] = [
            (index, size, _flip(leaves[index]), proof, root),
            (index, size, leaves[index], proof, _flip(root, 7)),
            (index, size, leaves[index], [*proof, proof[0] if proof else leaves[0]], root),
            (size, size, leaves[index], proof, root),
            (index + size, size, leaves[index], proof, root),
        ]
        for position in range(len(proof)):
            flipped = list(proof)
            flipped[position] = _flip(flipped[position], position % 8)
            variants.append((index, size, leaves[index], flipped, root))
            variants.append(
                (index, size, leaves[index], proof[:position] + proof[position + 1 :], root)
            )
        for variant in variants:
            with pytest.raises(ProofError):
                verify_inclusion(*variant)


def test_corrupted_consistency_proofs_fail(vectors: dict) -> None:
    for case in vectors["consistency"]:
        old, new = case["old_size"], case["new_size"]
        proof = [bytes.fromhex(p) for p in case["proof"]]
        old_root, new_root = _root(vectors, old), _root(vectors, new)
        variants = [
            (old, new, _flip(old_root), new_root, proof),
            (old, new, old_root, _flip(new_root), proof),
            (old, new, old_root, new_root, [*proof, new_root]),
            (new + 1, new, old_root, new_root, proof),
        ]
        for position in range(len(proof)):
            flipped = list(proof)
            flipped[position] = _flip(flipped[position], 3)
            variants.append((old, new, old_root, new_root, flipped))
            variants.append(
                (old, new, old_root, new_root, proof[:position] + proof[position + 1 :])
            )
        for variant in variants:
            with pytest.raises(ProofError):
                verify_consistency(*variant)


def test_edge_policy_from_zero_and_equal_sizes(vectors: dict) -> None:
    root5 = _root(vectors, 5)
    assert consistency_plan(0, 5) == []
    assert consistency_plan(5, 5) == []
    verify_consistency(0, 5, EMPTY_ROOT, root5, [])
    verify_consistency(5, 5, root5, root5, [])
    with pytest.raises(ProofError):
        verify_consistency(0, 5, root5, root5, [])  # the empty tree's root is fixed
    with pytest.raises(ProofError):
        verify_consistency(5, 5, root5, _root(vectors, 4), [])
    with pytest.raises(ProofError):
        verify_consistency(5, 5, root5, root5, [root5])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_plan(6, 5)
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_plan(5, 5)


def test_signed_note_vectors_verify(vectors: dict) -> None:
    for case in vectors["signed_notes"]:
        verifier = Verifier.from_string(case["vkey"])
        assert str(verifier) == case["vkey"]
        assert open_note(case["note"], verifier) == case["text"]


def test_peter_neumann_note_reproduced_byte_for_byte(vectors: dict) -> None:
    case = next(c for c in vectors["signed_notes"] if "skey" in c)
    signer = Signer.from_string(case["skey"])
    assert signer.to_string() == case["skey"]
    assert str(signer.verifier) == case["vkey"]
    assert signer.sign(case["text"]).encode() == case["note"].encode()


def test_tampered_or_foreign_notes_fail(vectors: dict) -> None:
    case = next(c for c in vectors["signed_notes"] if "skey" in c)
    verifier = Verifier.from_string(case["vkey"])
    tampered = case["note"].replace("cryptography", "cryptographY")
    with pytest.raises(NoteError, match="does not verify"):
        open_note(tampered, verifier)
    other = Verifier.from_string(vectors["signed_notes"][0]["vkey"])
    with pytest.raises(NoteError, match="not signed by"):
        open_note(case["note"], other)
    resigned = Signer.generate("PeterNeumann").sign(case["text"])
    with pytest.raises(NoteError):
        open_note(resigned, verifier)
    with pytest.raises(NoteError):
        open_note(case["text"], verifier)


@pytest.mark.parametrize(
    "text",
    [
        "nobody",
        "a+b+c",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "PeterNeumann+c74f20a3+!!!",
    ],
)
def test_bad_verifier_keys_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        Verifier.from_string(text)
