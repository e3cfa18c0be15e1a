"""The server backend: one log in a schema of a PostgreSQL database (psycopg 3).

Written on its own, beside the SQLite backend; the two share only the pure helpers
of :mod:`trailseal.storage.base`. Append-only is enforced twice, besides the hashes:

- triggers refuse UPDATE, DELETE and TRUNCATE on entries, checkpoints, erasures,
  meta and the search index (a detail may be deleted only once its erasure is
  recorded);
- privileges: ``trailseal init`` creates the schema owned by the role
  ``<schema>_owner`` and grants ``<schema>_service`` only SELECT and INSERT on
  those tables (and DELETE on details, for erasures). Every connection trailseal
  makes switches to ``<schema>_service`` (``SET ROLE``), so its own statements are
  held to those grants even when it logs in as the database's owner.

One writer at a time per log: every append transaction takes a transaction-level
advisory lock on the log, then reads the log's head under it. The ``writer`` row
carries a fencing token that changes whenever a different process appends, so a
sequencer that kept the head in memory reads it again instead of forking the log.
Group commit is the sequencer's; a batch is one transaction written with COPY.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.errors import DuplicateSchema, InsufficientPrivilege, RaiseException

from trailseal.errors import AlreadyExistsError, ConfigError, StorageError, StoreUnavailableError
from trailseal.proofs import NodeID
from trailseal.storage import describe
from trailseal.storage.base import (
    ACTION_COUNTS,
    ACTIONS,
    Erasure,
    Page,
    Purged,
    Receipt,
    SealedEntry,
    SearchRow,
    Segment,
    StoredDetail,
    StoredEntry,
    grouped,
    node_hashes,
    node_rows,
    paged,
)
from trailseal.storage.cold import ColdReads
from trailseal.storage.narrowing import Sql
from trailseal.storage.state import DETECTION, PRINCIPALS, STATE_TABLES, StateDatabase
from trailseal.storage.state import schema as schema_of

SCHEMA_VERSION = "1"
DEFAULT_SCHEMA = "trailseal"
_PROTECTED = ("entries", "checkpoints", "erasures", "meta", "search_index")
# Tables of state that is not the log (principals, detection): the service updates them.
MUTABLE = ("writer", *STATE_TABLES)

_TABLES = """
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE entries (
    idx bigint PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    entry bytea NOT NULL,
    leaf_hash bytea NOT NULL,
    chain_hash bytea NOT NULL,
    tree_nodes bytea
);
CREATE TABLE checkpoints (size bigint PRIMARY KEY, note text NOT NULL);
CREATE TABLE details (idx bigint PRIMARY KEY, salt bytea NOT NULL, detail bytea NOT NULL);
CREATE TABLE erasures (
    idx bigint PRIMARY KEY,
    reason text NOT NULL,
    erased_at text NOT NULL,
    record_index bigint NOT NULL
);
CREATE TABLE search_index (
    idx bigint PRIMARY KEY,
    actor text COLLATE "C" NOT NULL,
    action text COLLATE "C" NOT NULL,
    resource_type text COLLATE "C",
    resource_id text COLLATE "C",
    outcome text COLLATE "C",
    tenant text COLLATE "C",
    time text COLLATE "C" NOT NULL
);
CREATE INDEX search_actor ON search_index (actor, time);
CREATE INDEX search_action ON search_index (action, time);
CREATE INDEX search_resource ON search_index (resource_type, resource_id, time);
CREATE INDEX search_tenant ON search_index (tenant, time);
CREATE TABLE writer (one boolean PRIMARY KEY DEFAULT true CHECK (one), holder text NOT NULL,
                     token bigint NOT NULL);
INSERT INTO writer VALUES (true, '', 0);
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'trailseal: % is append-only', TG_TABLE_NAME; END $$;
CREATE FUNCTION erase_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM erasures WHERE idx = OLD.idx) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'trailseal: a detail is removed only by a recorded erasure';
END $$;
CREATE TRIGGER details_erase_only BEFORE UPDATE OR DELETE ON details
    FOR EACH ROW EXECUTE FUNCTION erase_only();
CREATE TRIGGER details_no_truncate BEFORE TRUNCATE ON details
    FOR EACH STATEMENT EXECUTE FUNCTION refuse();
"""

_TRIGGERS = "".join(
    f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION refuse();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION refuse();
"""
    for table in _PROTECTED
)


