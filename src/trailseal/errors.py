"""The one error hierarchy of trailseal.

Every error a caller can act on derives from :class:`TrailsealError` and
carries a human ``diagnostics()`` text that the CLI prints. Messages name the
field, the value and what would be accepted.

    TrailsealError
    ├── ConfigError              bad settings, data directory or key file
    │   └── AlreadyExistsError   that name is taken
    ├── EventError               one event refused at the boundary
    │   └── IdConflictError      an event id reused with different content
    ├── BatchError               a batch refused; lists every bad line
    ├── QueryError               a search query that does not parse; points at the character
    ├── StorageError             the store cannot do what was asked
    │   └── StoreUnavailableError  cannot append durably (disk full, read-only, locked)
    ├── NotFoundError            no entry at that index
    │   ├── PurgedError          the entry was purged under its retention policy
    │   └── NothingToEraseError  the entry has no detail, or it was already erased
    ├── AccessError              the caller may not do this
    │   ├── AuthenticationError  no valid credentials
    │   └── PermissionDeniedError  the role or tenant does not allow it; says why
    └── VerificationError        the log, an export, a proof or a note failed verification
        ├── ProofError           an inclusion or consistency proof does not verify
        ├── NoteError            a signed note or checkpoint is malformed or badly signed
        └── TamperError          stored data contradicts its hashes or checkpoints
"""

from __future__ import annotations

from dataclasses import dataclass


class TrailsealError(Exception):
    """Base of every error trailseal raises on purpose."""

    def diagnostics(self) -> str:
        """A human explanation, printed by the CLI."""
        return str(self)


class ConfigError(TrailsealError):
    """A setting, the data directory or a key file is unusable."""


class EventError(TrailsealError):
    """An event was refused at the boundary.

    ``field`` is a JSON path such as ``$.actor.id`` (``$`` for the whole event).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class IdConflictError(EventError):
    """An event id already stored (or earlier in the batch) with different content."""

    def __init__(self, event_id: str, index: int | None) -> None:
        where = f"entry {index}" if index is not None else "an earlier line of this batch"
        super().__init__(
            "$.id",
            f"id {event_id!r} was already used by {where} with different content; "
            "a resend must be byte-for-byte the same event, a new event needs a new id",
        )
        self.event_id = event_id
        self.index = index


@dataclass(frozen=True)
class LineProblem:
    """One bad line of a batch: its 1-based number and what is wrong."""

    line: int
    error: EventError

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


class BatchError(TrailsealError):
    """A batch was refused as a whole; every bad line is listed. ``lines`` is the
    batch's size, when known."""

    def __init__(self, problems: list[LineProblem], lines: int | None = None) -> None:
        self.problems = problems
        self.lines = lines
        count = len(problems)
        super().__init__(f"{count} bad line{'s' if count != 1 else ''}; nothing was appended")

    def diagnostics(self) -> str:
        lines = [str(self)]
        lines += [f"  {problem}" for problem in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        return "\n".join(lines)


class QueryError(TrailsealError):
    """A search query that does not parse or names what does not exist. ``position`` is
    the 0-based offset of the offending character in ``query``; ``field`` names the
    parameter that held it (``q``, or a report's ``changes``, ``phi``, ``query``)."""

    def __init__(self, query: str, position: int, message: str, field: str = "q") -> None:
        self.query = query
        self.position = position
        self.message = message
        self.field = field
        super().__init__(f"at character {position + 1}: {message}")

    def diagnostics(self) -> str:
        shown = self.query.replace("\n", " ").replace("\t", " ")
        start = max(0, self.position - 60)
        return f"{self}\n  {shown[start : start + 120]}\n  {' ' * (self.position - start)}^"


class CursorError(ConfigError):
    """A paging cursor this service did not issue (forged, truncated, or for another
    order)."""


class AlreadyExistsError(ConfigError):
    """Something with that name already exists (a principal, a log)."""


class StorageError(TrailsealError):
    """The store refused or failed an operation; nothing stored was changed."""


class StoreUnavailableError(StorageError):
    """The store cannot append durably right now (disk full, read-only, locked)."""


class BusyError(TrailsealError):
    """An expensive operation of this kind is already running on this log; try again
    when it is done (one verification at a time keeps ingestion fast)."""


class CaptureError(TrailsealError):
    """A change could not be audited, so it was refused before it ran
    (e.g. one statement changing more rows than change capture is set to record)."""


class NotFoundError(TrailsealError):
    """The log has no entry (or checkpoint) at the requested position."""


class PurgedError(NotFoundError):
    """The entry was purged under its retention policy: its hashes stay, its event is gone."""


class NothingToEraseError(NotFoundError):
    """The entry has no detail to erase, or its detail was already erased."""


class AccessError(TrailsealError):
    """The caller may not do what it asked; nothing was done."""


class AuthenticationError(AccessError):
    """No credentials, or credentials that are unknown, malformed or revoked."""


class PermissionDeniedError(AccessError):
    """The caller's role or tenant does not allow the operation; ``reason`` says why
    (and is what the log records)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class VerificationError(TrailsealError):
    """Verification failed. ``kind`` names the damage; ``index`` the first bad entry."""

    def __init__(self, kind: str, message: str, index: int | None = None) -> None:
        self.kind = kind
        self.index = index
        self.message = message
        where = f" at index {index}" if index is not None else ""
        super().__init__(f"{kind}{where}: {message}")


class ProofError(VerificationError):
    """A proof does not verify, or was asked for outside the tree."""

    def __init__(self, message: str) -> None:
        super().__init__("bad-proof", message)


class NoteError(VerificationError):
    """A signed note or checkpoint is malformed or not signed by the expected key."""

    def __init__(self, message: str) -> None:
        super().__init__("bad-checkpoint", message)


class TamperError(VerificationError):
    """Stored data contradicts its own hashes or its signed checkpoints."""
