"""Large sample logs for the benchmarks: hospital-like events spread evenly over a span,
appended through the bulk path, then indexed for search."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import orjson

from trailseal.ledger import Ledger
from trailseal.testing import sample_event

CHUNK = 200_000


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def spread_events(
    count: int, start: datetime, span: timedelta, seed: int, size: int = CHUNK
) -> Iterator[list[bytes]]:
    """``count`` sample events spread evenly over ``span`` from ``start``, in chunks of
    ``size`` JSON lines."""
    rng = random.Random(seed)
    step = span / count
    moment = start
    chunk: list[bytes] = []
    for _ in range(count):
        moment += step
        chunk.append(orjson.dumps(sample_event(rng, moment)))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build(
    data: Path,
    count: int,
    *,
    start: datetime,
    span: timedelta,
    seed: int,
    origin: str,
    received: bool = False,
) -> float:
    """A new log in ``data`` of ``count`` events over ``span``, indexed for search; with
    ``received``, each chunk is also received at its events' time (a test clock), as if
    the log had run through the span. Returns the append rate (entries/s)."""
    started = time.perf_counter()
    rate = 0.0
    with Ledger.init(data, origin=origin) as ledger:
        done = 0
        # Received at its events' time, a chunk is stamped as one: a hundred stamps at least.
        size = min(CHUNK, max(1000, count // 100)) if received else CHUNK
        for lines in spread_events(count, start, span, seed, size):
            if received:
                stamp = (start + span * (done / count)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                ledger.clock = partial(str, stamp)
            for chunk in ledger.prepare_lines(lines):
                if chunk.problems:
                    raise RuntimeError(chunk.problems[0])
                ledger.append_prepared(chunk.prepared)
            done += len(lines)
            rate = done / (time.perf_counter() - started)
            say(f"  {done:,} entries appended ({rate:,.0f}/s)")
        say("  indexing for search ...")
        ledger.catch_up(lambda n: say(f"  {n:,} indexed") if n % 1_000_000 == 0 else None)
    say(f"built {count:,} entries in {time.perf_counter() - started:,.0f} s")
    return rate
