"""Verifying what retention did: the cold tier's segments and the purge receipts.

Every live segment must be where the log says, hold exactly the bytes its signed
manifest hashes (so a segment changed, deleted or replaced by another is found), and
hold every entry the hot store says it does. Every purged entry must be listed, with
the leaf hash the hot store kept, by a purge receipt the log's key signed. The entries
themselves are then replayed as any others (a cold entry's bytes must still hash to its
leaf); a purged one is checked by its kept hashes alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from trailseal.checkpoints import Verifier, open_note
from trailseal.errors import NoteError, TamperError
from trailseal.proofs import NodeID
from trailseal.storage.base import Segment, StoreReader
from trailseal.storage.segments import ColdStorageError, read_indexes, sha256_hex

SEGMENT_STATEMENT = "trailseal cold segment v1"
RECEIPT_STATEMENT = "trailseal purge receipt v1"


def statement(kind: str, origin: str, name: str, body: str) -> str:
    """The text the log signs for a manifest or a receipt: what it is, the log, its name,
    and the SHA-256 of its body (never readable as a checkpoint: line 2 is no size)."""
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f"{kind}\n{origin}\n{name}\n{digest}\n"


@dataclass(frozen=True)
class Trust:
    """What a manifest or a receipt is checked against: the log's key and origin."""

    verifier: Verifier
    origin: str


def check_signed(kind: str, name: str, body: str, signature: str, trust: Trust) -> None:
    """Raise a TamperError unless ``signature`` is the log's note over ``body``."""
    verifier, origin = trust.verifier, trust.origin
    try:
        text = open_note(signature, verifier)
    except NoteError as exc:
        raise TamperError(f"forged-{_word(kind)}", f"{name}: {exc.message}") from None
    if text != statement(kind, origin, name, body):
        raise TamperError(
            f"forged-{_word(kind)}", f"{name}: the signed note does not cover this {_word(kind)}"
        )


def _word(kind: str) -> str:
    return "receipt" if kind == RECEIPT_STATEMENT else "manifest"


@dataclass
class TierReport:
    segments: int = 0  # live segments checked
    cold: int = 0  # entries they hold
    receipts: int = 0
    purged_ranges: list[tuple[int, int]] = field(default_factory=list)  # [start, end)
    unrecorded: list[str] = field(default_factory=list)  # segments no live entry names


def check_tiers(store: StoreReader, verifier: Verifier, origin: str) -> TierReport:
    """Check every live segment and every purge receipt (see the module's text)."""
    report = TierReport()
    trust = Trust(verifier, origin)
    counts = store.cold_counts()
    segments = {segment.id: segment for segment in store.segments()}
    tier = store.cold.tier()
    if counts and tier is None:
        raise TamperError("missing-segment", "entries are cold but no cold tier is recorded")
    if tier is not None:
        for segment_id, count in sorted(counts.items()):
            segment = segments.get(segment_id)
            if segment is None:
                raise TamperError(
                    "missing-segment", f"cold entries name segment {segment_id}, not recorded"
                )
            _check_segment(store, tier.get, segment, count, trust)
            report.segments += 1
            report.cold += count
        live = {segments[i].name for i in counts if i in segments}
        try:
            report.unrecorded = [n for n in tier.names() if n not in live]
        except ColdStorageError:
            report.unrecorded = []
    report.receipts, report.purged_ranges = _check_receipts(store, trust)
    return report


def _check_segment(
    store: StoreReader, fetch: Any, segment: Segment, count: int, trust: Trust
) -> None:
    check_signed(SEGMENT_STATEMENT, segment.name, segment.manifest, segment.signature, trust)
    manifest = orjson.loads(segment.manifest)
    try:
        data = fetch(segment.name)
    except ColdStorageError as exc:
        raise TamperError("missing-segment", f"segment {segment.name}: {exc}") from None
    if sha256_hex(data) != manifest["sha256"]:
        raise TamperError(
            "modified-segment",
            f"segment {segment.name} does not match the SHA-256 its signed manifest gives: "
            "it was changed or replaced",
            int(manifest["first"]),
        )
    held = read_indexes(data)
    if len(held) != manifest["rows"] or (
        held and (held[0], held[-1]) != (manifest["first"], manifest["last"])
    ):
        raise TamperError(
            "modified-segment", f"segment {segment.name} disagrees with its manifest's rows"
        )
    missing = set(store.cold_indexes(segment.id)) - set(held)
    if missing or count > len(held):
        raise TamperError(
            "modified-segment",
            f"segment {segment.name} lacks entries the hot store says it holds",
            min(missing) if missing else None,
        )


def _check_receipts(store: StoreReader, trust: Trust) -> tuple[int, list[tuple[int, int]]]:
    """(receipts checked, the purged ranges): each receipt signed, each purged entry
    listed by its receipt with the leaf hash the hot store kept."""
    listed: dict[int, dict[int, str]] = {}
    receipts = store.receipts()
    for receipt in receipts:
        name = f"receipt {receipt.id}"
        check_signed(RECEIPT_STATEMENT, name, receipt.body, receipt.signature, trust)
        body = orjson.loads(receipt.body)
        leaves: dict[int, str] = {}
        for start, end, hashes in body["ranges"]:
            leaves.update(zip(range(start, end), hashes, strict=True))
        listed[receipt.id] = leaves
    purged = store.purged(0, store.size())
    indexes = sorted(purged)
    stored_leaves: list[bytes] = []
    for start in range(0, len(indexes), 500):
        stored_leaves += store.nodes([NodeID(0, index) for index in indexes[start : start + 500]])
    for index, leaf in zip(indexes, stored_leaves, strict=True):
        kept = listed.get(purged[index].receipt, {}).get(index)
        if kept != leaf.hex():
            raise TamperError(
                "forged-receipt",
                f"entry {index} is marked purged, but receipt {purged[index].receipt} does not "
                "list it with its leaf hash",
                index,
            )
    return len(receipts), ranges(indexes)


def ranges(indexes: list[int]) -> list[tuple[int, int]]:
    """Sorted indexes as ``[start, end)`` runs."""
    found: list[tuple[int, int]] = []
    for index in indexes:
        if found and found[-1][1] == index:
            found[-1] = (found[-1][0], index + 1)
        else:
            found.append((index, index + 1))
    return found
