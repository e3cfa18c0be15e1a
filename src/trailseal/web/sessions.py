"""Dashboard sessions: a random id in a cookie, everything else on the server.

The cookie is HttpOnly and SameSite=Strict (Secure when the page came over TLS) and
holds only the session's id, 256 random bits. The session remembers the principal's id
(not its token: the token is checked once, at sign-in, and revoking the principal ends
the session at its next request), a CSRF token every form must echo, the viewer's time
zone, and the reports it produced for download. Sessions live in the serving process:
restarting `serve` signs everyone out.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

COOKIE = "trailseal_session"
SIGNIN_COOKIE = "trailseal_signin"  # the sign-in form's own CSRF token, before a session
IDLE_SECONDS = 15 * 60
LIFETIME_SECONDS = 12 * 60 * 60
KEPT_REPORTS = 4  # produced reports a session keeps for download


@dataclass(frozen=True)
class Produced:
    """A report produced in this session, ready to download."""

    name: str
    fmt: str
    report: bytes
    bundle: bytes
    produced_at: str


@dataclass
class Session:
    id: str
    principal_id: str
    token_hint: str  # the principal's token when the session began (rotation ends it)
    csrf: str
    zone: str = "UTC"
    started: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    produced: dict[str, Produced] = field(default_factory=dict)

    def keep(self, produced: Produced) -> str:
        """Keep a produced report for download; the oldest goes past KEPT_REPORTS."""
        key = secrets.token_urlsafe(12)
        self.produced[key] = produced
        while len(self.produced) > KEPT_REPORTS:
            del self.produced[next(iter(self.produced))]
        return key


@dataclass
class Sessions:
    """The signed-in sessions of one serving process."""

    idle: float = IDLE_SECONDS
    lifetime: float = LIFETIME_SECONDS
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, principal_id: str, token_hint: str, zone: str = "UTC") -> Session:
        session = Session(
            secrets.token_urlsafe(32), principal_id, token_hint, secrets.token_urlsafe(32), zone
        )
        with self._lock:
            self._sweep()
            self._sessions[session.id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        """The live session with this id, touched; None if unknown, idle too long or past
        its lifetime (and then forgotten)."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.seen > self.idle or now - session.started > self.lifetime:
                del self._sessions[session_id]
                return None
            session.seen = now
            return session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [
            key
            for key, s in self._sessions.items()
            if now - s.seen > self.idle or now - s.started > self.lifetime
        ]:
            del self._sessions[key]


def same(given: str | None, expected: str) -> bool:
    """Whether a form's CSRF token is the session's (in constant time)."""
    return bool(given) and secrets.compare_digest(str(given).encode(), expected.encode())
