"""Hash functions of RFC 9162 section 2.1.1 and the entry chain."""

from __future__ import annotations

from hashlib import sha256

EMPTY_ROOT = sha256(b"").digest()
"""The root of the empty tree: SHA-256 of the empty string (RFC 9162 2.1.1)."""

ZERO_CHAIN = bytes(32)
"""The chain hash the first entry chains from."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return sha256(b"\x01" + left + right).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """``SHA-256(previous chain hash || leaf hash)``."""
    return sha256(previous + leaf).digest()
