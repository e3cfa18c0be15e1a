"""The ledger: one append-only, hash-chained, Merkle-verifiable log.

This is the library surface the CLI (and later the service) calls. Reads need
no key; appends and erasures load the signing key.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

import orjson

from trailseal.access.principals import Principal
from trailseal.checkpoints import Checkpoint, Signer, Verifier
from trailseal.config import (
    DEFAULT_LOG,
    Settings,
    check_log_name,
    default_store,
    resolve_data_dir,
    write_config,
)
from trailseal.errors import (
    ConfigError,
    EventError,
    IdConflictError,
    LineProblem,
    NotFoundError,
    NothingToEraseError,
    ProofError,
    PurgedError,
    StorageError,
    TamperError,
)
from trailseal.events import Event, EventLimits, event_from_mapping
from trailseal.ledger import keys
from trailseal.ledger.bulk import CHUNK_LINES, PreparedChunk, prepare_lines
from trailseal.ledger.counting import Counts, check_field, ordered_counts, tally
from trailseal.ledger.entry import (
    LOG_SUBMITTER,
    Prepared,
    check_submitter,
    event_fingerprint,
    matches_stored,
    utc_now,
)
from trailseal.ledger.keys import KeyFile
from trailseal.ledger.matching import compiled
from trailseal.ledger.received import first_received, received_counts
from trailseal.ledger.search import SearchFilter, catch_up, filter_node, pending
from trailseal.ledger.sequencer import AppendResult, Sequencer
from trailseal.ledger.verify import (
    ERASE_ACTION,
    VerificationReport,
    verify_since,
    verify_store,
)
from trailseal.proofs import (
    EMPTY_ROOT,
    NodeID,
    consistency_plan,
    fold,
    inclusion_plan,
    perfect_nodes,
    verify_consistency,
)
from trailseal.storage import (
    GROUPS,
    Page,
    Store,
    StoredDetail,
    StoredEntry,
    create_store,
    exact,
    is_postgres,
    narrow,
    open_store,
    sqlite_path,
)

_PAGE = 5_000  # candidates read from the search index at a time


def _export_line(stored: StoredEntry, detail: StoredDetail | None) -> bytes:
    """One export line: the entry's bytes as stored, its detail and salt (null if none);
    for a purged entry, its index and the leaf hash the log kept."""
    if not stored.entry:
        return b'{"purged":%d,"leaf_hash":"%s"}\n' % (stored.index, stored.leaf_hash.hex().encode())
    if detail is None or detail.detail is None or detail.salt is None:
        tail = b',"detail":null,"salt":null}\n'
    else:
        salt = detail.salt.hex().encode()
        tail = b',"detail":' + detail.detail + b',"salt":"' + salt + b'"}\n'
    return b'{"entry":' + stored.entry + tail


@dataclass(frozen=True)
class EntryView:
    """One stored entry as `trailseal get` shows it."""

    index: int
    entry: dict[str, Any]
    leaf_hash: bytes
    chain_hash: bytes
    detail: Any
    erased: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "leaf_hash": self.leaf_hash.hex(),
            "chain_hash": self.chain_hash.hex(),
            "detail": self.detail,
            "detail_erased": self.erased,
        }


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    proof: list[bytes]
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "leaf_hash": self.leaf_hash.hex(),
            "proof": [p.hex() for p in self.proof],
            "root": self.root.hex(),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    proof: list[bytes]
    old_root: bytes
    new_root: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "proof": [p.hex() for p in self.proof],
            "old_root": self.old_root.hex(),
            "new_root": self.new_root.hex(),
        }


def _repeated_ids(prepared: Sequence[Prepared], numbers: Sequence[int]) -> dict[int, LineProblem]:
    """Positions of events whose id an earlier line used for a different event."""
    first: dict[str, int] = {}
    bad: dict[int, LineProblem] = {}
    for position, item in enumerate(prepared):
        earlier = first.setdefault(item.event_id, position)
        if earlier == position:
            continue
        if event_fingerprint(prepared[earlier].event()) != event_fingerprint(item.event()):
            message = f"{IdConflictError(item.event_id, None).message} (line {numbers[earlier]})"
            bad[position] = LineProblem(numbers[position], EventError("$.id", message))
    return bad


def default_origin() -> str:
    return f"{socket.gethostname() or 'localhost'}/trailseal-{secrets.token_hex(4)}"


class Ledger:
    """An open log. Use :meth:`init` or :meth:`open`; close it when done."""

    def __init__(self, store: Store, key: KeyFile, settings: Settings) -> None:
        """A log over ``store``, signed with ``key``; ``settings`` are its limits and
        where its data directory is. Use :meth:`init` or :meth:`open`."""
        self.settings = settings
        self.store = store  # the writer: the sequencer, erasures, the search index
        self.key = key
        origin = store.meta("origin")
        verifier = store.meta("verifier")
        if origin is None or verifier is None:
            raise ConfigError(f"{store.url} lacks its origin or verifier key")
        self.origin = origin
        self.verifier = Verifier.from_string(verifier)
        # Reads use their own connection, so they never see a batch not yet committed.
        self.reader = store.reader()
        self._sequencer: Sequencer | None = None
        self._writer_lock = threading.Lock()
        self._erase_lock = threading.Lock()
        # When the log receives a batch: the wall clock, or a test's clock (retention's
        # periods run from it, so tests of years of retention set it).
        self.clock: Callable[[], str] = utc_now

    @classmethod
    def init(  # noqa: PLR0913 - where, what it is called, its key, and which log
        cls,
        data_dir: str | Path | None = None,
        *,
        origin: str | None = None,
        key_path: str | Path | None = None,
        store: str | None = None,
        log: str | None = None,
        tenants: Sequence[str] = (),
    ) -> Ledger:
        """Create a new log and its Ed25519 signing key; ``store`` is a store URL
        (default: SQLite in the data directory). With ``log``, a further log of the
        deployment in ``data_dir`` (which must hold its default log), in
        ``DATA/logs/LOG`` and the store derived from the deployment's; ``tenants``
        (names, or patterns with ``*``) are routed to it."""
        directory = resolve_data_dir(data_dir)
        if log is not None and check_log_name(log) != DEFAULT_LOG:
            return cls._init_named(
                directory,
                log,
                origin=origin,
                key_path=key_path,
                store=store,
                tenants=tuple(tenants),
            )
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create data directory {directory}: {exc.strerror}") from None
        settings = Settings.load(directory, key_path=key_path, store=store)
        if not is_postgres(settings.store) and sqlite_path(settings.store).exists():
            raise ConfigError(f"a log already exists in {directory}")
        created, origin = cls._create(settings, origin)
        default = settings.store == default_store(directory)
        write_config(
            directory,
            origin,
            Path(key_path) if key_path else None,
            None if default else settings.store,
        )
        settings = Settings.load(directory, key_path=key_path, store=store)
        return cls(created, KeyFile(settings.key_path), settings)

    @classmethod
    def _create(cls, settings: Settings, origin: str | None) -> tuple[Store, str]:
        """The key, the store and the verifier file of a new log; its origin."""
        origin = origin or settings.origin or default_origin()
        signer = Signer.generate(origin)
        keys.write_key(settings.key_path, signer)
        try:
            created = create_store(
                settings.store, {"origin": origin, "verifier": str(signer.verifier)}
            )
        except BaseException:
            settings.key_path.unlink()  # ours, made a moment ago: a retry can start afresh
            raise
        settings.layout.verifier.write_text(str(signer.verifier) + "\n", encoding="utf-8")
        return created, origin

    @classmethod
    def _init_named(  # noqa: PLR0913 - init's arguments
        cls,
        deployment: Path,
        log: str,
        *,
        origin: str | None,
        key_path: str | Path | None,
        store: str | None,
        tenants: tuple[str, ...],
    ) -> Ledger:
        root = Settings.load(deployment, store=store)
        if not (is_postgres(root.store) or sqlite_path(root.store).exists()):
            raise ConfigError(
                f"no log in {deployment}; create the deployment's default log first "
                "(`trailseal init`)"
            )
        directory = root.layout.log_dir(log)
        if directory.exists():
            raise ConfigError(f"the deployment already has a log {log!r} ({directory})")
        origin = origin or f"{root.origin or default_origin()}/{log}"
        directory.mkdir(parents=True, mode=0o700)
        key = Path(key_path) if key_path else None
        try:
            write_config(directory, origin, key, log=log, tenants=tenants)
            settings = Settings.load(directory, key_path=key_path, store=store)
            created, _ = cls._create(settings, origin)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)  # ours, made a moment ago
            raise
        return cls(created, KeyFile(settings.key_path), settings)

    @classmethod
    def open(
        cls,
        data_dir: str | Path | None = None,
        *,
        key_path: str | Path | None = None,
        max_event_bytes: int | None = None,
        store: str | None = None,
    ) -> Ledger:
        """Open the log of a data directory (its store as ``store``, the environment or
        its config file say)."""
        directory = resolve_data_dir(data_dir)
        if not directory.is_dir():
            raise ConfigError(f"no data directory {directory}; create a log with `trailseal init`")
        settings = Settings.load(
            directory, key_path=key_path, max_event_bytes=max_event_bytes, store=store
        )
        opened = open_store(settings.store)
        try:
            return cls(opened, KeyFile(settings.key_path), settings)
        except BaseException:
            opened.close()
            raise

    def close(self) -> None:
        self.reader.close()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def limits(self) -> EventLimits:
        return self.settings.limits

    # -- writing -------------------------------------------------------------

    def _writer(self) -> Sequencer:
        with self._writer_lock:  # two threads appending first must share one sequencer
            if self._sequencer is None:
                signer = self.key.load()
                if signer.verifier != self.verifier:
                    raise ConfigError(
                        f"signing key {self.key.path} is {signer.verifier}, but this "
                        f"log is verified with {self.verifier}"
                    )
                self._sequencer = Sequencer(
                    self.store, signer, self.origin, self.key, clock=self._now
                )
            return self._sequencer

    def _now(self) -> str:
        return self.clock()

    def append(self, events: Sequence[Event], submitter: str | None = None) -> AppendResult:
        """Append events durably, in order, idempotent by id; one checkpoint per commit.

        Each new entry records ``submitter`` (default: ``host:<os user>``)."""
        return self.append_prepared([Prepared.of(event) for event in events], submitter)

    def queue_depth(self) -> int:
        """Events waiting for the next commit (0 when nothing has been appended yet)."""
        return 0 if self._sequencer is None else self._sequencer.queue_depth

    def append_prepared(
        self, prepared: Sequence[Prepared], submitter: str | None = None
    ) -> AppendResult:
        """Append events prepared by :meth:`prepare_lines` (or :meth:`Prepared.of`)."""
        who = check_submitter(submitter) if submitter else Principal.host().id
        return self._writer().append(prepared, who)

    def prepare_lines(
        self,
        lines: Sequence[bytes],
        workers: int | None = None,
        *,
        pool: Executor | None = None,
        chunk_lines: int | None = None,
    ) -> Iterator[PreparedChunk]:
        """Parse, validate and prepare JSON Lines, in worker processes for large inputs
        (``pool`` lends long-lived ones).

        Yields chunks in order, a few ahead of the caller, so appending one chunk
        overlaps with preparing the next.
        """
        return prepare_lines(
            lines, self.limits, workers, pool=pool, chunk_lines=chunk_lines or CHUNK_LINES
        )

    def check_lines(
        self,
        lines: Sequence[bytes],
        workers: int | None = None,
        *,
        pool: Executor | None = None,
        chunk_lines: int | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> tuple[list[Prepared], list[int], list[LineProblem]]:
        """Prepare every line of a JSON Lines input and find every problem before
        anything is appended: bad events, one id used for two different events,
        and ids already stored with different content. Returns the good events,
        the line number of each, and the problems in line order. ``progress`` hears
        how many lines were checked."""
        prepared, numbers, problems = self.prepare_all(
            lines, workers, pool=pool, chunk_lines=chunk_lines, progress=progress
        )
        kept, numbers, found = self.check_prepared(prepared, numbers)
        return kept, numbers, sorted([*problems, *found], key=lambda problem: problem.line)

    def prepare_all(
        self,
        lines: Sequence[bytes],
        workers: int | None = None,
        *,
        pool: Executor | None = None,
        chunk_lines: int | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> tuple[list[Prepared], list[int], list[LineProblem]]:
        """Every line prepared (with no look at what the log stores): the good events,
        the line number of each, and the problems of the others."""
        prepared: list[Prepared] = []
        numbers: list[int] = []
        problems: list[LineProblem] = []
        for chunk in self.prepare_lines(lines, workers, pool=pool, chunk_lines=chunk_lines):
            prepared += chunk.prepared
            numbers += chunk.line_numbers
            problems += chunk.problems
            if progress is not None:
                progress(min(chunk.first_line - 1 + (chunk_lines or CHUNK_LINES), len(lines)))
        return prepared, numbers, problems

    def check_prepared(
        self, prepared: Sequence[Prepared], numbers: Sequence[int]
    ) -> tuple[list[Prepared], list[int], list[LineProblem]]:
        """The events (numbered by line or record) that may be appended: not one id used
        for two different events, nor an id already stored with different content; and
        the problems of the others."""
        bad = _repeated_ids(prepared, numbers)
        bad.update((p, LineProblem(numbers[p], e)) for p, e in self.conflicts(prepared).items())
        kept = [p for p in range(len(prepared)) if p not in bad]
        problems = sorted(bad.values(), key=lambda problem: problem.line)
        return [prepared[p] for p in kept], [numbers[p] for p in kept], problems

    def conflicts(self, prepared: Sequence[Prepared]) -> dict[int, IdConflictError]:
        """Which events (by position) reuse a stored id with different content."""
        known = self.reader.find_ids([item.event_id for item in prepared])
        found: dict[int, IdConflictError] = {}
        for position, item in enumerate(prepared):
            index = known.get(item.event_id)
            if index is not None and not matches_stored(item.event(), *self.reader.stored(index)):
                found[position] = IdConflictError(item.event_id, index)
        return found

    def erase(self, index: int, reason: str, actor: str | None = None) -> int:
        """Erase one entry's detail; the erasure itself is appended as an entry.

        Returns the index of the entry that records the erasure. Idempotent: the record's
        id is derived from the entry's index, so concurrent erasures (threads here, or
        other processes) write one record and one erasure, the others hearing that the
        detail was already erased; an erasure cut short after its record was written is
        completed by the next attempt, with the recorded reason.
        """
        reason = reason.strip()
        if not reason:
            raise EventError("reason", "an erasure needs a reason")
        with self._erase_lock:
            self._erasable(index)
            record_index, recorded = self._erasure_record(index, reason, actor)
            try:
                self.store.erase_detail(index, recorded, utc_now(), record_index)
            except StorageError:
                self._erasable(index)  # another process erased it meanwhile: say so
                raise
        return record_index

    def _erasable(self, index: int) -> None:
        view = self.get(index)
        if "detail_commitment" not in view.entry["event"]:
            raise NothingToEraseError(f"entry {index} has no detail to erase")
        if view.erased is not None:
            raise NothingToEraseError(
                f"the detail of entry {index} was already erased ({view.erased})"
            )

    def _erasure_record(self, index: int, reason: str, actor: str | None) -> tuple[int, str]:
        """The index and reason of the entry recording the erasure: one already written
        (an earlier attempt, another process), or one appended now."""
        record_id = f"detail-erase-{index}"
        found = self.reader.find_ids([record_id]).get(record_id)
        if found is None:
            record = event_from_mapping(
                {
                    "id": record_id,
                    "time": utc_now(),
                    "actor": {"id": actor or Principal.host().id, "type": "user"},
                    "action": ERASE_ACTION,
                    "resource": {"type": "entry", "id": str(index)},
                    "outcome": {"result": "success"},
                    "context": {"reason": reason[:4096]},
                }
            )
            try:
                return self.append([record], LOG_SUBMITTER).indexes[0], reason[:4096]
            except IdConflictError as exc:  # another process recorded it a moment ago
                if exc.index is None:
                    raise
                found = exc.index
        recorded = self.get(found).entry["event"].get("context", {}).get("reason") or reason
        return found, str(recorded)

    # -- reading -------------------------------------------------------------

    def size(self) -> int:
        return self.reader.size()

    def get(self, index: int) -> EntryView:
        # The bound keeps the index within SQLite's integers; search calls this per result,
        # so the log's size is read only to explain a miss.
        in_range = 0 <= index < 2**63
        stored = next(self.reader.entries(index, index + 1), None) if in_range else None
        if stored is None:
            raise NotFoundError(f"no entry {index}; the log has {self.size()} entries")
        if not stored.entry:
            raise self._purged(index)
        return self._view(stored)

    def _purged(self, index: int) -> PurgedError:
        found = self.reader.purged(index, index + 1).get(index)
        receipt = f" (purge receipt {found.receipt})" if found else ""
        return PurgedError(
            f"entry {index} was purged under its retention policy{receipt}; its leaf hash "
            "stays, so proofs over it still verify, but its event and detail are gone"
        )

    def _view(self, stored: StoredEntry) -> EntryView:
        index = stored.index
        detail = self.reader.details(index, index + 1).get(index)
        return self._viewed(stored, orjson.loads(stored.entry), detail)

    @staticmethod
    def _viewed(
        stored: StoredEntry, entry: dict[str, Any], detail: StoredDetail | None
    ) -> EntryView:
        return EntryView(
            stored.index,
            entry,
            stored.leaf_hash,
            stored.chain_hash,
            None if detail is None or detail.detail is None else orjson.loads(detail.detail),
            None if detail is None else detail.erased_reason,
        )

    def stored(
        self, start: int, end: int, chunk: int = 5_000
    ) -> Iterator[tuple[StoredEntry, StoredDetail | None]]:
        """Entries ``[start, end)`` as stored (bytes and hashes), each with its detail row,
        read ``chunk`` at a time: for the detection engine, which re-checks the hashes."""
        end = min(end, self.size())
        for offset in range(max(start, 0), end, chunk):
            stop = min(offset + chunk, end)
            details = self.reader.details(offset, stop)
            for row in self.reader.entries(offset, stop):
                if row.entry:  # a purged entry has nothing left to read
                    yield row, details.get(row.index)

    def export(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """JSON Lines: ``{"entry": ..., "detail": ..., "salt": ...}`` per index."""
        end = self.size() if end is None else min(end, self.size())
        for offset in range(max(start, 0), end, 10_000):
            stop = min(offset + 10_000, end)
            details = self.reader.details(offset, stop)
            for stored in self.reader.entries(offset, stop):
                yield _export_line(stored, details.get(stored.index))

    def checkpoint(self) -> str:
        latest = self.reader.latest_checkpoint()
        if latest is None:
            raise NotFoundError("the log is empty; nothing has been signed yet")
        return latest[1]

    def _folded(self, groups: list[list[NodeID]]) -> list[bytes]:
        """One read for every node the groups need; each group folded into one hash."""
        hashes = iter(self.reader.nodes([node for group in groups for node in group]))
        return [fold([next(hashes) for _ in group]) for group in groups]

    def root(self, size: int) -> bytes:
        """The tree root when the log had ``size`` entries."""
        if not 0 <= size <= self.size():
            raise ProofError(f"size {size} is beyond the log's {self.size()} entries")
        return self._folded([perfect_nodes(0, size)])[0] if size else EMPTY_ROOT

    def prove_inclusion(self, index: int, size: int | None = None) -> InclusionProof:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        log_size = self.size()
        size = log_size if size is None else size
        if not 0 <= index < size <= log_size:
            raise ProofError(
                f"no inclusion proof for index {index} at size {size}; the log has {log_size}"
            )
        groups = [[NodeID(0, index)], perfect_nodes(0, size), *inclusion_plan(index, size)]
        leaf, root, *proof = self._folded(groups)
        return InclusionProof(index, size, leaf, proof, root)

    def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` entries."""
        log_size = self.size()
        if not 0 <= old_size <= new_size <= log_size:
            raise ProofError(
                f"no consistency proof from size {old_size} to {new_size}; "
                f"the log has {log_size} entries"
            )
        roots = [perfect_nodes(0, size) for size in (old_size, new_size) if size]
        folded = iter(self._folded([*roots, *consistency_plan(old_size, new_size)]))
        old_root = next(folded) if old_size else EMPTY_ROOT
        new_root = next(folded) if new_size else EMPTY_ROOT
        return ConsistencyProof(old_size, new_size, list(folded), old_root, new_root)

    def verify(  # noqa: PLR0913 - what to trust, how to split the work, and where to start
        self,
        against: str | None = None,
        verifier: Verifier | None = None,
        *,
        workers: int | None = None,
        chunk_level: int = 16,
        progress: Callable[[int], object] | None = None,
        since: str | None = None,
    ) -> VerificationReport:
        """Verify the whole log; ``verifier`` overrides the key recorded in the store.

        Large logs are checked in chunks of ``2**chunk_level`` entries by
        ``workers`` processes (default: one per CPU). With ``since`` (a checkpoint
        note an earlier verification covered), only what was appended after it is
        checked, and the consistency proof from it to the newest checkpoint.
        """
        trusted_key = verifier or self.verifier
        if since is None:
            return verify_store(
                self.reader,
                trusted_key,
                self.origin,
                against,
                opener=self.store.opener(),
                workers=workers,
                chunk_level=chunk_level,
                progress=progress,
            )
        report = verify_since(self.reader, trusted_key, self.origin, since, progress=progress)
        old = Checkpoint.open(since, trusted_key, self.origin)
        proof = self.prove_consistency(old.size, report.size)
        verify_consistency(old.size, report.size, old.root, bytes.fromhex(report.root), proof.proof)
        if against is not None:
            outside = Checkpoint.open(against, trusted_key, self.origin)
            if outside.size > report.size or self.root(outside.size) != outside.root:
                raise TamperError(
                    "rewritten",
                    f"the log's root at size {outside.size} differs from the checkpoint kept "
                    "outside it",
                )
        return report

    def search(
        self, query: SearchFilter, progress: Callable[[int], object] | None = None
    ) -> list[EntryView]:
        """Entries matching ``query``, in index order (newest first if it asks); the search
        index first catches up with every entry appended since the last search
        (``progress`` hears how far)."""
        catch_up(self.store, progress)
        return list(self.find(query))

    def find(self, query: SearchFilter, *, details: bool = True) -> Iterator[EntryView]:
        """Entries matching ``query``, read a page at a time (the search index must have
        caught up). The index is derived and unhashed, so it only narrows: each candidate
        is checked against its entry's own bytes, and an edited index row can put no
        entry in front of a query it does not meet (another tenant's, say)."""
        node = filter_node(query)
        where = narrow(node)
        meets = compiled(node) if node is not None else None
        page = Page(
            min(max(query.limit, 64), _PAGE),
            query.after_index,
            query.below_index,
            query.newest_first,
        )
        wanted = query.limit
        while wanted > 0:
            indexes = self.reader.select(where, page)
            stored = self.reader.entries_at(indexes)
            if query.newest_first:
                stored.reverse()
            kept = []
            for row in stored:
                entry = orjson.loads(row.entry)
                if meets is None or meets(entry):
                    kept.append((row, entry))
                    if len(kept) == wanted:
                        break
            found = self.reader.details_at([row.index for row, _ in kept]) if details else {}
            for row, entry in kept:
                yield self._viewed(row, entry, found.get(row.index))
            wanted -= len(kept)
            if len(indexes) < page.limit:
                return
            last, limit = indexes[-1], min(page.limit * 2, _PAGE)
            if query.newest_first:
                page = replace(page, limit=limit, below_index=last)
            else:
                page = replace(page, limit=limit, after_index=last)

    def indexes(self, query: SearchFilter) -> list[int]:
        """The indexes of every entry matching ``query`` (its limit ignored), in order:
        from the search index alone when it decides the query exactly, else checked
        against each candidate entry (the search index must have caught up)."""
        node = filter_node(query)
        where = exact(node)
        if where is None:
            every = replace(query, limit=2**62, newest_first=False)
            return [view.index for view in self.find(every, details=False)]
        found: list[int] = []
        page = Page(_PAGE, query.after_index, query.below_index)
        while True:
            part = self.reader.select(where, page)
            found += part
            if len(part) < page.limit:
                return found
            page = replace(page, after_index=part[-1])

    def catch_up(self, progress: Callable[[int], object] | None = None) -> int:
        """Bring the search index up to the log's size; returns how many were indexed."""
        return catch_up(self.store, progress)

    def export_at(self, indexes: Sequence[int]) -> list[bytes]:
        """Export lines (entry, detail, salt) of the entries at ``indexes``, in index order."""
        wanted = sorted(set(indexes))
        details = self.reader.details_at(wanted)
        return [_export_line(s, details.get(s.index)) for s in self.reader.entries_at(wanted)]

    def action_counts(self) -> list[tuple[str, int]]:
        """Entries per action, from the search index (caught up first)."""
        catch_up(self.store)
        return self.reader.action_counts()

    def stored_ids(self, event_ids: Sequence[str]) -> dict[str, int]:
        """The index of each of these event ids the log holds (the others are absent)."""
        return self.reader.find_ids(list(event_ids))

    def first_received(self, moment: str) -> int:
        """The index of the first entry received at or after ``moment`` (fixed-width UTC);
        the log's size when there is none."""
        return first_received(self.reader, self.size(), moment)

    def received_counts(self, bounds: Sequence[str]) -> list[int]:
        """Entries the log received in each period between consecutive ``bounds``
        (fixed-width UTC times, ascending)."""
        return received_counts(self.reader, self.size(), bounds)

    def actions(self) -> list[str]:
        """Every action in the log, from the search index (caught up first)."""
        catch_up(self.store)
        return self.reader.actions()

    def sign_statement(self, text: str) -> str:
        """A signed note over ``text`` with the log's key (evidence-bundle manifests). The
        caller makes sure ``text`` can never be read as a checkpoint."""
        return self.key.load().sign(text)

    def count_by(
        self, query: SearchFilter, field: str, progress: Callable[[int], object] | None = None
    ) -> Counts:
        """How many entries matching ``query`` have each value of ``field``."""
        check_field(field)
        catch_up(self.store, progress)
        where = exact(filter_node(query)) if field in GROUPS else None
        if where is not None:  # the index decides: count there, not entry by entry
            page = Page(0, query.after_index, query.below_index)
            return ordered_counts(field, self.reader.group_counts(where, field, page))
        every = replace(query, limit=2**62)
        return tally((view.entry for view in self.find(every, details=False)), field)

    def unindexed(self) -> int:
        """Entries the search index has yet to catch up with."""
        return pending(self.reader)
