"""Principals and their API tokens, kept beside the log (``principals.db``, or the
PostgreSQL store's own schema).

A token is ``tsk_`` followed by 43 url-safe base64 characters (256 random
bits). It is shown once; only its SHA-256 is stored (a token this random
needs no slow hash). Revoked principals keep their row, so the log's
references to them stay meaningful.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trailseal.access.roles import TOKEN_ROLES, Role
from trailseal.access.tenants import ALL_TENANTS, sees
from trailseal.errors import AlreadyExistsError, ConfigError, NotFoundError
from trailseal.storage.state import PRINCIPALS, DuplicateError, StateDatabase

TOKEN_PREFIX = "tsk_"  # noqa: S105 - a recognisable prefix, not a secret
HOST_PREFIX = "host:"
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")
_TOKEN = re.compile(r"^tsk_[A-Za-z0-9_-]{43}\Z")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}\Z")

_SELECT = "SELECT id, name, role, tenant, token_hint, created_at, revoked_at FROM principals "


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who may call the service, in which role, for which tenant (``*`` for all)."""

    id: str
    name: str
    role: Role
    tenant: str
    token_hint: str
    created_at: str
    revoked_at: str | None

    @classmethod
    def host(cls, user: str | None = None) -> Principal:
        """Whoever runs the command line on the host: ``host:<os user>``, every right."""
        try:
            name = user or getpass.getuser()
        except (KeyError, OSError):  # no passwd entry and no LOGNAME (some containers)
            name = "unknown"
        name = _UNSAFE.sub("_", name)[:120] or "unknown"
        return cls(f"{HOST_PREFIX}{name}", name, Role.HOST, ALL_TENANTS, "", "", None)

    def sees(self, tenant: str | None) -> bool:
        """Whether this principal may see or write entries of ``tenant``."""
        return sees(self.tenant, tenant)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": str(self.role),
            "tenant": self.tenant,
            "token_hint": self.token_hint,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"principal name {name[:40]!r} must be 1-128 letters, digits, '.', '_', '@' or '-'"
        )
    return name


def check_tenant(tenant: str) -> str:
    if tenant != ALL_TENANTS and not _NAME.match(tenant):
        raise ConfigError(f"tenant {tenant[:40]!r} must be '*' or a name of letters and digits")
    return tenant


class PrincipalStore:
    """The principals of one log, in a state database (or a SQLite file at ``path``)."""

    def __init__(self, db: StateDatabase | Path) -> None:
        self._db = db if isinstance(db, StateDatabase) else StateDatabase.sqlite(db, PRINCIPALS)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def create(self, name: str, role: Role, tenant: str = ALL_TENANTS) -> tuple[Principal, str]:
        """A new principal and its token (shown once, never stored)."""
        if Role(role) not in TOKEN_ROLES:
            raise ConfigError(
                f"role {role!r} is the host's own; choose one of {', '.join(TOKEN_ROLES)}"
            )
        token = new_token()
        principal = Principal(
            id=f"pr-{secrets.token_hex(6)}",
            name=check_name(name),
            role=Role(role),
            tenant=check_tenant(tenant),
            token_hint=token[:8],
            created_at=_now(),
            revoked_at=None,
        )
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO principals VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (
                        principal.id,
                        principal.name,
                        str(principal.role),
                        principal.tenant,
                        _hash(token),
                        principal.token_hint,
                        principal.created_at,
                    ),
                )
            except DuplicateError:
                raise AlreadyExistsError(f"a principal named {name!r} already exists") from None
        return principal, token

    def _row(self, row: tuple[object, ...] | None, what: str) -> Principal:
        if row is None:
            raise NotFoundError(f"no principal {what}")
        pid, name, role, tenant, hint, created, revoked = row
        return Principal(
            str(pid),
            str(name),
            Role(str(role)),
            str(tenant),
            str(hint),
            str(created),
            None if revoked is None else str(revoked),
        )

    def get(self, principal_id: str) -> Principal:
        return self._row(self._db.one(_SELECT + "WHERE id = ?", (principal_id,)), principal_id)

    def authenticate(self, token: str) -> Principal | None:
        """The active principal holding ``token``, or None (malformed, unknown, revoked)."""
        if not _TOKEN.match(token):
            return None
        row = self._db.one(_SELECT + "WHERE token_hash = ? AND revoked_at IS NULL", (_hash(token),))
        return None if row is None else self._row(row, "")

    def list(self) -> list[Principal]:
        rows = self._db.rows(_SELECT + "ORDER BY created_at")
        return [self._row(row, "") for row in rows]

    def revoke(self, principal_id: str) -> Principal:
        with self._lock:
            self.get(principal_id)
            self._db.execute(
                "UPDATE principals SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (_now(), principal_id),
            )
        return self.get(principal_id)

    def rotate(self, principal_id: str) -> tuple[Principal, str]:
        """A new token for an active principal; the old one stops working at once."""
        token = new_token()
        with self._lock:
            principal = self.get(principal_id)
            if principal.revoked_at is not None:
                raise NotFoundError(f"principal {principal_id} is revoked")
            self._db.execute(
                "UPDATE principals SET token_hash = ?, token_hint = ? WHERE id = ?",
                (_hash(token), token[:8], principal_id),
            )
        return self.get(principal_id), token
