"""The narrow interface every storage backend implements, in two halves.

A backend stores sealed entries with the perfect Merkle nodes each completes, the
signed checkpoint of each batch, and erasable details. It never computes a
hash: sequencing and tree math live in the ledger and in
:mod:`trailseal.proofs`. Every write of a batch is one durable transaction.

:class:`StoreReader` is what verification, proofs and search read;
:class:`StoreWriter` is what the sequencer, erasures and the search index write.
A :class:`Store` is both, and hands out read handles of its own (which never see
a batch before it commits) and an opener of more for worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple, Protocol

from trailseal.errors import StorageError
from trailseal.proofs import NodeID, completing_leaf
from trailseal.query import Node
from trailseal.storage.narrowing import Sql

if TYPE_CHECKING:
    from trailseal.storage.cold import ColdReads


class SealedEntry(NamedTuple):
    """What the store keeps for one index (a tuple: millions are made)."""

    index: int  # type: ignore[assignment]  # the glossary's word; shadows tuple.index
    event_id: str
    entry: bytes
    leaf_hash: bytes
    chain_hash: bytes
    tree_nodes: bytes
    detail: bytes | None
    salt: bytes | None


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


@dataclass(frozen=True, slots=True)
class Segment:
    """A sealed cold-tier segment as the hot store records it: its name, its manifest
    (JSON) and the log's signed note over the manifest."""

    id: int
    name: str
    manifest: str
    signature: str


@dataclass(frozen=True, slots=True)
class Purged:
    """An entry whose event and detail were purged: the receipt that lists it, and when
    the log received it (periods and bisections still need that)."""

    index: int
    receipt: int
    received_at: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """A signed purge receipt: its body (JSON) and the log's signed note over it."""

    id: int
    body: str
    signature: str


@dataclass(frozen=True)
class SearchFilter:
    """Conditions on event fields; all given ones must hold. ``where`` is a parsed query
    (the search language); the other fields are its shorthands (the older flags)."""

    where: Node | None = None
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
    newest_first: bool = False  # the highest indexes first (then after_index/below_index page)
    text: str | None = None  # the query as written, for the log's record of the search


@dataclass(frozen=True)
class Page:
    """Which part of a search to read: after ``after_index``, before ``below_index``
    (a pinned log size), oldest or newest first, at most ``limit``."""

    limit: int
    after_index: int = -1
    below_index: int | None = None
    newest_first: bool = False


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
    """An open write transaction holding the log's single write lock.

    ``fence`` is the writer's fencing token: it changes whenever another writer (another
    process) appended since this one last did, so a sequencer holding the log's head in
    memory knows to read it again instead of appending from a stale head."""

    size: int
    fence: int

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, int]: ...
    def stored(self, index: int) -> tuple[bytes, bytes | None]: ...
    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]: ...
    def write(self, entries: Sequence[SealedEntry]) -> None: ...
    def write_checkpoint(self, size: int, note: str) -> None: ...
    def latest_checkpoint(self) -> tuple[int, str] | None: ...
    def last_chain_hash(self) -> bytes | None: ...


