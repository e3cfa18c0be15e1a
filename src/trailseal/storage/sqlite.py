"""The embedded backend: one SQLite file in WAL mode, fsync'd on every commit.

Append-only is enforced three times: the library has no update or delete,
triggers refuse UPDATE and DELETE on entries (with their hashes and
tree nodes), checkpoints, erasures and metadata, and the hashes expose
anything done with the triggers dropped. A detail row may be deleted only
once its erasure is recorded.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from itertools import chain
from operator import itemgetter
from pathlib import Path

from trailseal.errors import ConfigError, StorageError, StoreUnavailableError
from trailseal.proofs import NodeID
from trailseal.storage.base import (
    ACTION_COUNTS,
    ACTIONS,
    MAX_PERIODS,
    TIME_PARTS,
    Erasure,
    Page,
    Purged,
    Receipt,
    SealedEntry,
    SearchRow,
    Segment,
    StoredDetail,
    StoredEntry,
    chunked,
    conditions,
    grouped,
    node_hashes,
    node_rows,
    paged,
    time_periods,
)
from trailseal.storage.cold import ColdReads
from trailseal.storage.narrowing import Sql

SCHEMA_VERSION = "1"
# Entries are ~1 KB rows appended in key order: 64 KiB pages waste ~1% at each
# page's end where 4 KiB pages waste ~12%, and make bulk inserts ~20% faster.
PAGE_SIZE = 65536
_IN_LIST = 500  # indexes in one IN (...) list
_PROTECTED = ("entries", "checkpoints", "erasures", "meta", "search_index")

# Indexes that keep a page of a search in index order without sorting every match of a
# common value (action:record.read, resource:patient, one tenant, a day): a rowid table's
# index on one column is ordered by idx within each value. Added to older logs at open.
_PAGING = """
CREATE INDEX IF NOT EXISTS search_action_idx ON search_index (action);
CREATE INDEX IF NOT EXISTS search_type_idx ON search_index (resource_type);
CREATE INDEX IF NOT EXISTS search_tenant_idx ON search_index (tenant);
CREATE INDEX IF NOT EXISTS search_time ON search_index (time);
"""
# Planner statistics are refreshed (a sampled ANALYZE, milliseconds) when the search
# index has grown by this fraction since: without them SQLite cannot tell a rare action
# from one that is most of the log, and picks an index that sorts half a million rows.
_REANALYZE = 0.1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE entries (
    idx INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    entry BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL,
    -- The perfect Merkle nodes this leaf completed, level 1 first, 32 bytes
    -- each (NULL for none): proofs read them by index, never rehash leaves.
    tree_nodes BLOB
);
CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE details (idx INTEGER PRIMARY KEY, salt BLOB NOT NULL, detail BLOB NOT NULL);
CREATE TABLE erasures (
    idx INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    erased_at TEXT NOT NULL,
    record_index INTEGER NOT NULL
);
-- A derived index for search, filled after appends; rebuildable from entries.
CREATE TABLE search_index (
    idx INTEGER PRIMARY KEY,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    outcome TEXT,
    tenant TEXT,
    time TEXT NOT NULL
);
CREATE INDEX search_actor ON search_index (actor, time);
CREATE INDEX search_action ON search_index (action, time);
CREATE INDEX search_resource ON search_index (resource_type, resource_id, time);
CREATE INDEX search_tenant ON search_index (tenant, time);
{PAGING}CREATE TRIGGER details_no_update BEFORE UPDATE ON details
BEGIN SELECT RAISE(ABORT, 'trailseal: details cannot be changed, only erased'); END;
CREATE TRIGGER details_erase_only BEFORE DELETE ON details
WHEN NOT EXISTS (SELECT 1 FROM erasures WHERE idx = OLD.idx)
BEGIN SELECT RAISE(ABORT, 'trailseal: a detail is removed only by a recorded erasure'); END;
""".replace("{PAGING}", _PAGING)

