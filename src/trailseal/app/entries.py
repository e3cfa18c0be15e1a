"""Operations on the log's entries: append, read, search, export, prove, verify, erase.

Each takes the :class:`~trailseal.app.caller.Caller` that asks, applies the role
table and the tenant rule, and records what it read in the log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass, field, replace

import orjson

from trailseal.access import Permission, entry_tenant, reserved
from trailseal.access.actions import refusal
from trailseal.app.caller import Caller
from trailseal.app.recorder import Recorder
from trailseal.checkpoints import Verifier
from trailseal.errors import (
    BatchError,
    BusyError,
    EventError,
    LineProblem,
    NotFoundError,
    PermissionDeniedError,
    PurgedError,
    TrailsealError,
    VerificationError,
)
from trailseal.ledger import (
    ConsistencyProof,
    EntryView,
    InclusionProof,
    Ledger,
    SearchFilter,
    VerificationReport,
)
from trailseal.ledger.counting import Counts
from trailseal.ledger.entry import Prepared
from trailseal.ledger.search import normalize_time
from trailseal.query import Exact, Match, both, parse, qualifier_values

APPEND_CHUNK = 10_000  # events a transaction when a batch is larger
Progress = Callable[[int], object]


@dataclass(frozen=True)
class CheckedBatch:
    """A batch checked for one caller: the events it may append, and every problem."""

    caller: Caller
    prepared: list[Prepared]
    line_numbers: list[int]  # 1-based, of each prepared event
    problems: list[LineProblem]
    lines: int


@dataclass(frozen=True)
class AppendOutcome:
    """What an append did: new entries, where each event landed, and what was refused."""

    appended: int
    first_index: int | None
    size: int
    placed: list[tuple[int, int]]  # (line number, index), resends at their first index
    problems: list[LineProblem]

    @property
    def duplicates(self) -> int:
        return len(self.placed) - self.appended


def _refusal(caller: Caller, item: Prepared, line: int) -> LineProblem | None:
    """Why ``caller`` may not append this event, if it may not: an action in the log's
    own namespaces (nobody but the log), or another tenant's event."""
    if reserved(item.action):
        return LineProblem(line, EventError("$.action", refusal(item.action)))
    if not caller.sees(item.tenant):
        return LineProblem(
            line,
            EventError(
                "$.resource.tenant",
                f"a principal of tenant {caller.principal.tenant!r} may only write that "
                "tenant's events; name it in resource.tenant or actor.tenant",
            ),
        )
    return None


def search_filter(  # noqa: PLR0913 - one argument per condition, by name
    *,
    q: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    outcome: str | None = None,
    tenant: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 1000,
    after_index: int = -1,
    below_index: int | None = None,
    newest_first: bool = False,
    names: tuple[str, str] = ("since", "until"),
) -> SearchFilter:
    """A search from what a door received: a query in the search language (``q``) and
    the older flags as its shorthands, all of which must hold. Times are RFC 3339 or
    dates, checked here (``names`` are what the door calls the two times)."""
    query = parse(q) if q else None
    return SearchFilter(
        where=query.root if query else None,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        tenant=tenant,
        since=normalize_time(since, names[0]) if since else None,
        until=normalize_time(until, names[1]) if until else None,
        limit=limit,
        after_index=after_index,
        below_index=below_index,
        newest_first=newest_first,
        text=q,
    )


_DESCRIBED = ("actor", "action", "resource_type", "resource_id", "outcome", "tenant")


def describe(query: SearchFilter) -> str:
    """The query as the log records it: its text, then its given shorthands in a fixed
    order."""
    names = (*_DESCRIBED, "since", "until")
    parts = [f"q={query.text}"] if query.text else []
    parts += [f"{n}={getattr(query, n)}" for n in names if getattr(query, n)]
    return " ".join(parts)[:1000]


def _names_another_tenant(query: SearchFilter, bound: str) -> bool:
    """Whether the search names a tenant other than ``bound`` (as a shorthand or in its
    query; a prefix counts as another, whatever it would match)."""
    named = [] if query.tenant is None else [Exact(query.tenant)]
    return any(
        value != Exact(bound) for value in [*named, *qualifier_values(query.where, "tenant")]
    )


