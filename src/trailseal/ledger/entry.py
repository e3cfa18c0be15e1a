"""Sealing: an event becomes an entry with its index, receipt time and detail commitment.

The entry is ``{"event", "index", "received_at"}`` in RFC 8785 bytes. The
event's ``detail`` is replaced by ``detail_commitment``, the hex SHA-256 of a
fresh 16-byte salt followed by the detail's canonical bytes. The detail and
salt are kept beside the entry, so erasing them later leaves every hash intact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from trailseal.events import Event, canonical

SALT_BYTES = 16


def utc_now() -> str:
    """The current time as RFC 3339 UTC with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def commitment(salt: bytes, detail: bytes) -> str:
    """``hex(SHA-256(salt || detail))``, where ``detail`` is canonical bytes."""
    return hashlib.sha256(salt + detail).hexdigest()


@dataclass(frozen=True, slots=True)
class SealedEntry:
    """What the store keeps for one index."""

    index: int
    event_id: str
    entry: bytes
    leaf_hash: bytes
    chain_hash: bytes
    detail: bytes | None
    salt: bytes | None


@dataclass(frozen=True, slots=True)
class Unsealed:
    """An event split into the part the entry holds and its detail's canonical bytes."""

    event_id: str
    body: dict[str, Any]
    detail: bytes | None

    @classmethod
    def of(cls, event: Event) -> Unsealed:
        body: dict[str, Any] = msgspec.to_builtins(event)
        detail = body.pop("detail", None)
        return cls(event.id, body, None if detail is None else canonical(detail))

    def entry_bytes(self, index: int, received_at: str, salt: bytes | None) -> bytes:
        body = self.body
        if self.detail is not None:
            assert salt is not None
            body = {**body, "detail_commitment": commitment(salt, self.detail)}
        return canonical({"event": body, "index": index, "received_at": received_at})

    def same_as(self, other: Unsealed) -> bool:
        return self.body == other.body and self.detail == other.detail

    def matches_stored(self, entry: bytes, salt: bytes | None) -> bool:
        """Whether this event is the one stored as ``entry`` (for idempotent resends)."""
        stored = dict(orjson.loads(entry)["event"])
        stored_commitment = stored.pop("detail_commitment", None)
        if stored != self.body or (stored_commitment is None) != (self.detail is None):
            return False
        if self.detail is None or salt is None:  # no detail, or erased: nothing more to compare
            return True
        return bool(commitment(salt, self.detail) == stored_commitment)
