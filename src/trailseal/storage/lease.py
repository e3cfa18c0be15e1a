"""Leases: work that runs once per log however many processes serve it (detection,
retention).

On PostgreSQL a lease is a session-level advisory lock on the log's schema and the
work's name, held by a connection of its own: several ``serve`` processes on one
database (on one host or many) try for it, one holds it, and when that process dies,
even by SIGKILL, the server drops its connection and the lock with it, so another
takes over at its next try. The lease's session asks the server for TCP keepalives every
few seconds, so a host that vanished without closing its connection frees its leases
within about 11 seconds too.
On SQLite (one host) a lease is an exclusive ``flock`` on ``DATA/NAME.lock``, which the
kernel drops with the process.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO, Any, Protocol

from trailseal.errors import StoreUnavailableError
from trailseal.layout import DataLayout
from trailseal.storage import is_postgres


class Lease(Protocol):
    name: str

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; whether this holder has it now."""

    def held(self) -> bool:
        """Whether this holder still has it (a lost connection loses it)."""

    def release(self) -> None: ...


class FileLease:
    """An exclusive ``flock`` on a file beside the SQLite log."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AdvisoryLease:
    """A session-level PostgreSQL advisory lock, on a connection of its own."""

    def __init__(self, name: str, url: str) -> None:
        from trailseal.storage.postgres import parse_url  # noqa: PLC0415 - when chosen

        self.name, self.url = name, url
        self._conninfo, schema = parse_url(url)
        self._key = f"trailseal:{schema}:lease:{name}"
        self._db: Any = None

    def acquire(self) -> bool:
        import psycopg  # noqa: PLC0415 - only for PostgreSQL

        if self.held():
            return True
        self.release()
        try:
            db = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=10,
                keepalives=1,  # a client that vanished is noticed in about 11 s
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
            )
            # and the server notices a silent client as soon: its session's own keepalives
            db.execute("SET tcp_keepalives_idle = 5")
            db.execute("SET tcp_keepalives_interval = 2")
            db.execute("SET tcp_keepalives_count = 3")
            (got,) = db.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s))", (self._key,)
            ).fetchone() or (False,)
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"cannot take the {self.name} lease: {exc}") from None
        if not got:
            db.close()
            return False
        self._db = db
        return True

    def held(self) -> bool:
        """Whether the lock's connection is still alive (asked of the server)."""
        import psycopg  # noqa: PLC0415

        if self._db is None:
            return False
        try:
            self._db.execute("SELECT 1")
        except psycopg.Error:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._db is not None:
            try:
                self._db.close()  # the session ends: the lock goes with it
            finally:
                self._db = None


def open_lease(name: str, store_url: str, data_dir: Path) -> Lease:
    """The lease on work ``name`` for the log at ``store_url``."""
    if is_postgres(store_url):
        return AdvisoryLease(name, store_url)
    return FileLease(name, DataLayout(data_dir).lease_lock(name))
