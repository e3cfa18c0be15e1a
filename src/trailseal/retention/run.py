"""A retention run: seal what is past its hot period into the cold tier, purge what is past
its total period, and leave a signed record of both.

Each step is one durable transaction, ordered so that a run killed anywhere leaves a log
that verifies, and the next run finishes the work without losing, duplicating or
half-sealing an entry:

1. **Recover**: a purge receipt whose ``retention.purge`` entry is missing gets it; a
   segment that no cold entry names any more (retired by a purge, or written by a run
   killed before it recorded it) is deleted once its retain-until date has passed.
2. **Seal**: per policy and per month in which its entries' total period ends, a Parquet
   segment is written and stored (under a name holding its SHA-256: a second write of
   the same entries is the same object), then recorded with its signed manifest and
   its entries' bytes dropped from the hot store, in one transaction. Its retain-until
   date is the earliest moment any entry in it may be purged, so Object Lock never
   outlasts what the policy allows, and never ends before it.
3. **Purge**: cold entries that stay, but share a segment with entries to purge, are
   first sealed again into a new segment; then one transaction records the signed
   receipt (index ranges and leaf hashes) and drops the entries' bytes, details and
   search rows; then the purge is recorded in the log; then the segments no entry
   names are deleted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from trailseal.errors import ConfigError
from trailseal.ledger import Ledger, SearchFilter
from trailseal.ledger.search import search_row
from trailseal.ledger.tiers import RECEIPT_STATEMENT, SEGMENT_STATEMENT, ranges, statement
from trailseal.query import Exact, Match, Node, Not, both
from trailseal.retention.holds import Hold
from trailseal.retention.plan import (
    RETIRE,
    Counter,
    governed,
    parse_moment,
    retired_documents,
    utc,
)
from trailseal.retention.policy import Policy, RetentionConfig, any_of
from trailseal.storage import is_postgres
from trailseal.storage.cold import COLD_LOCATION
from trailseal.storage.segments import (
    ColdStorageError,
    SegmentStore,
    open_segments,
    segment_name,
    sha256_hex,
    write_segment,
)

PURGE, SEAL = "retention.purge", "retention.seal"
SEGMENT_ROWS = 100_000  # at most this many entries in one segment
_READ = 20_000  # entries read at a time

Record = Callable[[str, dict[str, Any], str, dict[str, str]], None]
"""Writes one of the run's own entries: (action, resource, reason, labels)."""

Fault = Callable[[str], None]
"""Called at each step with its name: tests kill the process there."""


def _no_fault(step: str) -> None:
    del step


@dataclass
class RunReport:
    """What one run did."""

    at: str
    sealed: int = 0  # entries moved to the cold tier
    segments: list[str] = field(default_factory=list)  # segments written
    resealed: int = 0  # cold entries moved to a new segment ahead of a purge
    purged: int = 0
    receipts: list[int] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # segments deleted
    kept_locked: list[str] = field(default_factory=list)  # retired, still under retention
    held: int = 0  # past their total period, kept by a legal hold
    recovered: int = 0  # receipts whose log entry an interrupted run had not written
    policies: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "sealed": self.sealed,
            "segments": self.segments,
            "resealed": self.resealed,
            "purged": self.purged,
            "receipts": self.receipts,
            "deleted_segments": self.deleted,
            "retired_segments_still_locked": self.kept_locked,
            "held": self.held,
            "recovered_receipts": self.recovered,
            "policies": self.policies,
        }


class _Row(NamedTuple):
    """One entry as a run reads it from the log (a tuple: millions are read)."""

    index: int  # type: ignore[assignment]  # the glossary's word; shadows tuple.index
    event_id: str
    entry: bytes
    leaf: bytes
    received: str  # when the log received it (periods run from here)


@dataclass(frozen=True)
class _Decision:
    """What one policy does to the entries it governs at this run."""

    policy: Policy
    cold: list[int]  # to seal (hot now, past the hot period)
    purge: list[int]  # to purge (past the total period, not held)
    held: int


