"""Following the log to one destination: in order, at least once, resumable.

One :class:`Exporter` per destination reads the entries after its cursor (all of them,
or those a query in the search language selects), a batch at a time, and hands each
batch to the destination. The cursor (``DATA/exports/NAME.json``) moves past a batch
only once every entry in it is delivered or dead, so a restart resends at most the
batch in flight, and the destination's protocol decides whether that can be a second
copy (a bulk document id cannot; a syslog line can). What the receiver refuses for good
goes to the dead letters (``DATA/exports/NAME.dead.jsonl``), each with its reason, to be
sent again once the cause is fixed. Everything else is tried again with backoff, and
the reason shown by ``trailseal export-to status``; the exporter only reads the log, so
a destination that is down never slows an append or another destination.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from trailseal.access import entry_tenant
from trailseal.errors import ConfigError
from trailseal.export.destinations import Destination, Outcome, Transient
from trailseal.export.formats import Exported
from trailseal.ledger import Ledger, SearchFilter
from trailseal.query import Node

MAX_BACKOFF = 60.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class State:
    """An exporter's progress, kept durably: the last index done, counts, the last error."""

    cursor: int = -1  # every entry up to this index is delivered, dead, or not selected
    delivered: int = 0
    dead: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    updated_at: str | None = None
    lagging: bool = False  # whether the last lag entry said it is behind

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            found = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return cls()
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(
                f"{path}: unreadable export cursor ({exc}); restore it, or delete it to "
                "send everything again"
            ) from None
        known = {k: v for k, v in found.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: Path) -> None:
        self.updated_at = _now()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(orjson.dumps(self.__dict__, option=orjson.OPT_INDENT_2))
        temporary.replace(path)


