"""Deployment checkpoints: one signed note that pins the latest checkpoint of every log
of a deployment, for an auditor or a witness to keep.

::

    <default log's origin>/deployment
    trailseal-deployment/v1
    <time, RFC 3339>
    <log name> <size> <base64 root hash> <the log's verifier key>
    ...                                          (one line a log, in name order)

The note is signed with the default log's key. Each line names the log's own verifier
key, so the log's checkpoints (signed with that key) can be matched against it: a log's
checkpoint of that size must carry that root, and any later one must be consistent with
it. The second line cannot be read as a checkpoint's size, so the note can never pass
for a checkpoint of the default log.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from trailseal.checkpoints.note import Signer, Verifier, open_note
from trailseal.errors import ConfigError, NoteError

FORMAT = "trailseal-deployment/v1"
SUFFIX = "/deployment"
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,18})\Z")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,23}\Z")


@dataclass(frozen=True)
class LogHead:
    """One log's latest checkpoint, as the deployment checkpoint lists it."""

    name: str
    size: int
    root: bytes
    verifier: Verifier

    def line(self) -> str:
        root = base64.b64encode(self.root).decode()
        return f"{self.name} {self.size} {root} {self.verifier}"

    @classmethod
    def parse(cls, line: str) -> LogHead:
        parts = line.split(" ")
        if len(parts) != 4:
            raise NoteError(f"deployment checkpoint line {line[:80]!r}: want NAME SIZE ROOT KEY")
        name, size, root_b64, key = parts
        if not _NAME.match(name):
            raise NoteError(f"deployment checkpoint: {name[:40]!r} is not a log name")
        if not _SIZE.match(size):
            raise NoteError(
                f"deployment checkpoint: log {name}'s size {size[:20]!r} is not a number"
            )
        try:
            root = base64.b64decode(root_b64, validate=True)
        except binascii.Error:
            raise NoteError(f"deployment checkpoint: log {name}'s root is not base64") from None
        if len(root) != 32:
            raise NoteError(f"deployment checkpoint: log {name}'s root is not 32 bytes")
        try:
            verifier = Verifier.from_string(key)
        except ConfigError as exc:
            raise NoteError(f"deployment checkpoint: log {name}: {exc}") from None
        return cls(name, int(size), root, verifier)


@dataclass(frozen=True)
class DeploymentCheckpoint:
    """Every log's head at one moment, under the deployment's signature."""

    origin: str  # the default log's origin
    time: str
    logs: tuple[LogHead, ...]

    def __post_init__(self) -> None:
        names = [head.name for head in self.logs]
        if names != sorted(set(names)):
            raise NoteError("deployment checkpoint: logs must be listed once each, by name")
        if not self.origin or any(ch.isspace() for ch in self.origin + self.time):
            raise NoteError("deployment checkpoint: origin and time must be single words")

    def text(self) -> str:
        lines = [self.origin + SUFFIX, FORMAT, self.time, *(head.line() for head in self.logs)]
        return "\n".join(lines) + "\n"

    def sign(self, signer: Signer) -> str:
        return signer.sign(self.text())

    def log(self, name: str) -> LogHead:
        for head in self.logs:
            if head.name == name:
                return head
        raise NoteError(f"the deployment checkpoint lists no log {name!r}")

    @classmethod
    def parse_text(cls, text: str) -> DeploymentCheckpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a deployment checkpoint needs origin, format and time lines")
        first, form, time, *heads = lines[:-1]
        if not first.endswith(SUFFIX) or form != FORMAT:
            raise NoteError(f"not a deployment checkpoint (want {FORMAT!r} on its second line)")
        return cls(first.removesuffix(SUFFIX), time, tuple(LogHead.parse(h) for h in heads))

    @classmethod
    def open(cls, note: str, verifier: Verifier) -> DeploymentCheckpoint:
        """Verify ``note`` with the deployment's key (its default log's) and parse it."""
        found = cls.parse_text(open_note(note, verifier))
        if found.origin != verifier.name:
            raise NoteError(f"deployment checkpoint is for {found.origin!r}, not {verifier.name!r}")
        return found
