"""Storage: the store protocol and its backends, chosen by a URL.

- a path, or ``sqlite:///PATH``: one SQLite file (the embedded default,
  ``DATA/log.db``);
- ``postgresql://USER@HOST:PORT/DB?schema=NAME``: a schema in PostgreSQL (the
  server backend); ``schema`` defaults to ``trailseal``.

Backends are imported only when chosen, so neither depends on the other.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from trailseal.errors import ConfigError
from trailseal.storage.base import (
    GROUPS,
    AppendTransaction,
    Erasure,
    Page,
    SealedEntry,
    SearchFilter,
    SearchRow,
    Store,
    StoredDetail,
    StoredEntry,
    StoreReader,
    StoreWriter,
)
from trailseal.storage.narrowing import Sql, exact, narrow
from trailseal.storage.state import DETECTION, PRINCIPALS, StateDatabase

__all__ = [
    "DETECTION",
    "GROUPS",
    "PRINCIPALS",
    "AppendTransaction",
    "Erasure",
    "Page",
    "SealedEntry",
    "SearchFilter",
    "SearchRow",
    "Sql",
    "StateDatabase",
    "Store",
    "StoreReader",
    "StoreWriter",
    "StoredDetail",
    "StoredEntry",
    "create_store",
    "describe",
    "exact",
    "is_postgres",
    "narrow",
    "open_state",
    "open_store",
    "sqlite_path",
]

_POSTGRES = ("postgresql", "postgres")


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].lower() in _POSTGRES


def sqlite_path(url: str) -> Path:
    """The file a SQLite store URL (or plain path) names."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    scheme = url.split(":", 1)[0] if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url) else ""
    if len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise ConfigError(
            f"store {describe(url)!r} is neither a path, sqlite:///PATH nor postgresql://...; "
            "those are the backends trailseal has"
        )
    return Path(url)


def describe(url: str) -> str:
    """The URL without a password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "a malformed URL"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def open_store(url: str, *, readonly: bool = False) -> Store:
    """Open an existing log's store."""
    if is_postgres(url):
        from trailseal.storage.postgres import PostgresStore  # noqa: PLC0415 - when chosen

        return PostgresStore.open(url, readonly=readonly)
    from trailseal.storage.sqlite import SQLiteStore  # noqa: PLC0415

    return SQLiteStore.open(sqlite_path(url), readonly=readonly)


def open_state(url: str, sqlite_file: Path, kind: str) -> StateDatabase:
    """The state of ``kind`` (``principals`` or ``detection``) beside the log at ``url``:
    tables of the same PostgreSQL schema, or ``sqlite_file`` beside a SQLite log."""
    if is_postgres(url):
        from trailseal.storage.postgres import PostgresStore  # noqa: PLC0415 - when chosen

        return PostgresStore.state(url)
    return StateDatabase.sqlite(sqlite_file, kind)


def create_store(url: str, meta: dict[str, str]) -> Store:
    """Create a new log's store, refusing to overwrite one."""
    if is_postgres(url):
        from trailseal.storage.postgres import PostgresStore  # noqa: PLC0415 - when chosen

        return PostgresStore.create(url, meta)
    from trailseal.storage.sqlite import SQLiteStore  # noqa: PLC0415

    return SQLiteStore.create(sqlite_path(url), meta)