class StoreReader(Protocol):
    """Reading one log: entries, tree nodes, checkpoints, details, the search index."""

    cold: ColdReads  # reads the cold tier's segments for it

    def meta(self, key: str) -> str | None: ...
    def size(self) -> int: ...
    def find_ids(self, event_ids: Sequence[str]) -> dict[str, int]: ...
    def stored(self, index: int) -> tuple[bytes, bytes | None]: ...
    def entries(self, start: int, end: int) -> Iterator[StoredEntry]: ...
    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]: ...
    def checkpoints(self) -> list[tuple[int, str]]: ...
    def latest_checkpoint(self) -> tuple[int, str] | None: ...
    def details(self, start: int, end: int) -> dict[int, StoredDetail]: ...
    def erasures(self) -> dict[int, Erasure]: ...
    def search_position(self) -> int: ...
    def select(self, where: Sql, page: Page) -> list[int]:
        """Indexes of search-index rows meeting ``where`` within the page's bounds,
        in the page's order, at most ``page.limit``."""
        ...

    def action_counts(self) -> list[tuple[str, int]]:
        """How many entries the search index holds for each action (most first)."""
        ...

    def actions(self) -> list[str]:
        """Every action the search index holds, in order (without counting them)."""
        ...

    def group_counts(self, where: Sql, field: str, page: Page) -> list[tuple[object, int]]:
        """How many search-index rows meeting ``where`` within the page's index bounds
        have each value of ``field`` (one of :data:`GROUPS`), in no particular order."""
        ...

    def entries_at(self, indexes: Sequence[int]) -> list[StoredEntry]:
        """The stored entries at these indexes (any missing are left out), in index order."""
        ...

    def details_at(self, indexes: Sequence[int]) -> dict[int, StoredDetail]:
        """Details and erasures of the entries at these indexes, by index."""
        ...

    def search_rows(self, start: int, end: int) -> dict[int, tuple[object, ...]]: ...

    # -- the cold tier and purges (retention) --
    def segments(self) -> list[Segment]:
        """Every segment ever sealed, oldest first (a retired one has no cold entries)."""
        ...

    def cold_at(self, indexes: Sequence[int]) -> dict[int, int]:
        """The segment id holding each of these indexes that is in the cold tier."""
        ...

    def cold_counts(self) -> dict[int, int]:
        """How many cold entries each live segment holds, by segment id."""
        ...

    def cold_indexes(self, segment: int) -> list[int]:
        """The indexes a segment holds, in order."""
        ...

    def purged(self, start: int, end: int) -> dict[int, Purged]:
        """The purged entries in ``[start, end)``, by index."""
        ...

    def receipts(self) -> list[Receipt]: ...
    def close(self) -> None: ...


class StoreWriter(Protocol):
    """Appending to one log: batches (one durable transaction each), erasures, the
    derived search index, and retention's seals and purges. Nothing here changes an
    entry's hashes; an entry's bytes leave only by a recorded seal or purge."""

    def append_transaction(self) -> AbstractContextManager[AppendTransaction]: ...
    def erase_detail(self, index: int, reason: str, erased_at: str, record_index: int) -> None: ...
    def index_for_search(self, rows: Sequence[SearchRow]) -> None: ...
    def add_meta(self, key: str, value: str) -> None:
        """Record a setting once (the cold tier's location); never changed after."""
        ...

    def seal(self, name: str, manifest: str, signature: str, indexes: Sequence[int]) -> int:
        """Record a segment and move these entries to it, in one transaction: each entry's
        bytes leave the hot store (its hashes and tree nodes stay). Entries already cold
        move to this newer segment. Returns the segment's id."""
        ...

    def purge(
        self, receipt: int, body: str, signature: str, rows: Sequence[tuple[int, str]]
    ) -> None:
        """Record purge receipt ``receipt`` (its id, which its signature names) and purge
        the entries ``rows`` lists (index, received at), in one transaction: their bytes,
        details and search rows go, their hashes and tree nodes stay."""
        ...


class Store(StoreReader, StoreWriter, Protocol):
    """Storage of one log: :class:`~trailseal.storage.sqlite.SQLiteStore` (embedded) or
    :class:`~trailseal.storage.postgres.PostgresStore` (server)."""

    url: str  # where it is, without secrets: for messages

    def reader(self) -> StoreReader:
        """A read handle of its own, which never sees a batch before it commits."""
        ...

    def opener(self) -> Callable[[], StoreReader]:
        """A picklable callable opening more read handles (for worker processes)."""
        ...


# -- pure helpers both backends share (no I/O) ------------------------------------------


def node_rows(ids: Sequence[NodeID]) -> list[int]:
    """The entry rows holding these perfect nodes: a leaf's own row, or the row of the
    leaf that completed the node (whose ``tree_nodes`` hold it)."""
    return sorted({completing_leaf(n) if n.level else n.index for n in ids})


