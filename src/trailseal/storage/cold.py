"""Reading entries sealed into the cold tier, for both backends, without the caller
knowing where an entry lives.

A cold entry's row in the hot store keeps its event id, hashes and tree nodes, with
empty bytes; :class:`ColdReads` fills those bytes in from the segment that holds them.
Each entry read from a segment must hash to the leaf the hot store kept: a changed
segment can never put a different event in front of a search or a report (it raises a
:class:`~trailseal.errors.TamperError` naming the segment and the entry).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Protocol

from trailseal.errors import ConfigError, TamperError
from trailseal.proofs import leaf_hash
from trailseal.storage.base import Segment, StoredEntry
from trailseal.storage.segments import SegmentStore, open_segments, read_rows

COLD_LOCATION = "cold_location"  # the meta key naming where segments are
_BATCH = 4096


def resolve(location: str, base: Path | None) -> str:
    """A recorded location as a usable one: a relative folder is inside ``base`` (the data
    directory of a SQLite log, so a copied or moved data directory keeps its cold tier)."""
    if location.startswith("s3://") or Path(location).is_absolute():
        return location
    if base is None:
        raise ConfigError(
            f"the cold tier's folder {location!r} is relative, but this store has no folder"
        )
    return str(base / location)


class _ColdIndex(Protocol):
    def meta(self, key: str) -> str | None: ...
    def segments(self) -> list[Segment]: ...
    def cold_at(self, indexes: Sequence[int]) -> dict[int, int]: ...


class ColdReads:
    """Fills in the bytes of cold entries read from one store."""

    def __init__(self, store: _ColdIndex, base: Path | None = None) -> None:
        self._store = store
        self._base = base  # what a relative location is relative to (a SQLite log's folder)
        self._segments: dict[int, Segment] = {}
        self._digests: dict[int, str] = {}  # each segment's SHA-256, from its manifest
        self._tier: SegmentStore | None = None

    def tier(self) -> SegmentStore | None:
        """Where this log's segments are (None: nothing was ever sealed)."""
        if self._tier is None:
            location = self._store.meta(COLD_LOCATION)
            if location is None:
                return None
            self._tier = open_segments(resolve(location, self._base))
        return self._tier

    def segment(self, segment_id: int) -> Segment:
        found = self._segments.get(segment_id)
        if found is None:
            self._segments = {s.id: s for s in self._store.segments()}
            found = self._segments.get(segment_id)
        if found is None:
            raise TamperError(
                "missing-segment", f"cold entries name segment {segment_id}, which is not recorded"
            )
        return found

    def fill(self, rows: Iterable[StoredEntry]) -> Iterator[StoredEntry]:
        """``rows`` with every cold entry's bytes read from its segment (a purged one
        keeps empty bytes)."""
        source = iter(rows)
        while batch := list(islice(source, _BATCH)):
            empty = [row for row in batch if not row.entry]
            if not empty:
                yield from batch
                continue
            found = self.read(empty)
            for row in batch:
                yield row._replace(entry=found[row.index]) if row.index in found else row

    def read(self, rows: Sequence[StoredEntry]) -> dict[int, bytes]:
        """The bytes of those of ``rows`` that are cold, each checked against its leaf."""
        where = self._store.cold_at([row.index for row in rows])
        if not where:
            return {}
        tier = self.tier()
        if tier is None:
            raise TamperError(
                "missing-segment",
                "entries are marked cold but the log records no cold-tier location",
                min(where),
            )
        by_segment: dict[int, list[int]] = defaultdict(list)
        for index, segment_id in where.items():
            by_segment[segment_id].append(index)
        leaves = {row.index: row.leaf_hash for row in rows}
        found: dict[int, bytes] = {}
        for segment_id, indexes in by_segment.items():
            segment = self.segment(segment_id)
            digest = self._digests.get(segment_id)
            if digest is None:
                digest = self._digests[segment_id] = str(json.loads(segment.manifest)["sha256"])
            held = read_rows(tier.open(segment.name, digest), indexes)
            for index in indexes:
                entry = held.get(index, (None, None))[0]
                if entry is None:
                    raise TamperError(
                        "modified-segment",
                        f"segment {segment.name} lacks entry {index}, which the hot store "
                        "says it holds",
                        index,
                    )
                if leaf_hash(entry) != leaves[index]:
                    raise TamperError(
                        "modified-segment",
                        f"entry {index} in segment {segment.name} does not match its leaf "
                        "hash: the segment was changed",
                        index,
                    )
                found[index] = entry
        return found
