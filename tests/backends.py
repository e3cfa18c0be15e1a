"""Both storage backends for the conformance suite: a log on a real SQLite file and in a
schema of the real PostgreSQL on 127.0.0.1, and direct access to either database as
someone holding it would have (the append-only triggers out of the way, as a superuser)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from trailseal.testing import drop_postgres_log

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class SQLiteBackend:
    name = "sqlite"

    def store(self, data: Path) -> str | None:
        return None  # the default: DATA/log.db

    def _connect(self, data: Path) -> sqlite3.Connection:
        return sqlite3.connect(data / "log.db")

    def query(self, data: Path, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        db = self._connect(data)
        try:
            return db.execute(statement, params).fetchall()
        finally:
            db.close()

    def tamper(self, data: Path, *statements: str, params: Sequence[Any] = ()) -> None:
        """Run statements with the append-only triggers dropped."""
        self.run(data, [(s, params if "?" in s else ()) for s in statements])

    def run(self, data: Path, steps: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Statements with their parameters, in one transaction, triggers dropped."""
        db = self._connect(data)
        names = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for (name,) in names:
            db.execute(f"DROP TRIGGER {name}")
        for statement, params in steps:
            db.execute(statement, params)
        db.commit()
        db.close()

    def guarded(self, data: Path, statement: str) -> None:
        """Run one statement with the triggers in place (it must raise)."""
        db = self._connect(data)
        try:
            db.execute(statement)
            db.commit()
        finally:
            db.close()

    # dialect: what differs between the two in the tamper tests' SQL
    def text(self, column: str) -> str:
        return f"CAST({column} AS TEXT)"

    def blob(self, expression: str) -> str:
        return f"CAST({expression} AS BLOB)"

    def random_bytes(self, length: str) -> str:
        return f"randomblob({length})"

    def cleanup(self) -> None:
        """Nothing outside the temporary directory."""


@dataclass
class PostgresBackend:
    schema: str
    name = "postgresql"

    @classmethod
    def fresh(cls) -> PostgresBackend:
        return cls(f"t_{uuid.uuid4().hex[:12]}")

    def store(self, data: Path) -> str:
        return f"{POSTGRES}?schema={self.schema}"

    @contextmanager
    def _connect(self, *, triggers: bool) -> Iterator[psycopg.Connection]:
        with psycopg.connect(POSTGRES, autocommit=True) as db:
            db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            if not triggers:  # a superuser can switch off ordinary triggers for a session
                db.execute("SET session_replication_role = replica")
            yield db

    def query(self, data: Path, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._connect(triggers=True) as db:
            return db.execute(statement.replace("?", "%s"), params).fetchall()

    def tamper(self, data: Path, *statements: str, params: Sequence[Any] = ()) -> None:
        self.run(data, [(s, params if "?" in s else ()) for s in statements])

    def run(self, data: Path, steps: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with self._connect(triggers=False) as db, db.transaction():
            for statement, params in steps:
                db.execute(statement.replace("?", "%s"), params)

    def guarded(self, data: Path, statement: str) -> None:
        with self._connect(triggers=True) as db:
            db.execute(statement.replace("x'00'", "'\\x00'::bytea"))

    def text(self, column: str) -> str:
        return f"convert_from({column}, 'UTF8')"

    def blob(self, expression: str) -> str:
        return f"convert_to({expression}, 'UTF8')"

    def random_bytes(self, length: str) -> str:
        return f"substring(decode(repeat(md5(random()::text), 16), 'hex') from 1 for {length})"

    def cleanup(self) -> None:
        drop_postgres_log(self.store(Path()))


Backend = SQLiteBackend | PostgresBackend
