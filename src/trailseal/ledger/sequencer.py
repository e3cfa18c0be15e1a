"""Sequence, integrate, publish: the one writer of a log, with group commit.

Callers on many threads hand batches to :meth:`Sequencer.append`. Whoever
finds no commit in progress becomes the leader: it takes every waiting batch,
assigns indexes (sequence), grows the tree and chain (integrate), signs the
new checkpoint (publish) and commits all of it in one durable transaction.
The others wait and are answered together. A caller returns only after its
events are durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from trailseal.checkpoints import Checkpoint, Signer
from trailseal.errors import IdConflictError, NoteError, TrailsealError
from trailseal.ledger.entry import (
    Prepared,
    entry_bytes,
    event_fingerprint,
    matches_stored,
    received_tail,
    utc_now,
)
from trailseal.ledger.keys import KeyFile
from trailseal.proofs import (
    ZERO_CHAIN,
    CompactRange,
    chain_hash,
    consistency_plan,
    fold,
    leaf_hash,
    verify_consistency,
)
from trailseal.storage.base import AppendTransaction, SealedEntry, StoreWriter

MAX_BATCH = 10_000


@dataclass(frozen=True)
class AppendResult:
    """Where each event of one call landed; ``appended`` counts new entries."""

    indexes: list[int]
    appended: int
    first_index: int | None
    size: int


@dataclass
class _Request:
    events: Sequence[Prepared]
    submitter: str | None
    done: threading.Event = field(default_factory=threading.Event)
    result: AppendResult | None = None
    error: BaseException | None = None


@dataclass
class _Tree:
    """The in-memory head of the log: enough to append without reading it back."""

    size: int
    chain: bytes
    compact: CompactRange


class _Sealer:
    """Turns prepared events into entries: index, receipt time, leaf, chain, tree nodes."""

    def __init__(self, received_at: str, compact: CompactRange, chain: bytes) -> None:
        self.received_at = received_at
        self.tail = received_tail(received_at)
        self.compact = compact
        self.chain = chain
        self.sealed: list[SealedEntry] = []

    def submitted_by(self, submitter: str | None) -> None:
        """The entries added next were handed over by ``submitter``."""
        self.tail = received_tail(self.received_at, submitter)

    def add(self, index: int, item: Prepared) -> None:
        data = entry_bytes(item.body, index, self.tail)
        leaf = leaf_hash(data)
        self.chain = chain = chain_hash(self.chain, leaf)
        nodes = self.compact.append(leaf)
        self.sealed.append(
            SealedEntry(index, item.event_id, data, leaf, chain, nodes, item.detail, item.salt)
        )


class Sequencer:
    """Appends to one log through one durable transaction per group of batches."""

    def __init__(
        self,
        store: StoreWriter,
        signer: Signer,
        origin: str,
        key: KeyFile,
        *,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self._clock = clock  # when a batch is received (RFC 3339 UTC, microseconds)
        self._store = store
        self._signer = signer
        self._origin = origin
        self._key = key
        self._tree: _Tree | None = None
        self._fence: int | None = None  # the writer's fencing token when the head was read
        self._last: Checkpoint | None = None  # the checkpoint this process last signed
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self._leader = False

    @property
    def queue_depth(self) -> int:
        """Events waiting for the next commit."""
        with self._lock:
            return sum(len(request.events) for request in self._pending)

    def append(self, events: Sequence[Prepared], submitter: str | None = None) -> AppendResult:
        """Store prepared events durably (idempotent by id); return their indexes.

        ``submitter`` (checked by the caller) is recorded in each new entry."""
        request = _Request(events, submitter)
        with self._lock:
            self._pending.append(request)
            lead = not self._leader
            if lead:
                self._leader = True
        if lead:
            self._lead()
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _lead(self) -> None:
        while True:
            with self._lock:
                group = self._take()
                if not group:
                    self._leader = False
                    return
            try:
                self._commit(group)
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear of the failure
                for request in group:
                    # Nothing of the group was committed: no result may stand.
                    request.result = None
                    request.error = request.error or exc
                self._tree = None
            for request in group:
                request.done.set()

    def _take(self) -> list[_Request]:
        group: list[_Request] = []
        count = 0
        while self._pending and (not group or count + len(self._pending[0].events) <= MAX_BATCH):
            request = self._pending.pop(0)
            group.append(request)
            count += len(request.events)
        return group

    def _load(self, tx: AppendTransaction) -> _Tree:
        size = tx.size
        compact = CompactRange(size, tx.nodes(CompactRange.border(size)) if size else [])
        return _Tree(size, tx.last_chain_hash() or ZERO_CHAIN, compact)

    def _commit(self, group: list[_Request]) -> None:
        with self._store.append_transaction() as tx:
            tree = self._tree
            if tree is None or tree.size != tx.size or tx.fence != self._fence:
                # first use, or another writer appended since this one did
                tree = self._load(tx)
                self._last = None
                self._fence = tx.fence
            sealed, compact, chain = self._sequence(tx, tree, group)
            if not sealed:
                return
            tx.write(sealed)
            checkpoint, note = self._publish(tx, compact)
        self._tree = _Tree(compact.size, chain, compact)
        self._last = checkpoint
        self._key.signed(note)

    def _sequence(
        self, tx: AppendTransaction, tree: _Tree, group: list[_Request]
    ) -> tuple[list[SealedEntry], CompactRange, bytes]:
        """Assign indexes and seal every new event of the group; nothing is written yet."""
        ids = {item.event_id for request in group for item in request.events}
        known = tx.find_ids(sorted(ids))
        unique = not known and len(ids) == sum(len(request.events) for request in group)
        batch: dict[str, tuple[int, Prepared]] = {}
        seal = _Sealer(self._clock(), tree.compact.copy(), tree.chain)
        for request in group:
            if unique:  # the common case: every event is new, nothing to look up
                start = seal.compact.size
                plan: list[tuple[int, Prepared | None]] = list(
                    enumerate(request.events, start=start)
                )
            else:
                try:
                    plan = self._plan(tx, request.events, known, batch, seal.compact.size)
                except TrailsealError as exc:
                    request.error = exc
                    continue
            before = len(seal.sealed)
            seal.submitted_by(request.submitter)
            for index, item in plan:
                if item is not None:
                    seal.add(index, item)
            new = len(seal.sealed) - before
            first = seal.sealed[before].index if new else None
            request.result = AppendResult([index for index, _ in plan], new, first, 0)
        for request in group:
            if request.result is not None:
                request.result = replace(request.result, size=seal.compact.size)
        return seal.sealed, seal.compact, seal.chain

    def _plan(
        self,
        tx: AppendTransaction,
        events: Sequence[Prepared],
        known: dict[str, int],
        batch: dict[str, tuple[int, Prepared]],
        next_index: int,
    ) -> list[tuple[int, Prepared | None]]:
        """Assign an index to each event of one request, or refuse the request whole.

        Each item holds the event if it is new, None if it resends an earlier one
        (which keeps its first index).
        """
        plan: list[tuple[int, Prepared | None]] = []
        fresh: dict[str, tuple[int, Prepared]] = {}
        for item in events:
            event_id = item.event_id
            if event_id in known:
                index = known[event_id]
                if not matches_stored(item.event(), *tx.stored(index)):
                    raise IdConflictError(event_id, index)
                plan.append((index, None))
                continue
            earlier = fresh.get(event_id) or batch.get(event_id)
            if earlier is not None:
                if event_fingerprint(earlier[1].event()) != event_fingerprint(item.event()):
                    raise IdConflictError(event_id, None)
                plan.append((earlier[0], None))
                continue
            fresh[event_id] = (next_index, item)
            plan.append((next_index, item))
            next_index += 1
        batch.update(fresh)
        return plan

    def _publish(self, tx: AppendTransaction, compact: CompactRange) -> tuple[Checkpoint, str]:
        """Sign the new checkpoint, refusing one inconsistent with what was signed before.

        It is checked against the latest stored checkpoint and against the last
        one the key itself signed (kept beside the key, out of the database).
        """
        latest = tx.latest_checkpoint()
        prev_size = latest[0] if latest else 0
        checkpoint = Checkpoint(self._origin, compact.size, compact.root(), prev_size)
        candidates: list[Checkpoint | None]
        if self._last is not None and self._last.size == prev_size:
            candidates = [self._last]  # signed by this process, already checked
        else:
            candidates = [
                self._stored_checkpoint(latest),
                self._key.last_signed(self._signer),
            ]
        for previous in (c for c in candidates if c is not None):
            if previous.size > prev_size:
                # The key's own record is written only after its checkpoint commits, so a
                # store behind it lost checkpoints: signing now would paper over that.
                raise NoteError(
                    f"refusing to sign: this key already signed size {previous.size}, but the "
                    f"store's latest checkpoint is at size {prev_size}; the log was truncated, "
                    "rolled back or lost a checkpoint"
                )
            if previous.size > checkpoint.size:
                raise NoteError(
                    f"refusing to sign size {checkpoint.size}: this key already signed size "
                    f"{previous.size}; the log was truncated or rolled back"
                )
            plan = consistency_plan(previous.size, checkpoint.size)
            proof = [fold(tx.nodes(nodes)) for nodes in plan]
            try:
                verify_consistency(
                    previous.size, checkpoint.size, previous.root, checkpoint.root, proof
                )
            except TrailsealError as exc:
                raise NoteError(
                    f"refusing to sign size {checkpoint.size}: not consistent with the checkpoint "
                    f"at size {previous.size} ({exc})"
                ) from None
        note = checkpoint.sign(self._signer)
        tx.write_checkpoint(checkpoint.size, note)
        return checkpoint, note

    def _stored_checkpoint(self, latest: tuple[int, str] | None) -> Checkpoint | None:
        return None if latest is None else Checkpoint.open(latest[1], self._signer.verifier)
