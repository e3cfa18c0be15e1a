"""The narrow interface every storage backend implements.

A backend stores sealed entries with the perfect Merkle nodes each completes, the
signed checkpoint of each batch, and erasable details. It never computes a
hash: sequencing and tree math live in the ledger and in
:mod:`trailseal.proofs`. Every write of a batch is one durable transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from trailseal.ledger.entry import SealedEntry
from trailseal.proofs import NodeID


class StoredEntry(NamedTuple):
    """One entries row (a tuple: verification reads millions of them)."""

    index: int  # type: ignore[assignment]  # the glossary's word; shadows tuple.index
    event_id: str
    entry: bytes
    leaf_hash: bytes
    chain_hash: bytes
    tree_nodes: bytes


@dataclass(frozen=True, slots=True)
class StoredDetail:
    index: int
    detail: bytes | None
    salt: bytes | None
    erased_reason: str | None


@dataclass(frozen=True, slots=True)
class Erasure:
    index: int
    reason: str
    erased_at: str
    record_index: int


@dataclass(frozen=True)
class SearchFilter:
    """Conditions on indexed event fields; all given ones must hold."""

    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "*"
    resource_type: str | None = None
    resource_id: str | None = None
    outcome: str | None = None
    tenant: str | None = None
    since: str | None = None  # RFC 3339 UTC, inclusive
    until: str | None = None  # RFC 3339 UTC, exclusive
    limit: int = 1000
    after_index: int = -1  # only entries after this index (cursor pagination)
    below_index: int | None = None  # only entries before this index (a pinned log size)


@dataclass(frozen=True)
class SearchRow:
    """The indexed fields of one entry, for the search index."""

    index: int
    actor: str
    action: str
    resource_type: str | None
    resource_id: str | None
    outcome: str | None
    tenant: str | None
    time: str


class AppendTransaction(Protocol):
    """An open write transaction holding the log's single write lock."""

    size: int

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, int]: ...
    def stored(self, index: int) -> tuple[bytes, bytes | None]: ...
    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]: ...
    def write(self, entries: Sequence[SealedEntry]) -> None: ...
    def write_checkpoint(self, size: int, note: str) -> None: ...
    def latest_checkpoint(self) -> tuple[int, str] | None: ...
    def last_chain_hash(self) -> bytes | None: ...


class Store(Protocol):
    """Storage of one log. Implementations: :class:`trailseal.ledger.sqlite.SQLiteStore`."""

    def meta(self, key: str) -> str | None: ...
    def size(self) -> int: ...
    def find_ids(self, event_ids: Sequence[str]) -> dict[str, int]: ...
    def stored(self, index: int) -> tuple[bytes, bytes | None]: ...
    def append_transaction(self) -> AbstractContextManager[AppendTransaction]: ...
    def entries(self, start: int, end: int) -> Iterator[StoredEntry]: ...
    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]: ...
    def checkpoints(self) -> list[tuple[int, str]]: ...
    def latest_checkpoint(self) -> tuple[int, str] | None: ...
    def details(self, start: int, end: int) -> dict[int, StoredDetail]: ...
    def erasures(self) -> dict[int, Erasure]: ...
    def erase_detail(self, index: int, reason: str, erased_at: str, record_index: int) -> None: ...
    def index_for_search(self, rows: Sequence[SearchRow]) -> None: ...
    def search_position(self) -> int: ...
    def search(self, query: SearchFilter) -> list[int]: ...
    def close(self) -> None: ...
