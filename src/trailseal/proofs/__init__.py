"""RFC 9162 Merkle tree math: pure functions over hashes, no storage.

The ledger asks these functions which stored nodes a proof needs
(:func:`inclusion_plan`, :func:`consistency_plan`), fetches them, and folds
them with :func:`fold`. Verifiers use :func:`verify_inclusion` and
:func:`verify_consistency`, which raise :class:`trailseal.errors.ProofError`.
"""

from trailseal.proofs.hashing import EMPTY_ROOT, ZERO_CHAIN, chain_hash, leaf_hash, node_hash
from trailseal.proofs.plan import NodeID, consistency_plan, fold, inclusion_plan, perfect_nodes
from trailseal.proofs.tree import CompactRange, completing_leaf
from trailseal.proofs.verify import root_from_inclusion, verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "ZERO_CHAIN",
    "CompactRange",
    "NodeID",
    "chain_hash",
    "completing_leaf",
    "consistency_plan",
    "fold",
    "inclusion_plan",
    "leaf_hash",
    "node_hash",
    "perfect_nodes",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]