_TRIGGERS = "".join(
    f"""
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'trailseal: {table} is append-only'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'trailseal: {table} is append-only'); END;
"""
    for table in _PROTECTED
)

# Retention (issue 13): the cold tier's segments, which entries each holds, purged entries
# and the signed purge receipts. An entry's bytes may leave its row only for a recorded
# seal (cold) or purge; a cold entry moves only to a newer segment, and leaves the cold
# tier only by a purge; a detail or a search row goes only by an erasure or a purge.
# Older logs get these at open, once.
_RETENTION_TABLES = """
DROP TRIGGER IF EXISTS entries_no_update;
DROP TRIGGER IF EXISTS entries_no_delete;
DROP TRIGGER IF EXISTS details_erase_only;
DROP TRIGGER IF EXISTS search_index_no_delete;
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, manifest TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cold (idx INTEGER PRIMARY KEY, segment INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS cold_segment ON cold (segment);
CREATE TABLE IF NOT EXISTS purged (
    idx INTEGER PRIMARY KEY, receipt INTEGER NOT NULL, received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    id INTEGER PRIMARY KEY, body TEXT NOT NULL, signature TEXT NOT NULL
);
CREATE TRIGGER entries_vacate_only BEFORE UPDATE ON entries
WHEN NOT (NEW.idx = OLD.idx AND NEW.event_id = OLD.event_id AND NEW.entry = x''
    AND NEW.leaf_hash = OLD.leaf_hash AND NEW.chain_hash = OLD.chain_hash
    AND NEW.tree_nodes IS OLD.tree_nodes
    AND (EXISTS (SELECT 1 FROM cold WHERE idx = OLD.idx)
         OR EXISTS (SELECT 1 FROM purged WHERE idx = OLD.idx)))
BEGIN SELECT RAISE(ABORT, 'trailseal: an entry is only vacated, by a recorded seal or purge'); END;
CREATE TRIGGER entries_vacated_only BEFORE DELETE ON entries
WHEN NOT EXISTS (SELECT 1 FROM cold WHERE idx = OLD.idx)
    AND NOT EXISTS (SELECT 1 FROM purged WHERE idx = OLD.idx)
BEGIN SELECT RAISE(ABORT, 'trailseal: entries is append-only'); END;
CREATE TRIGGER details_erase_only BEFORE DELETE ON details
WHEN NOT EXISTS (SELECT 1 FROM erasures WHERE idx = OLD.idx)
    AND NOT EXISTS (SELECT 1 FROM purged WHERE idx = OLD.idx)
BEGIN SELECT RAISE(ABORT, 'trailseal: a detail is removed only by a recorded erasure'); END;
CREATE TRIGGER search_index_purge_only BEFORE DELETE ON search_index
WHEN NOT EXISTS (SELECT 1 FROM purged WHERE idx = OLD.idx)
BEGIN SELECT RAISE(ABORT, 'trailseal: search_index is append-only'); END;
CREATE TRIGGER cold_forward_only BEFORE UPDATE ON cold
WHEN NEW.idx != OLD.idx OR NEW.segment <= OLD.segment
BEGIN SELECT RAISE(ABORT, 'trailseal: a cold entry only moves to a newer segment'); END;
CREATE TRIGGER cold_purge_only BEFORE DELETE ON cold
WHEN NOT EXISTS (SELECT 1 FROM purged WHERE idx = OLD.idx)
BEGIN SELECT RAISE(ABORT, 'trailseal: a cold entry leaves the cold tier only by a purge'); END;
"""
_RETENTION = _RETENTION_TABLES + "".join(
    f"""
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'trailseal: {table} is append-only'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'trailseal: {table} is append-only'); END;
"""
    for table in ("segments", "purged", "receipts")
)

_UNAVAILABLE = ("full", "readonly", "read-only", "locked", "disk i/o", "unable to open", "busy")


_ROWS_PER_STATEMENT = 1000
_ENTRY_ROW = itemgetter(0, 1, 2, 3, 4, 5)


