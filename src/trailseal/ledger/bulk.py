"""Bulk input: parse, validate and prepare JSON Lines in worker processes.

Preparing an event (validation, canonical bytes, detail commitment) is most of
the CPU an append costs and needs no shared state, so for large inputs it runs
in worker processes, a few chunks ahead, while the sequencer commits the
previous chunk. Workers send back only the prepared bytes; the lines stay here.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Generator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from trailseal.errors import EventError, LineProblem
from trailseal.events import EventLimits, parse_event
from trailseal.ledger.entry import Prepared
from trailseal.ledger.workers import worker_processes

CHUNK_LINES = 10_000
PARALLEL_FROM = 4 * CHUNK_LINES  # below this, starting processes costs more than it saves

_Result = tuple[str, bytes, bytes | None, bytes | None, str | None, str] | tuple[str, str] | None


@dataclass(frozen=True)
class PreparedChunk:
    """Lines ``first_line .. first_line + len - 1`` (1-based): the good ones prepared."""

    first_line: int
    prepared: list[Prepared]
    line_numbers: list[int]  # of each prepared event
    problems: list[LineProblem]


def prepare_chunk(lines: Sequence[bytes], max_bytes: int) -> list[_Result]:
    """Worker side: one result a line: prepared bytes, (field, message), or None if blank."""
    limits = EventLimits(max_bytes=max_bytes)
    results: list[_Result] = []
    for line in lines:
        if not line.strip():
            results.append(None)
            continue
        try:
            item = Prepared.of(parse_event(line, limits))
        except EventError as exc:
            results.append((exc.field, exc.message))
            continue
        results.append((item.event_id, item.body, item.detail, item.salt, item.tenant, item.action))
    return results


def _collect(lines: Sequence[bytes], first_line: int, results: list[_Result]) -> PreparedChunk:
    prepared: list[Prepared] = []
    numbers: list[int] = []
    problems: list[LineProblem] = []
    for offset, result in enumerate(results):
        if result is None:
            continue
        if len(result) == 2:
            problems.append(LineProblem(first_line + offset, EventError(*result)))
            continue
        event_id, body, detail, salt, tenant, action = result
        prepared.append(Prepared(event_id, body, detail, salt, lines[offset], tenant, action))
        numbers.append(first_line + offset)
    return PreparedChunk(first_line, prepared, numbers, problems)


def prepare_lines(
    lines: Sequence[bytes],
    limits: EventLimits,
    workers: int | None = None,
    *,
    pool: Executor | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> Generator[PreparedChunk, None, None]:
    """Prepared chunks of ``lines`` in order; in worker processes for large inputs.

    ``pool`` lends a long-lived executor (a server's); otherwise one is started
    for this input and shut down after it.
    """
    spans = [
        (start, lines[start : start + chunk_lines]) for start in range(0, len(lines), chunk_lines)
    ]
    count = workers if workers is not None else (os.cpu_count() or 1)
    if pool is None and (count <= 1 or len(lines) < PARALLEL_FROM):
        for start, part in spans:
            yield _collect(part, start + 1, prepare_chunk(part, limits.max_bytes))
        return
    own = pool is None
    executor = pool or worker_processes(count)
    pending: deque[tuple[int, Sequence[bytes], Future[list[_Result]]]] = deque()
    done = 0
    try:
        for start, part in spans:
            pending.append((start, part, executor.submit(prepare_chunk, part, limits.max_bytes)))
            if len(pending) > 2 * count:  # keep a few chunks ahead, not the whole input
                first, chunk, future = pending.popleft()
                yield _collect(chunk, first + 1, future.result())
                done += 1
        while pending:
            first, chunk, future = pending.popleft()
            yield _collect(chunk, first + 1, future.result())
            done += 1
    except BrokenProcessPool:
        # Workers could not start (e.g. the main program came from stdin): go on here.
        for start, part in spans[done:]:
            yield _collect(part, start + 1, prepare_chunk(part, limits.max_bytes))
    finally:
        for _, _, future in pending:
            future.cancel()
        if own:
            executor.shutdown(wait=True, cancel_futures=True)


def worker_pool(workers: int | None = None) -> ProcessPoolExecutor | None:
    """A long-lived pool for preparing events, or None on a single core."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1:
        return None
    return worker_processes(count)