@dataclass
class Entries:
    """The log's entries, as principals may see and change them."""

    ledger: Ledger
    recorder: Recorder
    # One verification at a time: it reads the whole log with a process per core, and
    # sixteen at once slowed appends from 10 ms to over a second.
    verifying: threading.Lock = field(default_factory=threading.Lock)

    # -- writing -------------------------------------------------------------

    def authorize_append(self, caller: Caller) -> None:
        """Refuse (and record) a caller that may not append, before its input is read."""
        self.recorder.authorize(caller, Permission.APPEND)

    def check(
        self,
        caller: Caller,
        lines: Sequence[bytes],
        *,
        pool: Executor | None = None,
        chunk_lines: int | None = None,
        progress: Progress | None = None,
    ) -> CheckedBatch:
        """Validate every line before anything is appended: the event schema, the caller's
        tenant, one id used for two different events, and ids stored with other content.
        Large inputs are prepared in worker processes (``pool``, or ones started here)."""
        self.recorder.authorize(caller, Permission.APPEND)
        prepared, numbers, problems = self.ledger.check_lines(
            lines, pool=pool, chunk_lines=chunk_lines, progress=progress
        )
        return self._batch(caller, prepared, numbers, problems, len(lines))

    def check_prepared(
        self, caller: Caller, prepared: Sequence[Prepared], numbers: Sequence[int]
    ) -> CheckedBatch:
        """:meth:`check` for events an importer prepared (numbered by record), which no
        line limit bounds: a source's record is kept whole, however large."""
        self.recorder.authorize(caller, Permission.APPEND)
        kept, kept_numbers, problems = self.ledger.check_prepared(prepared, numbers)
        return self._batch(caller, kept, kept_numbers, problems, len(prepared))

    @staticmethod
    def _batch(
        caller: Caller,
        prepared: list[Prepared],
        numbers: list[int],
        problems: list[LineProblem],
        lines: int,
    ) -> CheckedBatch:
        """The checked batch, less the events this caller may not append."""
        refused = {
            number: problem
            for item, number in zip(prepared, numbers, strict=True)
            if (problem := _refusal(caller, item, number)) is not None
        }
        if refused:
            problems = sorted([*problems, *refused.values()], key=lambda problem: problem.line)
            kept = [
                (item, n) for item, n in zip(prepared, numbers, strict=True) if n not in refused
            ]
            prepared, numbers = [item for item, _ in kept], [n for _, n in kept]
        return CheckedBatch(caller, prepared, numbers, problems, lines)

    def commit(
        self, batch: CheckedBatch, *, partial: bool = False, progress: Progress | None = None
    ) -> AppendOutcome:
        """Append a checked batch durably; with problems, refuse it whole unless ``partial``."""
        if batch.problems and not partial:
            raise BatchError(batch.problems, batch.lines)
        appended, first, size = 0, None, None
        placed: list[tuple[int, int]] = []
        for start in range(0, len(batch.prepared), APPEND_CHUNK):
            part = batch.prepared[start : start + APPEND_CHUNK]
            result = self.ledger.append_prepared(part, batch.caller.id)
            appended += result.appended
            first = result.first_index if first is None else first
            size = result.size
            numbers = batch.line_numbers[start : start + APPEND_CHUNK]
            placed += zip(numbers, result.indexes, strict=True)
            if progress is not None:
                progress(start + len(part))
        if size is None:  # nothing to append: say how large the log is
            size = self.ledger.size()
        return AppendOutcome(appended, first, size, placed, batch.problems)

    def append(
        self,
        caller: Caller,
        lines: Sequence[bytes],
        *,
        partial: bool = False,
        pool: Executor | None = None,
    ) -> AppendOutcome:
        """:meth:`check` then :meth:`commit`: the one append pipeline."""
        return self.commit(self.check(caller, lines, pool=pool), partial=partial)

    # -- reading -------------------------------------------------------------

    def size(self) -> int:
        """How many entries the log holds (public: every checkpoint says it)."""
        return self.ledger.size()

    def _visible(self, caller: Caller, index: int) -> EntryView:
        """The entry, or NotFoundError whether it is missing or of another tenant."""
        hidden = NotFoundError(f"no entry {index} visible to this principal")
        try:
            view = self.ledger.get(index)
        except NotFoundError:
            if caller.sees_all:
                raise  # the log's size is no secret from one who sees every tenant
            raise hidden from None
        if not caller.sees(entry_tenant(view.entry["event"])):
            # A probe of another tenant's entry: refused like any refusal, and recorded
            # (the answer stays "not found", so it tells nothing of the entry).
            self.recorder.refused(
                caller,
                f"entry {index} belongs to another tenant than {caller.principal.tenant!r}",
                resource={"type": "entry", "id": str(index)},
            )
            raise hidden
        return view

    def get(self, caller: Caller, index: int) -> EntryView:
        """One entry with its hashes and detail; the read is recorded."""
        self.recorder.authorize(caller, Permission.READ)
        view = self._visible(caller, index)
        self.recorder.record("audit.read", caller, resource={"type": "entry", "id": str(index)})
        return view

    def scoped(self, caller: Caller, query: SearchFilter) -> SearchFilter:
        """The search as ``caller`` may run it: a tenant-bound principal reads its own
        tenant's entries, and naming another tenant is a refusal, recorded."""
        self.recorder.authorize(caller, Permission.READ)
        if caller.sees_all:
            return query
        bound = caller.principal.tenant
        if _names_another_tenant(query, bound):
            reason = f"this principal sees only tenant {bound!r}"
            self.recorder.refused(
                caller, reason, resource={"type": "log"}, labels={"query": describe(query)}
            )
            raise PermissionDeniedError(reason)
        scope = Match("tenant", (Exact(bound),))
        return replace(query, where=both(query.where, scope), tenant=None)

    def search(
        self, caller: Caller, query: SearchFilter, progress: Progress | None = None
    ) -> list[EntryView]:
        """Entries matching ``query`` in index order (or newest first); a tenant-bound
        caller sees its own tenant's. The search is recorded."""
        scoped = self.scoped(caller, query)
        views = self.ledger.search(scoped, progress)
        self.recorder.record(
            "audit.read",
            caller,
            resource={"type": "log", "count": len(views)},
            labels={"query": describe(query)},
        )
        return views

    def count_by(
        self, caller: Caller, query: SearchFilter, field: str, progress: Progress | None = None
    ) -> Counts:
        """How many entries matching ``query`` have each value of ``field`` (any
        qualifier, or ``day``, ``hour``, ``month`` of the event's time). Recorded."""
        scoped = self.scoped(caller, query)
        counts = self.ledger.count_by(scoped, field, progress)
        self.recorder.record(
            "audit.read",
            caller,
            resource={"type": "log", "count": counts.total},
            labels={"query": describe(query), "count_by": field},
        )
        return counts

    def unindexed(self) -> int:
        """Entries the search index has yet to catch up with (for a progress bar)."""
        return self.ledger.unindexed()

    def export(self, caller: Caller, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """JSON Lines of entries ``[start, end)`` the caller may see; recorded before the
        first line is produced."""
        self.recorder.authorize(caller, Permission.EXPORT)
        self.recorder.record(
            "audit.export",
            caller,
            resource={"type": "log"},
            labels={"from": start, "to": -1 if end is None else end},
        )
        lines = self.ledger.export(start, end)
        if caller.sees_all:
            return lines
        return (
            line
            for line in lines
            if caller.sees(entry_tenant(orjson.loads(line)["entry"]["event"]))
        )

    def checkpoint(self, caller: Caller) -> str:
        """The latest signed checkpoint (a size and a root: no event data)."""
        self.recorder.authorize(caller, Permission.CHECKPOINT)
        return self.ledger.checkpoint()

    def prove_inclusion(
        self, caller: Caller, index: int, size: int | None = None
    ) -> InclusionProof:
        self.recorder.authorize(caller, Permission.PROVE)
        # A purged entry's leaf stays in the tree; whose it was went with its event, so
        # only a principal of every tenant (told "purged" by _visible) may prove it.
        with suppress(PurgedError):
            self._visible(caller, index)
        proof = self.ledger.prove_inclusion(index, size)
        self.recorder.record(
            "audit.read",
            caller,
            resource={"type": "entry", "id": str(index)},
            labels={"proof": "inclusion"},
        )
        return proof

    def prove_consistency(self, caller: Caller, old: int, new: int) -> ConsistencyProof:
        self.recorder.authorize(caller, Permission.PROVE)
        proof = self.ledger.prove_consistency(old, new)
        self.recorder.record(
            "audit.read", caller, resource={"type": "log"}, labels={"proof": "consistency"}
        )
        return proof

    def verify(
        self,
        caller: Caller,
        against: str | None = None,
        verifier: Verifier | None = None,
        progress: Progress | None = None,
        since: str | None = None,
    ) -> VerificationReport:
        """Verify the whole log (or, ``since`` a checkpoint verified before, what was
        appended after it) and record the result; raises the VerificationError on damage.
        One verification runs at a time on a log; another meanwhile raises BusyError.

        Recording is itself a check: the signer refuses to sign a checkpoint inconsistent
        with the last one it signed (kept beside the key, outside the database), which
        raises as damage too. When a failure cannot be recorded, the damage is still what
        the caller hears; a clean result that cannot be recorded is refused, since what
        cannot be recorded does not happen."""
        self.recorder.authorize(caller, Permission.VERIFY)
        if not self.verifying.acquire(blocking=False):
            raise BusyError("a verification of this log is already running; try again after it")
        try:
            report = self.ledger.verify(against, verifier, progress=progress, since=since)
        except VerificationError as damage:
            try:
                self._record_verification(caller, damage)
            except TrailsealError:
                raise damage from None
            raise
        finally:
            self.verifying.release()
        self._record_verification(caller, None)
        if not caller.sees_all:
            report = replace(report, erased=[])  # indexes of other tenants' entries
        return report

    def _record_verification(self, caller: Caller, damage: VerificationError | None) -> None:
        self.recorder.record(
            "audit.verify",
            caller,
            resource={"type": "log"},
            result="success" if damage is None else "failure",
            reason=None if damage is None else str(damage),
        )

    def erase(self, caller: Caller, index: int, reason: str) -> int:
        """Erase an entry's detail, with a reason; returns the index of the erasure's entry."""
        self.recorder.authorize(caller, Permission.ERASE)
        self._visible(caller, index)
        return self.ledger.erase(index, reason, actor=caller.id)