def insert_rows(
    db: sqlite3.Connection,
    table: str,
    width: int | str,
    rows: Sequence[tuple[object, ...]],
    verb: str = "INSERT",
) -> None:
    """Insert ``rows`` with multi-row VALUES statements, not ``executemany``.

    The sqlite3 module releases the GIL around every statement step; with
    ``executemany`` that is once per row, and each re-acquisition can wait a
    whole switch interval (5 ms) while another thread runs Python. One
    statement per thousand rows keeps appends fast under concurrency.
    ``width`` is the number of columns, or one row's placeholder text.
    """
    one = "(" + ",".join("?" * width) + ")" if isinstance(width, int) else width
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        part = rows[start : start + _ROWS_PER_STATEMENT]
        sql = f"{verb} INTO {table} VALUES {','.join([one] * len(part))}"
        db.execute(sql, list(chain.from_iterable(part)))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _storage_error(exc: sqlite3.Error, doing: str) -> StorageError:
    text = str(exc)
    if any(word in text.lower() for word in _UNAVAILABLE):
        return StoreUnavailableError(f"cannot {doing}: {text}; nothing was changed")
    return StorageError(f"cannot {doing}: {text}; nothing was changed")


def _vacate(db: sqlite3.Connection, indexes: Sequence[int]) -> None:
    """Drop the bytes of the entries at ``indexes`` (a seal or purge is recorded for each):
    each row is deleted and written again without them. Shrinking rows in place would
    leave every page as large as before; rows deleted together free whole pages, which
    later appends reuse, and the rows written again pack densely."""
    marks = ",".join("?" * len(indexes))
    rows = db.execute(
        "SELECT idx, event_id, leaf_hash, chain_hash, tree_nodes FROM entries "  # noqa: S608
        f"WHERE idx IN ({marks}) AND entry != x''",
        list(indexes),
    ).fetchall()
    db.execute(f"DELETE FROM entries WHERE idx IN ({marks}) AND entry != x''", list(indexes))  # noqa: S608
    insert_rows(db, "entries", "(?,?,x'',?,?,?)", rows)


class _Append:
    """The open write transaction of :meth:`SQLiteStore.append_transaction`."""

    def __init__(self, store: SQLiteStore, size: int) -> None:
        self._store = store
        self.size = size
        # One file, one writer at a time (BEGIN IMMEDIATE); a head another process moved
        # shows as a size the sequencer did not expect, so the token never needs to change.
        self.fence = 0

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, int]:
        return self._store.find_ids(event_ids)

    def stored(self, index: int) -> tuple[bytes, bytes | None]:
        return self._store.stored(index)

    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        return self._store.nodes(ids)

    def write(self, entries: Sequence[SealedEntry]) -> None:
        db = self._store.db
        # The first six fields of a SealedEntry are the row; no tree nodes are stored as NULL.
        insert_rows(db, "entries", "(?,?,?,?,?,nullif(?,x''))", list(map(_ENTRY_ROW, entries)))
        insert_rows(
            db,
            "details",
            3,
            [(e.index, e.salt, e.detail) for e in entries if e.detail is not None],
        )
        if entries:
            self.size = entries[-1].index + 1

    def write_checkpoint(self, size: int, note: str) -> None:
        self._store.db.execute("INSERT INTO checkpoints VALUES (?, ?)", (size, note))

    def latest_checkpoint(self) -> tuple[int, str] | None:
        return self._store.latest_checkpoint()

    def last_chain_hash(self) -> bytes | None:
        row = self._store.db.execute(
            "SELECT chain_hash FROM entries ORDER BY idx DESC LIMIT 1"
        ).fetchone()
        return None if row is None else bytes(row[0])


