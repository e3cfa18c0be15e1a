"""The signing key on disk, kept apart from the data if the operator wishes.

The key file holds ``PRIVATE+KEY+...`` text and must be readable by its owner
only. Beside it, ``<key>.last`` holds the last checkpoint this key signed, so
the signer can refuse to sign anything inconsistent with it even when the
database has been rolled back or rewritten.
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from pathlib import Path

from trailseal.checkpoints import Checkpoint, Signer
from trailseal.errors import ConfigError, StoreUnavailableError
from trailseal.layout import last_signed_lock_path, last_signed_path


def write_key(path: Path, signer: Signer) -> None:
    """Create the key file with mode 0600; never overwrite one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"key file {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:  # a key name may be any printable text
        out.write(signer.to_string() + "\n")
        out.flush()
        os.fsync(out.fileno())


def read_key(path: Path) -> Signer:
    """Load the signing key, refusing a file that others can read or write."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no signing key at {path}; pass --key or set TRAILSEAL_KEY") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read signing key {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"signing key {path} has mode {stat.S_IMODE(mode):04o}: group or others can use it; "
            f"run `chmod 600 {path}`"
        )
    return Signer.from_string(text)


def read_last_signed(key_path: Path, signer: Signer) -> Checkpoint | None:
    path = last_signed_path(key_path)
    try:
        note = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return Checkpoint.open(note, signer.verifier)


def write_last_signed(key_path: Path, note: str) -> None:
    """Atomically replace ``<key>.last`` with ``note``, unless it already holds a later
    checkpoint. Several writers sign with one key in turn (a service and the detection
    beside it, two processes): an exclusive lock on ``<key>.last.lock`` orders them, each
    writes a temporary file of its own, and the record only ever moves forward. A file
    that cannot be written is StoreUnavailableError (the entries are committed; a retry
    of the append finds them)."""
    path = last_signed_path(key_path)
    try:
        with last_signed_lock_path(key_path).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _signed_size(path) >= _note_size(note):
                return
            temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with temporary.open("w", encoding="utf-8") as out:
                out.write(note)
                out.flush()
                os.fsync(out.fileno())
            temporary.replace(path)
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot record the last checkpoint signed in {path}: {exc.strerror or exc}"
        ) from None


def _note_size(note: str) -> int:
    """The tree size a checkpoint note names (its second line), or -1."""
    lines = note.split("\n", 2)
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else -1


def _signed_size(path: Path) -> int:
    try:
        return _note_size(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError):
        return -1


class KeyFile:
    """The signing key on disk and the last checkpoint it signed (beside it).

    Read only when the log first appends, so reads need no key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Signer:
        return read_key(self.path)

    def last_signed(self, signer: Signer) -> Checkpoint | None:
        return read_last_signed(self.path, signer)

    def signed(self, note: str) -> None:
        """Remember ``note`` as the last checkpoint this key signed (after it committed)."""
        write_last_signed(self.path, note)