# Retention (issue 13), as in the SQLite backend: an entry's bytes leave its row only for
# a recorded seal or purge, a cold entry moves only to a newer segment and leaves only by
# a purge, a detail or a search row goes only by an erasure or a purge. Run as the owner
# at create, and once at open for a log made before.
_RETENTION_TABLES = """
CREATE TABLE IF NOT EXISTS segments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE,
    manifest text NOT NULL, signature text NOT NULL
);
CREATE TABLE IF NOT EXISTS cold (idx bigint PRIMARY KEY, segment bigint NOT NULL);
CREATE INDEX IF NOT EXISTS cold_segment ON cold (segment);
CREATE TABLE IF NOT EXISTS purged (
    idx bigint PRIMARY KEY, receipt bigint NOT NULL, received_at text NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL,
    signature text NOT NULL
);
CREATE OR REPLACE FUNCTION erase_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND (EXISTS (SELECT 1 FROM erasures WHERE idx = OLD.idx)
                             OR EXISTS (SELECT 1 FROM purged WHERE idx = OLD.idx)) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'trailseal: a detail is removed only by a recorded erasure';
END $$;
CREATE OR REPLACE FUNCTION vacate_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.idx = OLD.idx AND NEW.event_id = OLD.event_id AND NEW.entry = ''::bytea
       AND NEW.leaf_hash = OLD.leaf_hash AND NEW.chain_hash = OLD.chain_hash
       AND NEW.tree_nodes IS NOT DISTINCT FROM OLD.tree_nodes
       AND (EXISTS (SELECT 1 FROM cold WHERE idx = OLD.idx)
            OR EXISTS (SELECT 1 FROM purged WHERE idx = OLD.idx)) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'trailseal: an entry is only vacated, by a recorded seal or purge';
END $$;
CREATE OR REPLACE FUNCTION purge_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM purged WHERE idx = OLD.idx) THEN RETURN OLD; END IF;
    RAISE EXCEPTION 'trailseal: % keeps this row until it is purged', TG_TABLE_NAME;
END $$;
CREATE OR REPLACE FUNCTION forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.idx = OLD.idx AND NEW.segment > OLD.segment THEN RETURN NEW; END IF;
    RAISE EXCEPTION 'trailseal: a cold entry only moves to a newer segment';
END $$;
DROP TRIGGER IF EXISTS entries_append_only ON entries;
DROP TRIGGER IF EXISTS search_index_append_only ON search_index;
CREATE TRIGGER entries_vacate_only BEFORE UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION vacate_only();
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse();
CREATE TRIGGER search_index_no_update BEFORE UPDATE ON search_index
    FOR EACH ROW EXECUTE FUNCTION refuse();
CREATE TRIGGER search_index_purge_only BEFORE DELETE ON search_index
    FOR EACH ROW EXECUTE FUNCTION purge_only();
CREATE TRIGGER cold_forward_only BEFORE UPDATE ON cold
    FOR EACH ROW EXECUTE FUNCTION forward_only();
CREATE TRIGGER cold_purge_only BEFORE DELETE ON cold
    FOR EACH ROW EXECUTE FUNCTION purge_only();
CREATE TRIGGER cold_no_truncate BEFORE TRUNCATE ON cold
    FOR EACH STATEMENT EXECUTE FUNCTION refuse();
"""
_RETENTION = _RETENTION_TABLES + "".join(
    f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION refuse();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION refuse();
"""
    for table in ("segments", "purged", "receipts")
)


def grant_retention(db: psycopg.Connection[tuple[Any, ...]], service: str) -> None:
    """What the service role may do for retention: record segments, receipts and purged
    entries; move and purge cold entries; vacate an entry's bytes (the triggers decide
    which); delete a purged entry's search row."""
    ident = sql.Identifier
    for table in ("segments", "purged", "receipts"):
        db.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(ident(table), ident(service)))
    db.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON cold TO {}").format(ident(service)))
    db.execute(sql.SQL("GRANT UPDATE (entry) ON entries TO {}").format(ident(service)))
    db.execute(sql.SQL("GRANT DELETE ON search_index TO {}").format(ident(service)))


