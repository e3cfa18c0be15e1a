"""A deployment: the logs of one data directory, the routing that sends each event to
one of them, and the signed checkpoint that pins them all.

The data directory holds the ``default`` log; each further log is a data directory of
its own in ``DATA/logs/NAME`` (its origin, signing key, tree and checkpoints), with the
tenants routed to it in its ``config.toml``. Principals are the deployment's: one set
for every log. An event goes to the log its tenant is routed to (an exact name first,
then the longest matching pattern), else to ``default``; so a resent event always goes
to the log that stored it the first time, and is stored once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from trailseal.access import Permission
from trailseal.app.caller import Caller
from trailseal.app.core import App
from trailseal.app.entries import AppendOutcome, CheckedBatch, Progress
from trailseal.checkpoints import Checkpoint, DeploymentCheckpoint, LogHead
from trailseal.config import DEFAULT_LOG, Settings, check_log_name, log_names
from trailseal.errors import (
    BatchError,
    ConfigError,
    EventError,
    LineProblem,
    NoteError,
    NotFoundError,
    PermissionDeniedError,
    TrailsealError,
    VerificationError,
)
from trailseal.layout import resolve_data_dir
from trailseal.ledger import EntryView, SearchFilter, VerificationReport
from trailseal.ledger.counting import Counts, ordered_counts
from trailseal.ledger.entry import Prepared, utc_now

if TYPE_CHECKING:
    from trailseal.detect.store import Alert


@dataclass(frozen=True)
class Routes:
    """Which log each tenant's events go to."""

    exact: Mapping[str, str]
    patterns: tuple[tuple[str, str], ...]  # (pattern, log), the longest pattern first

    @classmethod
    def of(cls, tenants: Mapping[str, Sequence[str]]) -> Routes:
        """Routes from each log's tenants; one tenant (or pattern) named by two logs is
        refused, since its events could go to either."""
        exact: dict[str, str] = {}
        patterns: dict[str, str] = {}
        for log, names in sorted(tenants.items()):
            for name in names:
                table = patterns if any(ch in name for ch in "*?[") else exact
                if table.get(name, log) != log:
                    raise ConfigError(
                        f"tenant {name!r} is routed to two logs, {table[name]!r} and {log!r}; "
                        "name it in one log's config.toml"
                    )
                table[name] = log
        ordered = sorted(patterns.items(), key=lambda item: (-len(item[0]), item[0]))
        return cls(exact, tuple(ordered))

    def route(self, tenant: str | None) -> str:
        if tenant is None:
            return DEFAULT_LOG
        found = self.exact.get(tenant)
        if found is not None:
            return found
        for pattern, log in self.patterns:
            if fnmatchcase(tenant, pattern):
                return log
        return DEFAULT_LOG


@dataclass(frozen=True)
class LogInfo:
    """One log of the deployment, as ``logs list`` and ``GET /v1/logs`` show it: nothing
    its checkpoint does not already tell, and the tenants routed to it."""

    name: str
    origin: str
    size: int
    tenants: tuple[str, ...]
    verifier: str

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "origin": self.origin,
            "size": self.size,
            "tenants": list(self.tenants),
            "verifier": self.verifier,
        }


@dataclass(frozen=True)
class RoutedBatch:
    """A batch checked and split by log: each log's share, and every problem."""

    shares: dict[str, CheckedBatch]
    problems: list[LineProblem]
    lines: int


@dataclass(frozen=True)
class RoutedOutcome:
    """What an append across the deployment's logs did."""

    appended: int
    placed: list[tuple[int, str, int]]  # (line number, log, index)
    problems: list[LineProblem]
    logs: dict[str, AppendOutcome]  # each log the batch reached

    @property
    def duplicates(self) -> int:
        return len(self.placed) - self.appended


