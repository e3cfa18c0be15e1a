"""The client's durable spool: an append-only file of JSON lines and an acknowledged offset.

``emit`` appends one line and returns only once the whole line is written: then
the event is in the operating system's file cache and survives a crash or
SIGKILL of the application (with ``fsync=True``, also a power cut, at the cost
of a disk flush per event). A write that falls short (a full disk) is undone
and raises :class:`SpoolWriteError`: the caller holds no id for an event the
spool does not hold whole. The sender reads lines after the acknowledged offset and
moves the offset only once the server has answered that they are durable.
When everything is acknowledged the file is emptied. A line cut short by a
crash was never acknowledged to the caller and is dropped on reopening.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

import orjson

from trailseal.errors import TrailsealError

SPOOL_NAME = "spool.jsonl"
ACKED_NAME = "acked"
REJECTED_NAME = "rejected.jsonl"  # events the server refused for good, with the reason

logger = logging.getLogger("trailseal.client")


class SpoolFullError(TrailsealError):
    """The spool holds as many unacknowledged bytes as it may; nothing was written."""


class SpoolWriteError(TrailsealError):
    """The spool's file could not take the whole line (a full or failing disk); the part
    written was removed, so nothing of the event is in the spool."""


class Spool:
    """One spool directory, owned by one client process at a time."""

    def __init__(
        self, directory: str | os.PathLike[str], max_bytes: int, *, fsync: bool = False
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._fsync = fsync
        self._path = self.directory / SPOOL_NAME
        self._acked_path = self.directory / ACKED_NAME
        self._lock = threading.Condition()
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.acked = self._read_acked()
        self.size = self._recover()

    def _read_acked(self) -> int:
        try:
            return int(self._acked_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _recover(self) -> int:
        """Drop a trailing partial line; an acked offset past the end means it was emptied."""
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            data = os.pread(self._fd, size, 0)
            size = data.rfind(b"\n") + 1
            os.ftruncate(self._fd, size)
        if self.acked > size:
            self.acked = 0
            self._write_acked(0)
        return size

    @property
    def pending_bytes(self) -> int:
        return self.size - self.acked

    def append(self, line: bytes, *, block: bool, timeout: float | None) -> None:
        """Write one JSON line; wait for room, or raise SpoolFullError, when full."""
        with self._lock:
            if self.pending_bytes + len(line) > self.max_bytes:
                if not block:
                    raise SpoolFullError(
                        f"the spool holds {self.pending_bytes} unacknowledged bytes of "
                        f"{self.max_bytes}; the event was not written"
                    )
                if not self._lock.wait_for(
                    lambda: self.pending_bytes + len(line) <= self.max_bytes, timeout
                ):
                    raise SpoolFullError(f"the spool stayed full for {timeout} s")
            was_empty = self.size == self.acked
            self._write_whole(line)
            self.size += len(line)
            if was_empty:  # only then can the sender be waiting for data
                self._lock.notify_all()

    def _write_whole(self, line: bytes) -> None:
        """Write all of ``line`` at the end, or nothing: a short or failed write is cut
        off again, so the spool never holds part of an event."""
        written = 0
        try:
            while written < len(line):
                done = os.write(self._fd, line[written:])
                if done <= 0:
                    raise OSError(28, "no space left on device")  # noqa: TRY301 - undone below
                written += done
            if self._fsync:
                os.fsync(self._fd)
        except OSError as exc:
            # If even this fails, the partial line (no newline ends it) is dropped on open.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise SpoolWriteError(
                f"the spool {self._path} could not take the event ({exc.strerror or exc}); "
                "it was not written"
            ) from None

    def read(self, max_bytes: int, max_lines: int) -> tuple[int, list[bytes]]:
        """Unacknowledged whole lines from the acked offset, up to about ``max_bytes``
        and at most ``max_lines``. Returns the offset just past the last line returned.
        """
        with self._lock:
            start, end = self.acked, self.size
        if start >= end:
            return start, []
        data = os.pread(self._fd, min(end - start, max_bytes), start)
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # one line longer than max_bytes: read just that line
            data = os.pread(self._fd, end - start, start)
            cut = data.find(b"\n") + 1
        lines = data[:cut].splitlines()[:max_lines]
        return start + sum(len(line) + 1 for line in lines), lines

    def acknowledge(self, offset: int) -> None:
        """Everything before ``offset`` is durable on the server."""
        with self._lock:
            self.acked = max(self.acked, offset)
            if self.acked == self.size:
                os.ftruncate(self._fd, 0)
                self.acked = self.size = 0
            self._lock.notify_all()
            # Last, and allowed to fail (a full disk): the offset lives on in memory, and
            # a restart that reads an older one only resends events the log keeps once.
            self._write_acked(self.acked)

    def _write_acked(self, offset: int) -> None:
        temporary = self._acked_path.with_suffix(".tmp")
        try:
            temporary.write_text(str(offset))
            temporary.replace(self._acked_path)
        except OSError as exc:
            logger.warning("trailseal: cannot save the acknowledged offset: %s", exc)

    def set_aside(self, line: bytes, reason: str) -> None:
        """Keep an event the server refused for good in ``rejected.jsonl`` beside the
        spool, with the reason, so that it leaves the spool without being lost."""
        record = orjson.dumps({"reason": reason, "event": line.decode(errors="replace")})
        try:
            with (self.directory / REJECTED_NAME).open("ab") as out:
                out.write(record + b"\n")
        except OSError as exc:
            logger.warning("trailseal: cannot set aside a refused event (%s): %s", exc, record)

    def wait_for_data(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self.size > self.acked, timeout)

    def wait_drained(self, timeout: float | None) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self.size == self.acked, timeout)

    def close(self) -> None:
        os.close(self._fd)