def node_hashes(ids: Sequence[NodeID], rows: dict[int, tuple[bytes, bytes]]) -> list[bytes]:
    """Each node's hash from ``rows`` (index: (leaf hash, tree nodes)); a missing one is a
    StorageError, since a sound store has every node it reports."""
    hashes: list[bytes] = []
    for node in ids:
        if node.level == 0:
            row = rows.get(node.index)
            digest = row[0] if row else b""
        else:
            row = rows.get(completing_leaf(node))
            digest = row[1][32 * (node.level - 1) : 32 * node.level] if row else b""
        if len(digest) != 32:
            raise StorageError(
                f"the store lacks tree node (level {node.level}, index {node.index}); "
                "run `trailseal verify`"
            )
        hashes.append(digest)
    return hashes


ACTION_COUNTS = "SELECT action, count(*) FROM search_index GROUP BY action ORDER BY 2 DESC, 1"
# Every distinct action, one index probe each (a loose index scan over search_action):
# milliseconds where a GROUP BY reads every row.
ACTIONS = (
    "WITH RECURSIVE a(action) AS (SELECT min(action) FROM search_index UNION ALL "
    "SELECT (SELECT min(action) FROM search_index WHERE action > a.action) FROM a "
    "WHERE a.action IS NOT NULL) SELECT action FROM a WHERE action IS NOT NULL"
)


# What a count can group by in SQL: the search index's columns, and parts of its
# fixed-width time (which the entries' own readers give the same way).
GROUPS = {
    "actor": "actor",
    "action": "action",
    "tenant": "tenant",
    "outcome": "outcome",
    "resource_type": "resource_type",
    "month": "substr(time, 1, 7)",
    "day": "substr(time, 1, 10)",
    "hour": "substr(time, 1, 13)",
}


TIME_PARTS = {"month": 7, "day": 10, "hour": 13}  # how much of the fixed-width time each is
MAX_PERIODS = 5000  # more periods than this are counted by grouping rows instead


def time_periods(first: str, last: str) -> list[tuple[str, str]]:
    """Every month (``YYYY-MM``), day (``YYYY-MM-DD``) or hour (``YYYY-MM-DDTHH``) from
    ``first`` to ``last`` as ``[start, next start)`` bounds on the fixed-width time text;
    no more than MAX_PERIODS + 1 of them (the caller then counts otherwise)."""
    width = len(first)
    shape = {7: "%Y-%m", 10: "%Y-%m-%d", 13: "%Y-%m-%dT%H"}[width]
    moment = datetime.strptime(first + "+0000", shape + "%z").astimezone(UTC)
    periods: list[tuple[str, str]] = []
    while moment.isoformat()[:width] <= last and len(periods) <= MAX_PERIODS:
        if width == 7:
            following = (moment + timedelta(days=32)).replace(day=1)
        else:
            following = moment + (timedelta(days=1) if width == 10 else timedelta(hours=1))
        periods.append((moment.isoformat()[:width], following.isoformat()[:width]))
        moment = following
    return periods


def conditions(where: Sql, page: Page) -> tuple[str, list[object]]:
    """``where`` within the page's index bounds, as SQL with ``?`` placeholders."""
    clauses, params = [where.text], [*where.params]
    if page.after_index >= 0:  # "after -1" bounds nothing, and would steer the planner
        clauses.append("idx > ?")
        params.append(page.after_index)
    if page.below_index is not None:
        clauses.append("idx < ?")
        params.append(page.below_index)
    return " AND ".join(clauses), params


def grouped(where: Sql, field: str, page: Page) -> tuple[str, list[object]]:
    """The SELECT counting search-index rows meeting ``where`` within the page's index
    bounds by one of :data:`GROUPS`, ``?`` placeholders."""
    condition, params = conditions(where, page)
    sql = f"SELECT {GROUPS[field]}, count(*) FROM search_index WHERE {condition} GROUP BY 1"  # noqa: S608
    return sql, params


def paged(where: Sql, page: Page) -> tuple[str, list[object]]:
    """The SELECT of one page of a search over the search index, ``?`` placeholders."""
    clauses, params = [where.text, "idx > ?"], [*where.params, page.after_index]
    if page.below_index is not None:
        clauses.append("idx < ?")
        params.append(page.below_index)
    order = "DESC" if page.newest_first else "ASC"
    sql = f"SELECT idx FROM search_index WHERE {' AND '.join(clauses)} ORDER BY idx {order} LIMIT ?"  # noqa: S608
    return sql, [*params, page.limit]


def chunked(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