class Deployment:
    """Every log of a data directory, opened as they are asked for. Close it when done."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        key_path: str | Path | None = None,
        max_event_bytes: int | None = None,
        key_of: str = DEFAULT_LOG,
    ) -> None:
        """``key_path`` is the signing key of the log ``key_of`` (the others' are where
        their config.toml says)."""
        self.root = resolve_data_dir(data_dir)
        self._max_event_bytes = max_event_bytes
        self._key = (key_of, key_path)
        self._lock = threading.Lock()
        default = App.open(
            self.root, key_path=self._key_for(DEFAULT_LOG), max_event_bytes=max_event_bytes
        )
        self._apps: dict[str, App] = {DEFAULT_LOG: default}
        try:
            self.names = log_names(self.root)
            self.routes = Routes.of(
                {
                    name: Settings.load(default.ledger.settings.layout.log_dir(name)).tenants
                    for name in self.names[1:]
                }
            )
        except BaseException:
            default.close()
            raise

    @classmethod
    def open(
        cls,
        data_dir: str | Path | None = None,
        *,
        key_path: str | Path | None = None,
        max_event_bytes: int | None = None,
        key_of: str = DEFAULT_LOG,
    ) -> Self:
        return cls(data_dir, key_path=key_path, max_event_bytes=max_event_bytes, key_of=key_of)

    def _key_for(self, name: str) -> str | Path | None:
        return self._key[1] if self._key[0] == name else None

    @property
    def default(self) -> App:
        return self._apps[DEFAULT_LOG]

    def app(self, name: str) -> App:
        """The log called ``name`` (NotFoundError, listing the logs, when there is none)."""
        check_log_name(name)
        with self._lock:
            found = self._apps.get(name)
            if found is None:
                if name not in self.names:
                    raise NotFoundError(
                        f"no log {name!r} in this deployment; its logs: {', '.join(self.names)}"
                    )
                directory = self.default.ledger.settings.layout.log_dir(name)
                found = App.open(
                    directory, key_path=self._key_for(name), max_event_bytes=self._max_event_bytes
                )
                self._apps[name] = found
            return found

    def apps(self) -> Iterator[App]:
        """Every log, default first."""
        for name in self.names:
            yield self.app(name)

    def visible(self, caller: Caller) -> list[str]:
        """The logs ``caller`` may read: all of them, for a principal of every tenant; the
        default log and the one its tenant is routed to, for one bound to a tenant."""
        if caller.sees_all:
            return list(self.names)
        routed = self.routes.route(caller.principal.tenant)
        return [name for name in self.names if name in (DEFAULT_LOG, routed)]

    def readable(self, caller: Caller, name: str) -> App:
        """The log ``name``, if ``caller`` may see it (NotFoundError otherwise, as for a
        log that does not exist: the names of other tenants' logs are not told)."""
        if name not in self.visible(caller):
            raise NotFoundError(
                f"no log {name!r} visible to this principal; its logs: "
                f"{', '.join(self.visible(caller))}"
            )
        return self.app(name)

    def describe(self, caller: Caller) -> list[LogInfo]:
        """The logs ``caller`` may see, with their sizes and routed tenants."""
        self.default.recorder.authorize(caller, Permission.CHECKPOINT)
        found = []
        for name in self.visible(caller):
            ledger = self.app(name).ledger
            tenants = ledger.settings.tenants if caller.sees_all else ()
            found.append(LogInfo(name, ledger.origin, ledger.size(), tenants, str(ledger.verifier)))
        return found

    # -- appending -----------------------------------------------------------

    def append(  # noqa: PLR0913 - the one append pipeline's options
        self,
        caller: Caller,
        lines: Sequence[bytes],
        *,
        partial: bool = False,
        pool: Executor | None = None,
        chunk_lines: int | None = None,
        only: str | None = None,
    ) -> RoutedOutcome:
        """:meth:`check` then :meth:`commit`."""
        batch = self.check(caller, lines, pool=pool, chunk_lines=chunk_lines, only=only)
        return self.commit(batch, partial=partial)

    def check(  # noqa: PLR0913 - the one append pipeline's options
        self,
        caller: Caller,
        lines: Sequence[bytes],
        *,
        pool: Executor | None = None,
        chunk_lines: int | None = None,
        progress: Progress | None = None,
        only: str | None = None,
    ) -> RoutedBatch:
        """Check every event and route each by its tenant, before anything is appended.
        With ``only``, the batch was sent to that log: an event routed to another is
        refused (appended there, it could be stored a second time in the log it routes
        to)."""
        default = self.default
        default.entries.authorize_append(caller)
        prepared, numbers, problems = default.ledger.prepare_all(
            lines, pool=pool, chunk_lines=chunk_lines, progress=progress
        )
        shares: dict[str, tuple[list[Prepared], list[int]]] = {}
        for item, number in zip(prepared, numbers, strict=True):
            routed = self.routes.route(item.tenant)
            if only is not None and routed != only:
                problems.append(LineProblem(number, _misrouted(item.tenant, routed, only)))
                continue
            items, numbered = shares.setdefault(routed, ([], []))
            items.append(item)
            numbered.append(number)
        batches: dict[str, CheckedBatch] = {}
        for name, (items, numbered) in sorted(shares.items()):
            batch = self.app(name).entries.check_prepared(caller, items, numbered)
            batches[name] = batch
            problems += batch.problems
        problems.sort(key=lambda problem: problem.line)
        return RoutedBatch(batches, problems, len(lines))

    def commit(self, batch: RoutedBatch, *, partial: bool = False) -> RoutedOutcome:
        """Append each log's share durably; with problems, refuse the batch whole unless
        ``partial``. Each log's share is durable on its own: a failure in one log's
        commit leaves the shares committed before it stored (a resend stores the rest,
        and each event once)."""
        if batch.problems and not partial:
            raise BatchError(batch.problems, batch.lines)
        outcomes: dict[str, AppendOutcome] = {}
        placed: list[tuple[int, str, int]] = []
        for name, share in batch.shares.items():
            outcome = self.app(name).entries.commit(replace(share, problems=[]), partial=True)
            outcomes[name] = outcome
            placed += [(line, name, index) for line, index in outcome.placed]
        placed.sort()
        appended = sum(outcome.appended for outcome in outcomes.values())
        return RoutedOutcome(appended, placed, batch.problems, outcomes)

    # -- reading across the logs ----------------------------------------------

    def search(
        self, caller: Caller, query: SearchFilter, progress: Progress | None = None
    ) -> list[tuple[str, EntryView]]:
        """``query`` in every log ``caller`` may see (each search recorded in its log):
        each log's matches in its own order, logs by name, up to the query's limit."""
        found: list[tuple[str, EntryView]] = []
        for name in self.visible(caller):
            if len(found) >= query.limit:
                break
            left = replace(query, limit=query.limit - len(found))
            views = self.app(name).entries.search(caller, left, progress)
            found += [(name, view) for view in views]
        return found

    def count_by(self, caller: Caller, query: SearchFilter, field: str) -> Counts:
        """How many entries matching ``query`` have each value of ``field``, over every
        log ``caller`` may see (each count recorded in its log)."""
        counter: Counter[Any] = Counter()
        total = 0
        for name in self.visible(caller):
            counts = self.app(name).entries.count_by(caller, query, field)
            total += counts.total
            for value, count in counts.values:
                counter[value] += count
        return ordered_counts(field, counter.items(), total)

    def verify(
        self, caller: Caller, progress: Progress | None = None
    ) -> dict[str, VerificationReport]:
        """Verify every log ``caller`` may see, each recorded in its own log; the first
        damage found raises, naming its log."""
        reports: dict[str, VerificationReport] = {}
        for name in self.visible(caller):
            try:
                reports[name] = self.app(name).entries.verify(caller, progress=progress)
            except VerificationError as damage:
                damage.args = (f"log {name}: {damage}",)
                raise
        return reports

    def alerts(
        self, caller: Caller, status: str | None = None, rule: str | None = None
    ) -> list[tuple[str, Alert]]:
        """Alerts of every log ``caller`` may see, each log's oldest first (each listing
        recorded in its log)."""
        return [
            (name, alert)
            for name in self.visible(caller)
            for alert in self.app(name).alerts.list(caller, status=status, rule=rule)
        ]

    # -- the deployment checkpoint ---------------------------------------------

    def checkpoint(self, caller: Caller) -> str:
        """A signed note listing every log's latest checkpoint (size, root, verifier key),
        signed with the default log's key. A log with no checkpoint yet is listed empty."""
        self.default.recorder.authorize(caller, Permission.CHECKPOINT)
        if not caller.sees_all:
            # The note names every log, and so the tenants routed to them.
            reason = (
                "the deployment checkpoint names every log; a principal of one tenant sees its own"
            )
            self.default.recorder.refused(caller, reason, resource={"type": "deployment"})
            raise PermissionDeniedError(reason)
        heads = []
        for app in self.apps():
            ledger = app.ledger
            try:
                head = Checkpoint.open(ledger.checkpoint(), ledger.verifier, ledger.origin)
                size, root = head.size, head.root
            except NotFoundError:
                size, root = 0, ledger.root(0)
            heads.append(LogHead(app.log, size, root, ledger.verifier))
        note = DeploymentCheckpoint(self.default.ledger.origin, utc_now(), tuple(heads))
        return self.default.ledger.sign_statement(note.text())

    def check_checkpoint(self, note: str) -> DeploymentCheckpoint:
        """Verify a deployment checkpoint against these logs: its signature by the
        default log's key, each listed log's key, and each listed root against the log's
        own tree at that size (so a log rewritten since shows). Raises VerificationError."""
        found = DeploymentCheckpoint.open(note, self.default.verifier)
        for head in found.logs:
            if head.name not in self.names:
                raise NoteError(f"the deployment checkpoint lists log {head.name!r}, not here")
            ledger = self.app(head.name).ledger
            if head.verifier != ledger.verifier:
                raise NoteError(
                    f"log {head.name}: listed with key {head.verifier.name}, not its own"
                )
            if head.size > ledger.size():
                raise NoteError(
                    f"log {head.name}: listed at size {head.size}, but it holds {ledger.size()}"
                )
            if ledger.root(head.size) != head.root:
                raise NoteError(f"log {head.name}: its tree at size {head.size} has another root")
        return found

    def close(self) -> None:
        errors: list[TrailsealError] = []
        for app in self._apps.values():
            try:
                app.close()
            except TrailsealError as exc:
                errors.append(exc)
        self._apps.clear()
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _misrouted(tenant: str | None, routed: str, only: str) -> EventError:
    whose = "an event with no tenant" if tenant is None else f"tenant {tenant!r}"
    return EventError(
        "$.resource.tenant",
        f"{whose} is routed to log {routed!r}, not {only!r}; send it there, or "
        "to the deployment's own append, which routes it",
    )
