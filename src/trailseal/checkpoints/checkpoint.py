"""C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint).

::

    <origin>
    <size, decimal>
    <base64 root hash>
    prev <size of the previous checkpoint>      (trailseal's extension line)

Each checkpoint names the size of the one signed before it, so a checkpoint
row deleted from the store shows as a gap in a signed chain.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from trailseal.checkpoints.note import Signer, Verifier, open_note
from trailseal.errors import NoteError

_SIZE = re.compile(r"^(0|[1-9][0-9]{0,18})\Z")
_PREV = re.compile(r"^prev (0|[1-9][0-9]{0,18})\Z")


@dataclass(frozen=True)
class Checkpoint:
    """A log's size and root at one moment, with the previous checkpoint's size."""

    origin: str
    size: int
    root: bytes
    prev_size: int | None = None

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be one non-empty line")
        if len(self.root) != 32:
            raise NoteError("checkpoint root must be a 32-byte SHA-256 hash")
        if self.size < 0 or (self.prev_size is not None and not 0 <= self.prev_size <= self.size):
            raise NoteError(f"checkpoint sizes {self.prev_size} -> {self.size} are impossible")

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        if self.prev_size is not None:
            lines.append(f"prev {self.prev_size}")
        return "\n".join(lines) + "\n"

    def sign(self, signer: Signer) -> str:
        return signer.sign(self.text())

    @classmethod
    def parse_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("checkpoint text needs origin, size and root lines")
        origin, size, root_b64, *extensions = lines[:-1]
        if not _SIZE.match(size):
            raise NoteError(f"checkpoint size {size!r} is not a decimal number")
        try:
            root = base64.b64decode(root_b64, validate=True)
        except binascii.Error:
            raise NoteError("checkpoint root is not valid base64") from None
        prev_size = None
        for line in extensions:
            match = _PREV.match(line)
            if match:
                prev_size = int(match[1])
        return cls(origin, int(size), root, prev_size)

    @classmethod
    def open(cls, note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
        """Verify ``note`` with ``verifier`` and parse its checkpoint."""
        checkpoint = cls.parse_text(open_note(note, verifier))
        if origin is not None and checkpoint.origin != origin:
            raise NoteError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
        return checkpoint
