"""Reading JSON Lines input with a bound on each line's size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from trailseal.errors import EventError

_CHUNK = 1 << 16


def bounded_lines(stream: BinaryIO, max_bytes: int) -> Iterator[bytes | EventError]:
    """Yield each line, or an error for a line longer than ``max_bytes`` (never read whole)."""
    while True:
        line = stream.readline(max_bytes + 2)
        if not line:
            return
        if len(line) > max_bytes + 1 or (len(line) == max_bytes + 2 and not line.endswith(b"\n")):
            total = len(line)
            while not line.endswith(b"\n"):
                line = stream.readline(_CHUNK)
                if not line:
                    break
                total += len(line)
            total -= line.endswith(b"\n")
            yield EventError("$", f"line is {total} bytes; the limit is {max_bytes} bytes")
            continue
        yield line