class SQLiteStore:
    """One log in one SQLite file."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self.url = f"sqlite:///{path}"
        # One write transaction at a time on this connection, whichever thread asks.
        self._writing = threading.RLock()
        self._unanalyzed: int | None = None  # search rows indexed since the last ANALYZE
        self.cold = ColdReads(self, path.parent)

    def reader(self) -> SQLiteStore:
        """A read-only connection of its own: it never sees a batch before it commits."""
        return SQLiteStore.open(self.path, readonly=True)

    def opener(self) -> Callable[[], SQLiteStore]:
        return partial(SQLiteStore.open, self.path, readonly=True)

    @staticmethod
    def _connect(
        path: Path, page_size: int | None = None, *, readonly: bool = False
    ) -> sqlite3.Connection:
        if readonly:
            uri = f"{path.resolve().as_uri()}?mode=ro"
            db = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30
            )
            db.execute("PRAGMA cache_size = -65536")
            return db
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        if page_size is not None:  # only takes effect before the first table exists
            db.execute(f"PRAGMA page_size = {int(page_size)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA cache_size = -65536")
        return db

    @classmethod
    def create(cls, path: Path, meta: dict[str, str]) -> SQLiteStore:
        if path.exists():
            raise ConfigError(f"{path} already exists; refusing to overwrite a log")
        try:
            db = cls._connect(path, PAGE_SIZE)
            rows = [("schema_version", SCHEMA_VERSION), *sorted(meta.items())]
            inserts = "".join(
                # Values are quoted by _quote; executescript takes no parameters.
                f"INSERT INTO meta VALUES ({_quote(k)}, {_quote(v)});\n"  # noqa: S608
                for k, v in rows
            )
            db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}{inserts}{_TRIGGERS}{_RETENTION}COMMIT;")
        except sqlite3.Error as exc:
            raise _storage_error(exc, f"create the log at {path}") from None
        return cls(db, path)

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> SQLiteStore:
        """Open an existing log; ``readonly`` for verifiers that must not write."""
        if not path.is_file():
            raise ConfigError(f"no log at {path}; create one with `trailseal init`")
        try:
            db = cls._connect(path, readonly=readonly)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError as exc:
            if not os.access(path.parent, os.W_OK) or "readonly" in str(exc):
                raise StoreUnavailableError(
                    f"cannot open {path}: {exc}. SQLite needs to write its WAL index beside "
                    "the log even to read it, and this directory or disk is read-only: copy "
                    "the data directory to a writable disk, or check an export with "
                    "`trailseal verify-export`"
                ) from None
            raise _storage_error(exc, f"open {path}") from None
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path} is not a trailseal log: {exc}") from None
        if row is None or row[0] != SCHEMA_VERSION:
            raise ConfigError(f"{path} has schema {row and row[0]}; expected {SCHEMA_VERSION}")
        if not readonly:
            try:
                db.executescript(_PAGING)  # a log made before issue 12: seconds, once
                if not db.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'cold_purge_only'"
                ).fetchone():  # a log made before issue 13
                    db.executescript(f"BEGIN IMMEDIATE;\n{_RETENTION}COMMIT;")
            except sqlite3.Error as exc:
                raise _storage_error(exc, f"bring {path}'s schema up to date") from None
        return cls(db, path)

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def size(self) -> int:
        (size,) = self.db.execute("SELECT coalesce(max(idx) + 1, 0) FROM entries").fetchone()
        return int(size)

    @contextmanager
    def append_transaction(self) -> Iterator[_Append]:
        with self._writing:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _storage_error(exc, "start an append") from None
            try:
                yield _Append(self, self.size())
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise _storage_error(exc, "append") from None
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self.db.in_transaction:
            # The transaction may already be gone; either way nothing was committed.
            with suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, int]:
        """The indexes of those ``event_ids`` already stored."""
        found: dict[str, int] = {}
        ids = list(event_ids)
        for start in range(0, len(ids), 30000):
            chunk = ids[start : start + 30000]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT event_id, idx FROM entries WHERE event_id IN ({marks})"  # noqa: S608
            found.update(self.db.execute(sql, chunk).fetchall())
        return found

    def stored(self, index: int) -> tuple[bytes, bytes | None]:
        """The entry bytes and detail salt (None if none or erased) at ``index``."""
        (stored,) = self.entries_at([index])
        row = self.db.execute("SELECT salt FROM details WHERE idx = ?", (index,)).fetchone()
        return stored.entry, row[0] if row else None

    def entries(self, start: int, end: int) -> Iterator[StoredEntry]:
        cursor = self.db.execute(
            "SELECT idx, event_id, entry, leaf_hash, chain_hash, coalesce(tree_nodes, x'') "
            "FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        )
        return self.cold.fill(map(StoredEntry._make, cursor))

    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """Hashes of perfect nodes: a leaf hash, or a slice of the completing leaf's nodes."""
        rows = node_rows(ids)
        marks = ",".join("?" * len(rows))
        sql = f"SELECT idx, leaf_hash, tree_nodes FROM entries WHERE idx IN ({marks})"  # noqa: S608
        found = {index: (leaf, nodes or b"") for index, leaf, nodes in self.db.execute(sql, rows)}
        return node_hashes(ids, found)

    def checkpoints(self) -> list[tuple[int, str]]:
        return self.db.execute("SELECT size, note FROM checkpoints ORDER BY size").fetchall()

    def latest_checkpoint(self) -> tuple[int, str] | None:
        row = self.db.execute(
            "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def details(self, start: int, end: int) -> dict[int, StoredDetail]:
        """Details and erasures of entries in ``[start, end)``, by index."""
        found = {
            index: StoredDetail(index, detail, salt, None)
            for index, detail, salt in self.db.execute(
                "SELECT idx, detail, salt FROM details WHERE idx >= ? AND idx < ?", (start, end)
            )
        }
        for index, reason in self.db.execute(
            "SELECT idx, reason FROM erasures WHERE idx >= ? AND idx < ?", (start, end)
        ):
            kept = found.get(index)
            detail, salt = (kept.detail, kept.salt) if kept else (None, None)
            found[index] = StoredDetail(index, detail, salt, reason)
        return found

    def erasures(self) -> dict[int, Erasure]:
        rows = self.db.execute("SELECT idx, reason, erased_at, record_index FROM erasures")
        return {row[0]: Erasure(*row) for row in rows}

    def erase_detail(self, index: int, reason: str, erased_at: str, record_index: int) -> None:
        with self._writing:
            self._erase_detail(index, reason, erased_at, record_index)

    def _erase_detail(self, index: int, reason: str, erased_at: str, record_index: int) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO erasures VALUES (?, ?, ?, ?)", (index, reason, erased_at, record_index)
            )
            self.db.execute("DELETE FROM details WHERE idx = ?", (index,))
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _storage_error(exc, f"erase the detail of entry {index}") from None

    def index_for_search(self, rows: Sequence[SearchRow]) -> None:
        with self._writing:
            self._index_for_search(rows)

    def _index_for_search(self, rows: Sequence[SearchRow]) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            insert_rows(
                self.db,
                "search_index",
                8,
                [
                    (
                        r.index,
                        r.actor,
                        r.action,
                        r.resource_type,
                        r.resource_id,
                        r.outcome,
                        r.tenant,
                        r.time,
                    )
                    for r in rows
                ],
                verb="INSERT OR IGNORE",  # two searches may catch up at once
            )
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _storage_error(exc, "update the search index") from None
        if rows:
            self._analyze_if_grown(len(rows), rows[-1].index + 1)

    def _analyze_if_grown(self, added: int, indexed: int) -> None:
        """Refresh the planner's statistics when there are none yet, or once the search
        index grew by _REANALYZE since; a sampled ANALYZE costs milliseconds."""
        if self._unanalyzed is None:  # first growth this connection sees
            self._unanalyzed = 0 if self._has_statistics() else sys.maxsize  # none: now
        self._unanalyzed += added
        if self._unanalyzed < max(1000, _REANALYZE * indexed):
            return
        try:
            self.db.execute("PRAGMA analysis_limit = 1000")
            self.db.execute("ANALYZE search_index")
        except sqlite3.Error:
            return  # statistics only guide the planner; a search is right without them
        self._unanalyzed = 0

    def _has_statistics(self) -> bool:
        try:
            found = self.db.execute(
                "SELECT 1 FROM sqlite_stat1 WHERE tbl = 'search_index' LIMIT 1"
            ).fetchone()
        except sqlite3.Error:  # no sqlite_stat1 before the first ANALYZE
            return False
        return found is not None

    def search_position(self) -> int:
        (size,) = self.db.execute("SELECT coalesce(max(idx) + 1, 0) FROM search_index").fetchone()
        return int(size)

    def search_rows(self, start: int, end: int) -> dict[int, tuple[object, ...]]:
        """The search index's rows for ``[start, end)``, as tuples in column order."""
        rows = self.db.execute(
            "SELECT idx, actor, action, resource_type, resource_id, outcome, tenant, time "
            "FROM search_index WHERE idx >= ? AND idx < ?",
            (start, end),
        )
        return {row[0]: row for row in rows}

    def select(self, where: Sql, page: Page) -> list[int]:
        sql, params = paged(where, page)
        return [row[0] for row in self.db.execute(sql, params)]

    def action_counts(self) -> list[tuple[str, int]]:
        return [(str(action), int(count)) for action, count in self.db.execute(ACTION_COUNTS)]

    def actions(self) -> list[str]:
        return [str(action) for (action,) in self.db.execute(ACTIONS)]

    def group_counts(self, where: Sql, field: str, page: Page) -> list[tuple[object, int]]:
        if field in TIME_PARTS:
            return self._time_counts(where, TIME_PARTS[field], page)
        sql, params = grouped(where, field, page)
        return [(value, int(count)) for value, count in self.db.execute(sql, params)]

    def _time_counts(self, where: Sql, width: int, page: Page) -> list[tuple[object, int]]:
        """Counts by a prefix of the time (month, day, hour) as one range count a period,
        each read along an index on time: far faster in SQLite than grouping every row
        by a substring. Past MAX_PERIODS periods, rows are grouped after all."""
        condition, params = conditions(where, page)
        # Apart, each is one probe along an index on time; together they read every row.
        (low,) = self.db.execute(
            f"SELECT min(time) FROM search_index WHERE {condition}",  # noqa: S608
            params,
        ).fetchone()
        (high,) = self.db.execute(
            f"SELECT max(time) FROM search_index WHERE {condition}",  # noqa: S608
            params,
        ).fetchone()
        if low is None:
            return []
        periods = time_periods(str(low)[:width], str(high)[:width])
        if len(periods) > MAX_PERIODS:
            field = {7: "month", 10: "day", 13: "hour"}[width]
            sql, params = grouped(where, field, page)
            return [(value, int(count)) for value, count in self.db.execute(sql, params)]
        counting = f"SELECT count(*) FROM search_index WHERE {condition} AND time >= ? AND time < ?"  # noqa: S608
        found: list[tuple[object, int]] = []
        for start, end in periods:
            (count,) = self.db.execute(counting, [*params, start, end]).fetchone()
            if count:
                found.append((start, int(count)))
        return found

    def entries_at(self, indexes: Sequence[int]) -> list[StoredEntry]:
        found: list[StoredEntry] = []
        for part in chunked(sorted(set(indexes)), _IN_LIST):
            marks = ",".join("?" * len(part))
            columns = "idx, event_id, entry, leaf_hash, chain_hash, coalesce(tree_nodes, x'')"
            sql = f"SELECT {columns} FROM entries WHERE idx IN ({marks}) ORDER BY idx"  # noqa: S608
            found += map(StoredEntry._make, self.db.execute(sql, part))
        return list(self.cold.fill(found))

    def details_at(self, indexes: Sequence[int]) -> dict[int, StoredDetail]:
        found: dict[int, StoredDetail] = {}
        for part in chunked(sorted(set(indexes)), _IN_LIST):
            marks = ",".join("?" * len(part))
            for index, detail, salt in self.db.execute(
                f"SELECT idx, detail, salt FROM details WHERE idx IN ({marks})",  # noqa: S608
                part,
            ):
                found[index] = StoredDetail(index, detail, salt, None)
            for index, reason in self.db.execute(
                f"SELECT idx, reason FROM erasures WHERE idx IN ({marks})",  # noqa: S608
                part,
            ):
                kept = found.get(index)
                detail, salt = (kept.detail, kept.salt) if kept else (None, None)
                found[index] = StoredDetail(index, detail, salt, reason)
        return found

    def segments(self) -> list[Segment]:
        rows = self.db.execute("SELECT id, name, manifest, signature FROM segments ORDER BY id")
        return [Segment(*row) for row in rows]

    def cold_at(self, indexes: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for part in chunked(sorted(set(indexes)), _IN_LIST):
            marks = ",".join("?" * len(part))
            sql = f"SELECT idx, segment FROM cold WHERE idx IN ({marks})"  # noqa: S608
            found.update(self.db.execute(sql, part).fetchall())
        return found

    def cold_counts(self) -> dict[int, int]:
        return dict(self.db.execute("SELECT segment, count(*) FROM cold GROUP BY segment"))

    def cold_indexes(self, segment: int) -> list[int]:
        rows = self.db.execute("SELECT idx FROM cold WHERE segment = ? ORDER BY idx", (segment,))
        return [row[0] for row in rows]

    def purged(self, start: int, end: int) -> dict[int, Purged]:
        rows = self.db.execute(
            "SELECT idx, receipt, received_at FROM purged WHERE idx >= ? AND idx < ?",
            (start, end),
        )
        return {row[0]: Purged(*row) for row in rows}

    def receipts(self) -> list[Receipt]:
        rows = self.db.execute("SELECT id, body, signature FROM receipts ORDER BY id")
        return [Receipt(*row) for row in rows]

    def add_meta(self, key: str, value: str) -> None:
        with self._writing:
            try:
                self.db.execute("INSERT INTO meta VALUES (?, ?)", (key, value))
            except sqlite3.Error as exc:
                raise _storage_error(exc, f"record {key}") from None

    @contextmanager
    def _retention_write(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._writing:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                yield self.db
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise _storage_error(exc, doing) from None
            except BaseException:
                self._rollback()
                raise

    def seal(self, name: str, manifest: str, signature: str, indexes: Sequence[int]) -> int:
        with self._retention_write(f"seal segment {name}") as db:
            cursor = db.execute(
                "INSERT INTO segments (name, manifest, signature) VALUES (?, ?, ?)",
                (name, manifest, signature),
            )
            segment = int(cursor.lastrowid or 0)
            for part in chunked(sorted(set(indexes)), _IN_LIST):
                marks = ",".join("?" * len(part))
                db.execute(
                    "INSERT INTO cold SELECT idx, ? FROM entries "  # noqa: S608
                    f"WHERE idx IN ({marks}) AND true "
                    "ON CONFLICT (idx) DO UPDATE SET segment = excluded.segment",
                    [segment, *part],
                )
                _vacate(db, part)
            return segment

    def purge(
        self, receipt: int, body: str, signature: str, rows: Sequence[tuple[int, str]]
    ) -> None:
        with self._retention_write("purge entries") as db:
            db.execute("INSERT INTO receipts VALUES (?, ?, ?)", (receipt, body, signature))
            insert_rows(db, "purged", 3, [(index, receipt, at) for index, at in rows])
            for part in chunked(sorted(index for index, _ in rows), _IN_LIST):
                marks = ",".join("?" * len(part))
                for statement in (
                    f"DELETE FROM cold WHERE idx IN ({marks})",  # noqa: S608
                    f"DELETE FROM details WHERE idx IN ({marks})",  # noqa: S608
                    f"DELETE FROM search_index WHERE idx IN ({marks})",  # noqa: S608
                ):
                    db.execute(statement, part)
                _vacate(db, part)

    def close(self) -> None:
        self.db.close()