@dataclass
class Exporter:
    """Sends the log's entries to one destination, from its cursor on."""

    ledger: Ledger
    destination: Destination
    state_path: Path
    dead_path: Path
    where: Node | None = None  # the search query's tree; None: every entry
    details: bool = False
    batch: int = 500
    poll: float = 0.5
    max_lag: int | None = None
    on_lag: Callable[[bool, int], object] | None = None  # told when it falls behind, or catches up
    visible: Callable[[dict[str, Any]], bool] | None = None  # the caller's tenant rule
    state: State = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.state = State.load(self.state_path)

    # -- reading --------------------------------------------------------------------

    def lag(self) -> int:
        """Entries after the cursor (selected or not)."""
        return max(0, self.ledger.size() - 1 - self.state.cursor)

    def _exported(self, index: int, entry: dict[str, Any], leaf: bytes, detail: Any) -> Exported:
        return Exported(
            origin=self.ledger.origin,
            index=index,
            leaf_hash=leaf.hex(),
            received_at=str(entry.get("received_at")),
            submitter=entry.get("submitter"),
            event=entry["event"],
            detail=detail if self.details else None,
            tenant=entry_tenant(entry["event"]),
        )

    def next_batch(self) -> tuple[list[Exported], int]:
        """The next entries to send, and the index the cursor may move to once they are
        done (past entries the query does not select)."""
        size = self.ledger.size()
        start = self.state.cursor + 1
        if start >= size:
            return [], self.state.cursor
        if self.where is None:
            found = []
            end = min(size, start + self.batch)
            # A purged entry (its retention period over) has nothing left to send, and
            # the log gives none for it: the range is done all the same.
            for stored, detail in self.ledger.stored(start, end):
                entry = orjson.loads(stored.entry)
                if self.visible is not None and not self.visible(entry["event"]):
                    continue
                value = orjson.loads(detail.detail) if detail and detail.detail else None
                found.append(self._exported(stored.index, entry, stored.leaf_hash, value))
            return found, end - 1
        if self.ledger.unindexed():
            self.ledger.catch_up()
        query = SearchFilter(
            where=self.where, after_index=self.state.cursor, below_index=size, limit=self.batch
        )
        views = list(self.ledger.find(query, details=self.details))
        done = views[-1].index if len(views) == self.batch else size - 1
        found = [
            self._exported(v.index, v.entry, v.leaf_hash, v.detail)
            for v in views
            if self.visible is None or self.visible(v.entry["event"])
        ]
        return found, done

    # -- sending ----------------------------------------------------------------------

    def run(self, *, once: bool = False) -> None:
        """Follow the log until stopped (or, with ``once``, until it has caught up)."""
        while not self.stop.is_set():
            batch, done = self.next_batch()
            if batch:
                self.send(batch)
            if not self.stop.is_set() and done > self.state.cursor:
                self.state.cursor = done
                self.state.save(self.state_path)
            self._check_lag()
            if not batch and done >= self.ledger.size() - 1:
                if once:
                    return
                self.stop.wait(self.poll)

    def send(self, batch: list[Exported]) -> None:
        """Deliver the batch whole (each entry delivered or dead), retrying what did not
        get through with backoff, until it is done or the exporter is stopped."""
        pending = list(range(len(batch)))
        attempt = 0
        while pending and not self.stop.is_set():
            try:
                outcome = self.destination.deliver([batch[i] for i in pending])
            except Transient as exc:
                outcome = Outcome(retry=set(range(len(pending))), wait=exc.wait, reason=exc.reason)
            self.state.delivered += len(outcome.delivered)
            for position, reason in outcome.dead.items():
                self._dead(batch[pending[position]], reason)
            retry = [pending[p] for p in sorted(outcome.retry)]
            if retry:
                attempt += 1
                self.state.last_error = outcome.reason or "not delivered"
                self.state.last_error_at = _now()
                self.state.save(self.state_path)
                self._check_lag()  # a destination down is falling behind: said while it is
                self.stop.wait(outcome.wait if outcome.wait is not None else _backoff(attempt))
            pending = retry
        if not pending:
            self.state.cursor = max(self.state.cursor, batch[-1].index)
            if attempt == 0:
                self.state.last_error = None
            self.state.save(self.state_path)

    def _dead(self, item: Exported, reason: str) -> None:
        self.state.dead += 1
        self.dead_path.parent.mkdir(parents=True, exist_ok=True)
        line = {"index": item.index, "reason": reason, "at": _now()}
        with self.dead_path.open("ab") as out:
            out.write(orjson.dumps(line) + b"\n")
            out.flush()

    def _check_lag(self) -> None:
        if self.max_lag is None or self.on_lag is None:
            return
        behind = self.lag()
        lagging = behind > self.max_lag
        if lagging != self.state.lagging:
            self.state.lagging = lagging
            self.state.save(self.state_path)
            self.on_lag(lagging, behind)

    # -- dead letters -------------------------------------------------------------------

    def dead_letters(self) -> list[dict[str, Any]]:
        return list(read_dead(self.dead_path))

    def replay(self) -> tuple[int, int]:
        """Send every dead letter again; those refused again stay (with the new reason).
        Returns (delivered, still dead)."""
        letters = self.dead_letters()
        if not letters:
            return 0, 0
        indexes = sorted({int(letter["index"]) for letter in letters})
        batch = []
        for index in indexes:
            view = self.ledger.get(index)
            batch.append(self._exported(index, view.entry, view.leaf_hash, view.detail))
        kept = self.dead_path.with_name(self.dead_path.name + ".replaying")
        self.dead_path.replace(kept)
        before_dead, before = self.state.dead, self.state.delivered
        try:
            self.send(batch)
        except BaseException:
            kept.replace(self.dead_path)  # nothing lost if the replay itself fails
            raise
        kept.unlink()
        again = self.state.dead - before_dead
        self.state.dead -= len(letters)
        self.state.save(self.state_path)
        return self.state.delivered - before, again


def _backoff(attempt: int) -> float:
    return float(min(MAX_BACKOFF, 0.5 * 2 ** min(attempt - 1, 8)))


def read_dead(path: Path) -> Iterator[dict[str, Any]]:
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        if line.strip():
            yield orjson.loads(line)