def parse_url(url: str) -> tuple[str, str]:
    """(the connection URL for psycopg, the schema): ``?schema=`` is trailseal's own."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ConfigError(f"{describe(url)!r} is not a usable PostgreSQL URL: {exc}") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), DEFAULT_SCHEMA)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    if not schema.isidentifier() or not schema.isascii() or len(schema) > 40:
        raise ConfigError(f"schema {schema[:60]!r} must be a plain identifier (letters, digits, _)")
    return urlunsplit(parts._replace(scheme="postgresql", query=rest)), schema.lower()


def _error(exc: psycopg.Error, doing: str) -> StorageError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailableError(f"cannot {doing}: the database is unreachable ({text})")
    return StorageError(f"cannot {doing}: {text}; nothing was changed")


def _connect(conninfo: str, shown: str) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no answer"
        raise StoreUnavailableError(f"cannot connect to {shown}: {first}") from None
    except (psycopg.ProgrammingError, ValueError) as exc:  # UnicodeError: a host not in IDNA
        raise ConfigError(f"{shown} is not a usable PostgreSQL URL: {exc}") from None


class _Append:
    """The open write transaction of :meth:`PostgresStore.append_transaction`."""

    def __init__(self, store: PostgresStore, size: int, fence: int) -> None:
        self._store = store
        self.size = size
        self.fence = fence

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, int]:
        return self._store.find_ids(event_ids)

    def stored(self, index: int) -> tuple[bytes, bytes | None]:
        return self._store.stored(index)

    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        return self._store.nodes(ids)

    def write(self, entries: Sequence[SealedEntry]) -> None:
        cursor = self._store.db.cursor()
        with cursor.copy(
            "COPY entries (idx, event_id, entry, leaf_hash, chain_hash, tree_nodes) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "bytea", "bytea", "bytea", "bytea"])
            for e in entries:
                copy.write_row(
                    (e.index, e.event_id, e.entry, e.leaf_hash, e.chain_hash, e.tree_nodes or None)
                )
        details = [(e.index, e.salt, e.detail) for e in entries if e.detail is not None]
        if details:
            with cursor.copy("COPY details (idx, salt, detail) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "bytea", "bytea"])
                for row in details:
                    copy.write_row(row)
        if entries:
            self.size = entries[-1].index + 1

    def write_checkpoint(self, size: int, note: str) -> None:
        self._store.db.execute("INSERT INTO checkpoints VALUES (%s, %s)", (size, note))

    def latest_checkpoint(self) -> tuple[int, str] | None:
        return self._store.latest_checkpoint()

    def last_chain_hash(self) -> bytes | None:
        row = self._store.db.execute(
            "SELECT chain_hash FROM entries ORDER BY idx DESC LIMIT 1"
        ).fetchone()
        return None if row is None else bytes(row[0])


class PostgresStore:
    """One log in one schema of a PostgreSQL database."""

    def __init__(
        self,
        db: psycopg.Connection[tuple[Any, ...]],
        conninfo: str,
        schema: str,
        url: str,
        *,
        readonly: bool = False,
    ) -> None:
        self.db = db
        self.schema = schema
        self.url = describe(url)
        self._conninfo = conninfo
        self._raw_url = url
        self._readonly = readonly
        self._in_transaction = False
        self._writing = threading.RLock()
        self._holder = secrets.token_hex(8)  # this process's name in the writer row
        self._lock_key = f"trailseal:{schema}"
        self.cold = ColdReads(self)

    # -- opening -----------------------------------------------------------------

    @classmethod
    def create(cls, url: str, meta: dict[str, str]) -> PostgresStore:
        """Create the schema, its two roles, the tables, triggers and grants."""
        conninfo, schema = parse_url(url)
        db = _connect(conninfo, describe(url))
        owner, service = f"{schema}_owner", f"{schema}_service"
        try:
            with db.transaction():
                for role in (owner, service):
                    db.execute(
                        sql.SQL(
                            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {}) "
                            "THEN CREATE ROLE {} NOLOGIN; END IF; END $$"
                        ).format(sql.Literal(role), sql.Identifier(role))
                    )
                    db.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
                db.execute(
                    sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                        sql.Identifier(schema), sql.Identifier(owner)
                    )
                )
                db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(owner)))
                db.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
                db.execute(_TABLES + _TRIGGERS + _RETENTION)
                db.execute(schema_of(PRINCIPALS, "postgresql") + schema_of(DETECTION, "postgresql"))
                rows = [("schema_version", SCHEMA_VERSION), *sorted(meta.items())]
                db.cursor().executemany("INSERT INTO meta VALUES (%s, %s)", rows)
                cls._grant(db, schema, service)
        except DuplicateSchema:
            db.close()
            raise AlreadyExistsError(
                f"{describe(url)} already has a schema {schema!r}; refusing to overwrite a log "
                "(name another with ?schema=NAME)"
            ) from None
        except InsufficientPrivilege as exc:
            db.close()
            raise ConfigError(
                f"cannot create a log in {describe(url)}: {exc}; `trailseal init` needs a role "
                "that may create roles and schemas (the database's owner or a superuser)"
            ) from None
        except psycopg.Error as exc:
            db.close()
            raise _error(exc, f"create the log in {describe(url)}") from None
        db.close()
        return cls.open(url)

    @staticmethod
    def _grant(db: psycopg.Connection[tuple[Any, ...]], schema: str, service: str) -> None:
        ident = sql.Identifier
        db.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident(schema), ident(service)))
        for table in (*_PROTECTED, "details"):
            db.execute(
                sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(ident(table), ident(service))
            )
        db.execute(sql.SQL("GRANT DELETE ON details TO {}").format(ident(service)))
        grant_retention(db, service)
        for table in MUTABLE:
            db.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
                    ident(table), ident(service)
                )
            )
        db.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                ident(schema), ident(service)
            )
        )

    @classmethod
    def open(cls, url: str, *, readonly: bool = False) -> PostgresStore:
        """Open an existing log; ``readonly`` handles never write."""
        conninfo, schema = parse_url(url)
        shown = describe(url)
        db = _connect(conninfo, shown)
        try:
            version = cls._prepare(db, schema, shown, readonly=readonly)
            if not readonly and version == SCHEMA_VERSION:
                cls._upgrade_retention(db, schema, shown)
        except BaseException:
            db.close()
            raise
        if version != SCHEMA_VERSION:
            db.close()
            newer = version.isdigit() and int(version) > int(SCHEMA_VERSION)
            raise ConfigError(
                f"schema {schema!r} of {shown} has trailseal schema version {version}; this "
                f"trailseal reads version {SCHEMA_VERSION}"
                + ("; upgrade trailseal" if newer else "")
            )
        return cls(db, conninfo, schema, url, readonly=readonly)

    def _live(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The connection, made again if the server went away (a restart, a failover):
        a long-running service must not need restarting with its database."""
        if self.db.closed or self.db.broken:
            db = _connect(self._conninfo, self.url)
            try:
                self._prepare(db, self.schema, self.url, readonly=self._readonly)
            except BaseException:
                db.close()
                raise
            self.db = db
        return self.db

    @classmethod
    def _prepare(
        cls, db: psycopg.Connection[tuple[Any, ...]], schema: str, shown: str, *, readonly: bool
    ) -> str:
        """Point the session at the log's schema and role; return its schema version."""
        found = db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if found is None:
            raise ConfigError(
                f"no trailseal log in schema {schema!r} of {shown}; create one with "
                f"`trailseal init --store {shown}`"
            )
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        try:
            db.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(f"{schema}_service")))
        except psycopg.Error as exc:
            raise ConfigError(
                f"cannot act as {schema}_service in {shown} ({exc}); grant that role to the "
                "user the store URL logs in as"
            ) from None
        if readonly:
            db.execute("SET default_transaction_read_only = on")
        return cls._schema_version(db, schema, shown)

    @staticmethod
    def _schema_version(db: psycopg.Connection[tuple[Any, ...]], schema: str, shown: str) -> str:
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except psycopg.errors.UndefinedTable:
            row = None
        except InsufficientPrivilege as exc:
            raise ConfigError(f"schema {schema!r} of {shown}: {exc}") from None
        except psycopg.Error as exc:
            raise _error(exc, f"open {shown}") from None
        if row is None:
            raise ConfigError(
                f"schema {schema!r} of {shown} is not a trailseal log (it has no trailseal "
                "metadata; another tool made it?)"
            )
        return str(row[0])

    @classmethod
    def state(cls, url: str) -> StateDatabase:
        """A connection to the state beside the log (principals, detection), in its schema."""
        conninfo, schema = parse_url(url)
        shown = describe(url)
        db = _connect(conninfo, shown)
        try:
            cls._prepare(db, schema, shown, readonly=False)
            cls._upgrade_state(db, schema, shown)
        except BaseException:
            db.close()
            raise
        return StateDatabase(db, "postgresql", lambda: cls.state(url))

    @staticmethod
    def _upgrade_state(db: psycopg.Connection[tuple[Any, ...]], schema: str, shown: str) -> None:
        """Columns the state tables gained since the schema was made (alerts count their
        versions since issue 10, and closed ones name a disposition since issue 12), added
        as the schema's owner."""
        present = {
            str(name)
            for (name,) in db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'alerts' AND column_name IN ('version', 'disposition')",
                (schema,),
            ).fetchall()
        }
        missing = [name for name in ("version", "disposition") if name not in present]
        if not missing:
            return
        try:
            with db.transaction():
                db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(f"{schema}_owner")))
                if "version" in missing:
                    db.execute(
                        "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS version integer "
                        "NOT NULL DEFAULT 1"
                    )
                    db.execute("UPDATE alerts SET version = 2 WHERE logged = 1")  # as for SQLite
                db.execute("ALTER TABLE alerts ADD COLUMN IF NOT EXISTS disposition text")
        except psycopg.Error as exc:
            raise ConfigError(
                f"schema {schema!r} of {shown} needs the columns alerts.{', alerts.'.join(missing)}"
                f" ({exc}); run trailseal once as a user that may act as its owner role"
            ) from None

    @staticmethod
    def _upgrade_retention(
        db: psycopg.Connection[tuple[Any, ...]], schema: str, shown: str
    ) -> None:
        """The retention tables and triggers, added as the owner to a log made before."""
        found = db.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'receipts'",
            (schema,),
        ).fetchone()
        if found is not None:
            return
        try:
            with db.transaction():
                db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(f"{schema}_owner")))
                db.execute(_RETENTION)
                grant_retention(db, f"{schema}_service")
        except psycopg.Error as exc:
            raise ConfigError(
                f"schema {schema!r} of {shown} needs the retention tables ({exc}); run "
                "trailseal once as a user that may act as its owner role"
            ) from None

    def reader(self) -> PostgresStore:
        return PostgresStore.open(self._raw_url, readonly=True)

    def opener(self) -> Callable[[], PostgresStore]:
        return partial(PostgresStore.open, self._raw_url, readonly=True)

    def close(self) -> None:
        self.db.close()

    # -- reading -------------------------------------------------------------------

    def _query(
        self, query: str, params: Sequence[Any] = (), *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        """Rows of a read; ``binary`` results skip parsing hex for large byte columns."""
        try:
            try:
                return self._live().cursor(binary=binary).execute(query, params).fetchall()
            except psycopg.OperationalError:
                if not self.db.broken or self._in_transaction:
                    raise
                # The server went away since the last read (a restart): a read outside a
                # transaction is safe to try once more on a new connection.
                return self._live().cursor(binary=binary).execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise _error(exc, "read the log") from None

    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    def size(self) -> int:
        return int(self._query("SELECT coalesce(max(idx) + 1, 0) FROM entries")[0][0])

    def find_ids(self, event_ids: Sequence[str]) -> dict[str, int]:
        rows = self._query(
            "SELECT event_id, idx FROM entries WHERE event_id = ANY(%s)", (list(event_ids),)
        )
        return {str(event_id): int(index) for event_id, index in rows}

    def stored(self, index: int) -> tuple[bytes, bytes | None]:
        (stored,) = self.entries_at([index])
        rows = self._query("SELECT salt FROM details WHERE idx = %s", (index,))
        return stored.entry, bytes(rows[0][0]) if rows else None

    def entries(self, start: int, end: int) -> Iterator[StoredEntry]:
        rows = self._query(
            "SELECT idx, event_id, entry, leaf_hash, chain_hash, coalesce(tree_nodes, '') "
            "FROM entries WHERE idx >= %s AND idx < %s ORDER BY idx",
            (start, end),
            binary=True,
        )
        return self.cold.fill(map(StoredEntry._make, rows))

    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        rows = self._query(
            "SELECT idx, leaf_hash, coalesce(tree_nodes, '') FROM entries WHERE idx = ANY(%s)",
            (node_rows(ids),),
        )
        return node_hashes(ids, {int(i): (bytes(leaf), bytes(n)) for i, leaf, n in rows})

    def checkpoints(self) -> list[tuple[int, str]]:
        rows = self._query("SELECT size, note FROM checkpoints ORDER BY size")
        return [(int(size), str(note)) for size, note in rows]

    def latest_checkpoint(self) -> tuple[int, str] | None:
        rows = self._query("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def details(self, start: int, end: int) -> dict[int, StoredDetail]:
        found = {
            int(index): StoredDetail(int(index), bytes(detail), bytes(salt), None)
            for index, detail, salt in self._query(
                "SELECT idx, detail, salt FROM details WHERE idx >= %s AND idx < %s",
                (start, end),
                binary=True,
            )
        }
        for index, reason in self._query(
            "SELECT idx, reason FROM erasures WHERE idx >= %s AND idx < %s", (start, end)
        ):
            kept = found.get(int(index))
            detail, salt = (kept.detail, kept.salt) if kept else (None, None)
            found[int(index)] = StoredDetail(int(index), detail, salt, str(reason))
        return found

    def erasures(self) -> dict[int, Erasure]:
        rows = self._query("SELECT idx, reason, erased_at, record_index FROM erasures")
        return {int(row[0]): Erasure(int(row[0]), row[1], row[2], int(row[3])) for row in rows}

    def search_position(self) -> int:
        return int(self._query("SELECT coalesce(max(idx) + 1, 0) FROM search_index")[0][0])

    def search_rows(self, start: int, end: int) -> dict[int, tuple[object, ...]]:
        """The search index's rows for ``[start, end)``, as tuples in column order."""
        rows = self._query(
            "SELECT idx, actor, action, resource_type, resource_id, outcome, tenant, time "
            "FROM search_index WHERE idx >= %s AND idx < %s",
            (start, end),
            binary=True,
        )
        return {int(row[0]): tuple(row) for row in rows}

    def select(self, where: Sql, page: Page) -> list[int]:
        sql, params = paged(where, page)
        return [int(row[0]) for row in self._query(sql.replace("?", "%s"), params)]

    def action_counts(self) -> list[tuple[str, int]]:
        return [(str(action), int(count)) for action, count in self._query(ACTION_COUNTS)]

    def actions(self) -> list[str]:
        return [str(action) for (action,) in self._query(ACTIONS)]

    def group_counts(self, where: Sql, field: str, page: Page) -> list[tuple[object, int]]:
        sql, params = grouped(where, field, page)
        return [(value, int(count)) for value, count in self._query(sql.replace("?", "%s"), params)]

    def entries_at(self, indexes: Sequence[int]) -> list[StoredEntry]:
        rows = self._query(
            "SELECT idx, event_id, entry, leaf_hash, chain_hash, coalesce(tree_nodes, '') "
            "FROM entries WHERE idx = ANY(%s) ORDER BY idx",
            (sorted(set(indexes)),),
            binary=True,
        )
        return list(self.cold.fill(map(StoredEntry._make, rows)))

    def details_at(self, indexes: Sequence[int]) -> dict[int, StoredDetail]:
        wanted = (sorted(set(indexes)),)
        found = {
            int(index): StoredDetail(int(index), bytes(detail), bytes(salt), None)
            for index, detail, salt in self._query(
                "SELECT idx, detail, salt FROM details WHERE idx = ANY(%s)", wanted, binary=True
            )
        }
        for index, reason in self._query(
            "SELECT idx, reason FROM erasures WHERE idx = ANY(%s)", wanted
        ):
            kept = found.get(int(index))
            detail, salt = (kept.detail, kept.salt) if kept else (None, None)
            found[int(index)] = StoredDetail(int(index), detail, salt, str(reason))
        return found

    def segments(self) -> list[Segment]:
        rows = self._query("SELECT id, name, manifest, signature FROM segments ORDER BY id")
        return [Segment(int(i), str(n), str(m), str(g)) for i, n, m, g in rows]

    def cold_at(self, indexes: Sequence[int]) -> dict[int, int]:
        rows = self._query(
            "SELECT idx, segment FROM cold WHERE idx = ANY(%s)", (sorted(set(indexes)),)
        )
        return {int(index): int(segment) for index, segment in rows}

    def cold_counts(self) -> dict[int, int]:
        rows = self._query("SELECT segment, count(*) FROM cold GROUP BY segment")
        return {int(segment): int(count) for segment, count in rows}

    def cold_indexes(self, segment: int) -> list[int]:
        rows = self._query("SELECT idx FROM cold WHERE segment = %s ORDER BY idx", (segment,))
        return [int(row[0]) for row in rows]

    def purged(self, start: int, end: int) -> dict[int, Purged]:
        rows = self._query(
            "SELECT idx, receipt, received_at FROM purged WHERE idx >= %s AND idx < %s",
            (start, end),
        )
        return {int(i): Purged(int(i), int(r), str(at)) for i, r, at in rows}

    def receipts(self) -> list[Receipt]:
        rows = self._query("SELECT id, body, signature FROM receipts ORDER BY id")
        return [Receipt(int(i), str(b), str(g)) for i, b, g in rows]

    # -- writing -------------------------------------------------------------------

    def add_meta(self, key: str, value: str) -> None:
        with self._transaction(f"record {key}"):
            self.db.execute("INSERT INTO meta VALUES (%s, %s)", (key, value))

    def seal(self, name: str, manifest: str, signature: str, indexes: Sequence[int]) -> int:
        wanted = sorted(set(indexes))
        with self._transaction(f"seal segment {name}"):
            row = self.db.execute(
                "INSERT INTO segments (name, manifest, signature) VALUES (%s, %s, %s) RETURNING id",
                (name, manifest, signature),
            ).fetchone()
            segment = int(row[0]) if row else 0
            self.db.execute(
                "INSERT INTO cold SELECT idx, %s FROM entries WHERE idx = ANY(%s) "
                "ON CONFLICT (idx) DO UPDATE SET segment = excluded.segment",
                (segment, wanted),
            )
            self.db.execute(
                "UPDATE entries SET entry = ''::bytea WHERE idx = ANY(%s) AND entry <> ''::bytea",
                (wanted,),
            )
        return segment

    def purge(
        self, receipt: int, body: str, signature: str, rows: Sequence[tuple[int, str]]
    ) -> None:
        wanted = sorted(index for index, _ in rows)
        with self._transaction("purge entries"):
            self.db.execute(
                "INSERT INTO receipts (id, body, signature) OVERRIDING SYSTEM VALUE "
                "VALUES (%s, %s, %s)",
                (receipt, body, signature),
            )
            with self.db.cursor().copy(
                "COPY purged (idx, receipt, received_at) FROM STDIN"
            ) as copy:
                for index, at in rows:
                    copy.write_row((index, receipt, at))
            for statement in (
                "DELETE FROM cold WHERE idx = ANY(%s)",
                "DELETE FROM details WHERE idx = ANY(%s)",
                "DELETE FROM search_index WHERE idx = ANY(%s)",
                "UPDATE entries SET entry = ''::bytea WHERE idx = ANY(%s) AND entry <> ''::bytea",
            ):
                self.db.execute(statement, (wanted,))

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[None]:
        with self._writing:
            try:
                with self._live().transaction():
                    self._in_transaction = True
                    try:
                        yield
                    finally:
                        self._in_transaction = False
            except RaiseException as exc:
                raise StorageError(f"cannot {doing}: {exc.diag.message_primary}") from None
            except psycopg.Error as exc:
                raise _error(exc, doing) from None

    @contextmanager
    def append_transaction(self) -> Iterator[_Append]:
        with self._transaction("append"):
            self.db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))
            holder, token = self.db.execute(
                "SELECT holder, token FROM writer FOR UPDATE"
            ).fetchone() or ("", 0)
            if holder != self._holder:  # another process appended last: a new fence
                token = int(token) + 1
                self.db.execute("UPDATE writer SET holder = %s, token = %s", (self._holder, token))
            (size,) = self.db.execute(
                "SELECT coalesce(max(idx) + 1, 0) FROM entries"
            ).fetchone() or (0,)
            yield _Append(self, int(size), int(token))

    def erase_detail(self, index: int, reason: str, erased_at: str, record_index: int) -> None:
        with self._transaction(f"erase the detail of entry {index}"):
            self.db.execute(
                "INSERT INTO erasures VALUES (%s, %s, %s, %s)",
                (index, reason, erased_at, record_index),
            )
            self.db.execute("DELETE FROM details WHERE idx = %s", (index,))

    def index_for_search(self, rows: Sequence[SearchRow]) -> None:
        with self._transaction("update the search index"):
            self.db.cursor().executemany(
                "INSERT INTO search_index VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (idx) DO NOTHING",  # two searches may catch up at once
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
            )