def cold_location(config: RetentionConfig, data_dir: Path) -> str:
    """Where this configuration puts segments: its ``cold`` (a relative folder is inside
    the data directory), by default ``DATA/cold``."""
    if config.cold is None:
        return str((data_dir / "cold").resolve())
    if config.cold.startswith("s3://"):
        return config.cold
    folder = Path(config.cold).expanduser()
    return str((folder if folder.is_absolute() else data_dir / folder).resolve())


class Runner:
    """One retention run over one log."""

    def __init__(  # noqa: PLR0913 - the log, its rules, the moment, and who acts
        self,
        ledger: Ledger,
        config: RetentionConfig,
        location: str,
        holds: Sequence[Hold],
        record: Record,
        *,
        runner: str,
        fault: Fault = _no_fault,
        progress: Callable[[str], object] | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = ledger.store
        self.config = config
        self.holds = holds
        self.record = record
        self.runner = runner
        self.fault = fault
        self.say = progress or (lambda _message: None)
        # Inside a SQLite log's data directory the location is kept relative to it, so a
        # copied or restored data directory keeps its cold tier.
        folder = Path(location)
        data_dir = ledger.settings.data_dir.resolve()
        local = not location.startswith("s3://") and folder.is_relative_to(data_dir)
        sqlite = not is_postgres(self.store.url)  # a file in its data directory
        self.recorded_as = str(folder.relative_to(data_dir)) if local and sqlite else location
        recorded = self.store.meta(COLD_LOCATION)
        if recorded is not None and recorded != self.recorded_as:
            raise ConfigError(
                f"this log's segments are in {recorded}, but retention.yaml says cold: "
                f"{location}; a log keeps one cold tier (move the segments, then say so)"
            )
        self.location = location
        self.tier: SegmentStore = open_segments(location)

    # -- deciding ------------------------------------------------------------------

    def decide(self, at: datetime) -> list[_Decision]:
        """Per policy, in rank order: what to seal and what to purge at ``at``."""
        self.ledger.catch_up()
        size = self.ledger.size()
        held = any_of([hold.node for hold in self.holds]) if self.holds else None
        frozen_nodes = [hold.node for hold in self.holds if hold.stops_cold]
        frozen = any_of(frozen_nodes) if frozen_nodes else None
        ranked = self.config.ranked()
        decisions = []
        for n, policy in enumerate(ranked):
            governs, node = governed(policy, ranked[:n])
            if not governs:
                continue
            past_total = self._past_total(policy, node, at, size)
            purge = self._select(node, past_total, size, held, excluding=bool(self.holds))
            everything = self._select(node, past_total, size)
            cold: list[int] = []
            if policy.hot is not None:
                edge = min(self.ledger.first_received(utc(policy.hot.before(at))), size)
                candidates = self._select(node, edge, edge, frozen, excluding=bool(frozen_nodes))
                gone = set(purge)
                already = self.store.cold_at(candidates)
                cold = [i for i in candidates if i not in gone and i not in already]
            decisions.append(_Decision(policy, cold, purge, len(everything) - len(purge)))
        return decisions

    def _past_total(
        self, policy: Policy, node: Node | None, at: datetime, size: int
    ) -> Node | int | None:
        """What is past the total period: below an index, or (per document) the records
        of documents retired at least the total ago (None: nothing)."""
        if policy.per_document:
            expired = retired_documents(Counter(self.ledger), node, policy, at)
            return any_of(list(expired)) if expired else None
        return min(self.ledger.first_received(utc(policy.total.before(at))), size)

    def _select(
        self,
        node: Node | None,
        within: Node | int | None,
        size: int,
        excluded: Node | None = None,
        *,
        excluding: bool = False,
    ) -> list[int]:
        """Indexes governed by ``node`` within ``within`` (an index bound, or a query; None:
        nothing), less what ``excluded`` covers when ``excluding``."""
        if within is None:
            return []
        if isinstance(within, int):
            where, below = node, within
        else:
            where, below = both(node, within), size
        if excluding:
            if excluded is None:  # a hold over everything
                return []
            where = both(where, Not(excluded))
        if below <= 0:
            return []
        return self.ledger.indexes(SearchFilter(where=where, below_index=below))

    # -- running -------------------------------------------------------------------

    def run(self, at: datetime) -> RunReport:
        report = RunReport(utc(at))
        self.check_segments()
        self.recover(at, report)
        decisions = self.decide(at)
        for decision in decisions:
            report.held += decision.held
            report.policies[decision.policy.name] = {
                "to_cold": len(decision.cold),
                "to_purge": len(decision.purge),
                "held": decision.held,
            }
        for decision in decisions:
            if decision.cold:
                self.say(f"{decision.policy.name}: sealing {len(decision.cold):,} entries ...")
                self.seal(decision.policy, decision.cold, at, report)
        purge = {i: d.policy for d in decisions for i in d.purge}
        if purge:
            self.say(f"purging {len(purge):,} entries ...")
            self.purge(purge, at, report)
        if report.sealed:
            self.record(
                SEAL,
                {"type": "retention", "count": report.sealed},
                f"{report.sealed} entries sealed into {len(report.segments)} segments",
                {"segments": str(len(report.segments)), "location": self.location[:200]},
            )
        self.retire(at, report)
        return report

    def seal(self, policy: Policy, indexes: list[int], at: datetime, report: RunReport) -> None:
        """Seal ``indexes`` (all governed by ``policy``) into segments, one per month in
        which their total period ends (at most SEGMENT_ROWS each). The log receives in
        index order, so those months rise with the index: each segment is written as
        soon as the next entry falls in a later month, holding one segment in memory."""
        part: list[_Row] = []
        month = ""
        for rows in self._read(indexes):
            for row in rows:
                ends = utc(policy.total.after(parse_moment(row.received)))[:7]
                if part and (ends != month or len(part) >= SEGMENT_ROWS):
                    self._seal_part(policy, part, at, report)
                    part = []
                month = ends
                part.append(row)
        if part:
            self._seal_part(policy, part, at, report)

    def _seal_part(
        self,
        policy: Policy,
        part: list[_Row],
        at: datetime,
        report: RunReport,
    ) -> None:
        name = self._write(policy, part, at)
        report.segments.append(name)
        report.sealed += len(part)
        self.say(f"sealed {len(part):,} entries into {name}")

    def _read(self, indexes: Sequence[int]) -> Iterator[list[_Row]]:
        """The entries at ``indexes`` (purged ones left out), a batch at a time."""
        ordered = sorted(indexes)
        for start in range(0, len(ordered), _READ):
            stored = self.ledger.reader.entries_at(ordered[start : start + _READ])
            yield [
                _Row(
                    s.index,
                    s.event_id,
                    s.entry,
                    s.leaf_hash,
                    str(orjson.loads(s.entry)["received_at"]),
                )
                for s in stored
                if s.entry
            ]

    def _write(self, policy: Policy, rows: list[_Row], at: datetime) -> str:
        """Write, store and record one segment of ``rows`` (in index order)."""
        rows.sort(key=lambda row: row.index)
        columns: dict[str, list[object]] = defaultdict(list)
        for row in rows:
            fields = search_row(row.index, row.entry)
            for name in ("actor", "action", "resource_type", "resource_id", "outcome", "tenant"):
                columns[name].append(getattr(fields, name))
            columns["idx"].append(row.index)
            columns["time"].append(fields.time)
            columns["event_id"].append(row.event_id)
            columns["received_at"].append(row.received)
            columns["leaf_hash"].append(row.leaf)
            columns["entry"].append(row.entry)
        data = write_segment(columns)
        digest = sha256_hex(data)
        first, last = rows[0].index, rows[-1].index
        name = segment_name(first, last, digest)
        # The earliest moment any of these may be purged; a day ahead at least (held
        # entries past their period stay until released, and a lock lies in the future).
        retain = max(
            min(policy.total.after(parse_moment(row.received)) for row in rows),
            at + timedelta(days=1),
        )
        latest = self.store.latest_checkpoint()
        manifest = json.dumps(
            {
                "log": self.ledger.origin,
                "segment": name,
                "first": first,
                "last": last,
                "rows": len(rows),
                "sha256": digest,
                "bytes": len(data),
                "policy": policy.name,
                "retain_until": utc(retain),
                "sealed_at": utc(at),
                "sealed_by": self.runner,
                "checkpoint": latest[1] if latest else None,
            },
            sort_keys=True,
        )
        signature = self.ledger.sign_statement(
            statement(SEGMENT_STATEMENT, self.ledger.origin, name, manifest)
        )
        shipped = json.dumps({"manifest": json.loads(manifest), "signature": signature}, indent=1)
        self.fault("seal:write")
        self.tier.put(name, data, shipped.encode(), retain)
        if sha256_hex(self.tier.get(name)) != digest:  # read back before the bytes go
            raise ColdStorageError(
                f"segment {name} in {self.location} reads back other bytes than were written"
            )
        self.fault("seal:stored")
        if self.store.meta(COLD_LOCATION) is None:
            self.store.add_meta(COLD_LOCATION, self.recorded_as)
        self.store.seal(name, manifest, signature, [row.index for row in rows])
        self.fault("seal:recorded")
        return name

    def purge(self, purge: dict[int, Policy], at: datetime, report: RunReport) -> None:
        """Purge ``purge`` (index: the policy it is purged under)."""
        self._reseal_survivors(set(purge), at, report)
        rows: list[tuple[int, str]] = []
        leaves: dict[int, bytes] = {}
        for batch in self._read(list(purge)):
            for row in batch:
                rows.append((row.index, row.received))
                leaves[row.index] = row.leaf
        if not rows:
            return
        rows.sort()
        indexes = [index for index, _ in rows]
        counts: dict[str, int] = defaultdict(int)
        for index in indexes:
            counts[purge[index].name] += 1
        body = json.dumps(
            {
                "log": self.ledger.origin,
                "purged_at": utc(at),
                "run_by": self.runner,
                "policies": dict(sorted(counts.items())),
                "count": len(indexes),
                "ranges": [
                    [start, end, [leaves[i].hex() for i in range(start, end)]]
                    for start, end in ranges(indexes)
                ],
            },
            sort_keys=True,
        )
        # The id is chosen here and signed (a database sequence can skip a number on a
        # rolled-back purge, and the note must name the id the receipt is kept under).
        receipt = max((kept.id for kept in self.store.receipts()), default=0) + 1
        signature = self.ledger.sign_statement(
            statement(RECEIPT_STATEMENT, self.ledger.origin, f"receipt {receipt}", body)
        )
        self.fault("purge:receipt")
        self.store.purge(receipt, body, signature, rows)
        self.fault("purge:done")
        report.purged += len(indexes)
        report.receipts.append(receipt)
        self._record_purge(receipt, body)
        self.fault("purge:recorded")

    def _reseal_survivors(self, purge: set[int], at: datetime, report: RunReport) -> None:
        """Cold entries that stay but share a segment with entries to purge move first to
        a new segment, so the old one can go whole."""
        where = self.store.cold_at(sorted(purge))
        segments = {segment.id: segment for segment in self.store.segments()}
        policies = {policy.name: policy for policy in self.config.policies}
        for segment_id in sorted(set(where.values())):
            staying = [i for i in self.store.cold_indexes(segment_id) if i not in purge]
            if not staying:
                continue
            manifest = json.loads(segments[segment_id].manifest)
            policy = policies.get(manifest["policy"]) or _policy_gone(manifest["policy"])
            rows = [row for batch in self._read(staying) for row in batch]
            self.fault("reseal:write")
            name = self._write(policy, rows, at)
            report.segments.append(name)
            report.resealed += len(rows)

    def _record_purge(self, receipt: int, body: str) -> None:
        found = json.loads(body)
        policies = found["policies"]
        self.record(
            PURGE,
            {"type": "receipt", "id": str(receipt), "count": found["count"]},
            f"{found['count']} entries past their retention purged under "
            + ", ".join(f"{name} ({count})" for name, count in policies.items()),
            {"policies": ",".join(policies)[:200], "ranges": str(len(found["ranges"]))},
        )

    # -- recovering and retiring ---------------------------------------------------

    def check_segments(self) -> None:
        """Stop before changing anything if a segment that holds entries is missing, or
        differs in size (or in the SHA-256 object storage keeps) from its manifest. A
        cheap look, not a proof: `trailseal verify` reads every byte."""
        live = self.store.cold_counts()
        for segment in self.store.segments():
            if segment.id not in live:
                continue
            manifest = json.loads(segment.manifest)
            found = self.tier.stat(segment.name)
            if found is None:
                raise ColdStorageError(
                    f"segment {segment.name} is missing from {self.location}; nothing was "
                    "changed (run `trailseal verify`, and restore it from a copy)"
                )
            size, digest = found
            if size != manifest["bytes"] or digest not in (None, manifest["sha256"]):
                raise ColdStorageError(
                    f"segment {segment.name} in {self.location} differs from its signed "
                    "manifest (changed or replaced); nothing was changed (run `trailseal "
                    "verify`, and restore it from a copy)"
                )

    def recover(self, at: datetime, report: RunReport) -> None:
        """Finish what an interrupted run left: receipts without their entry."""
        del at
        receipts = self.store.receipts()
        if not receipts:
            return
        self.ledger.catch_up()
        query = SearchFilter(where=Match("action", (Exact(PURGE),)), limit=2**62)
        written = {
            str((view.entry["event"].get("resource") or {}).get("id"))
            for view in self.ledger.find(query, details=False)
        }
        for receipt in receipts:
            if str(receipt.id) not in written:
                self._record_purge(receipt.id, receipt.body)
                report.recovered += 1

    def retire(self, at: datetime, report: RunReport) -> None:
        """Delete every stored segment no cold entry names whose retain-until date has
        passed; one still under retention stays (and is reported) until it has."""
        counts = self.store.cold_counts()
        recorded = {s.name: s for s in self.store.segments()}
        live = {name for name, s in recorded.items() if s.id in counts}
        for name in self.tier.names():
            if name in live:
                continue
            known = recorded.get(name)
            until = self._retain_until(name, known.manifest if known else None)
            if until is not None and until > at:
                report.kept_locked.append(name)
                continue
            self.fault("retire:delete")
            self.tier.delete(name)
            report.deleted.append(name)

    def _retain_until(self, name: str, manifest: str | None) -> datetime | None:
        """A segment's retain-until date, from the hot store's manifest or the one beside
        it (an unrecorded segment's; unreadable: it stays, as if still under retention)."""
        try:
            if manifest is None:
                shipped = json.loads(self._manifest_object(name))
                manifest = json.dumps(shipped["manifest"])
            return parse_moment(str(json.loads(manifest)["retain_until"]))
        except (ColdStorageError, ValueError, KeyError, TypeError):
            return datetime.max.replace(tzinfo=UTC)

    def _manifest_object(self, name: str) -> bytes:
        return self.tier.manifest(name)


def _policy_gone(name: str) -> Policy:
    raise ConfigError(
        f"a segment sealed under policy {name!r} must be sealed again, but retention.yaml "
        "no longer has that policy; restore it, or purge under the policies that replaced it"
    )


__all__ = ["PURGE", "RETIRE", "SEAL", "RunReport", "Runner", "cold_location", "utc"]
