"""How many entries the log received in each period, found by bisecting the log.

The sequencer stamps each batch with the time it received it, so ``received_at`` grows
with the index: the first entry received at or after a moment is found in about 20
reads of a log of a million entries, and the count between two moments is the
difference of their positions. A clock stepped back makes a period's count approximate
(never negative), never wrong by more than the entries of the batches stamped out of
order.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import orjson

from trailseal.ledger.search import fixed_width
from trailseal.storage import StoreReader


def _received(store: StoreReader, index: int) -> str:
    stored = next(store.entries(index, index + 1))
    if not stored.entry:  # purged: the purge kept when it was received
        return fixed_width(store.purged(index, index + 1)[index].received_at)
    return fixed_width(orjson.loads(stored.entry)["received_at"])


def first_received(store: StoreReader, size: int, moment: str) -> int:
    """The index of the first entry received at or after ``moment`` (fixed-width UTC), or
    ``size`` when there is none."""
    low, high = 0, size
    while low < high:
        middle = (low + high) // 2
        if _received(store, middle) < moment:
            low = middle + 1
        else:
            high = middle
    return low


def received_counts(store: StoreReader, size: int, bounds: Sequence[str]) -> list[int]:
    """Entries received in each ``[bounds[i], bounds[i + 1])``, for ascending bounds."""
    positions = [first_received(store, size, moment) for moment in bounds]
    return [max(0, after - before) for before, after in pairwise(positions)]
