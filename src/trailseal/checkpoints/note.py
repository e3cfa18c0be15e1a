"""C2SP signed notes with Ed25519 keys (https://c2sp.org/signed-note).

Key text forms, as Go's ``golang.org/x/mod/sumdb/note`` writes them:

- verifier key: ``<name>+<hex8 key id>+<base64(0x01 || public key)>``
- signing key:  ``PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 || seed)>``

The key id is the first four bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from trailseal.errors import ConfigError, NoteError

ALG_ED25519 = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 key named ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise ConfigError(
            f"key name {name!r} must be non-empty, without '+', spaces or control characters"
        )


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ConfigError(f"{what} is not valid base64") from None


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise ConfigError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @classmethod
    def from_string(cls, text: str) -> Verifier:
        """Parse ``name+hex8+base64`` verifier key text."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise ConfigError(f"verifier key {text.strip()!r} is not name+hex8+base64")
        name, id_hex, key_b64 = parts
        key = _b64(key_b64, "verifier key")
        if len(key) != 33 or key[:1] != ALG_ED25519:
            raise ConfigError("verifier key is not an Ed25519 key (0x01 || 32 bytes)")
        verifier = cls(name, key[1:])
        if verifier.key_id.hex() != id_hex.lower():
            raise ConfigError(f"verifier key id {id_hex} does not match its name and key")
        return verifier

    def __str__(self) -> str:
        key = base64.b64encode(ALG_ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """A named Ed25519 private key that signs notes."""

    def __init__(self, name: str, seed: bytes) -> None:
        _check_name(name)
        if len(seed) != 32:
            raise ConfigError("an Ed25519 private key seed is 32 bytes")
        self.name = name
        self._seed = seed
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Verifier(name, public)

    @classmethod
    def generate(cls, name: str) -> Signer:
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(name, seed)

    @classmethod
    def from_string(cls, text: str) -> Signer:
        """Parse ``PRIVATE+KEY+name+hex8+base64`` signing key text."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise ConfigError("signing key is not PRIVATE+KEY+name+hex8+base64")
        _, _, name, id_hex, key_b64 = parts
        key = _b64(key_b64, "signing key")
        if len(key) != 33 or key[:1] != ALG_ED25519:
            raise ConfigError("signing key is not an Ed25519 key (0x01 || 32 bytes)")
        signer = cls(name, key[1:])
        if signer.verifier.key_id.hex() != id_hex.lower():
            raise ConfigError(f"signing key id {id_hex} does not match its name and key")
        return signer

    def to_string(self) -> str:
        key = base64.b64encode(ALG_ED25519 + self._seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{key}"

    def sign(self, text: str) -> str:
        """Sign ``text`` (which must end in a newline) and return the whole note."""
        _check_text(text)
        signature = self._key.sign(text.encode())
        blob = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"


MAX_SIGNATURES = 100  # the reference implementation refuses a note with more
MIN_BLOB = 5  # a 4-byte key id and at least one byte of signature
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def _valid_name(name: str) -> bool:
    """A key name as the signed-note spec allows: non-empty, no space, no '+'."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _signature(line: str) -> tuple[str, bytes]:
    """(key name, key id + signature) of one well-formed signature line."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"malformed signature line {line[:80]!r}")
    name, _, blob_b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not _valid_name(name):
        raise NoteError(f"malformed signature line: key name {name[:80]!r} is not valid")
    try:
        blob = base64.b64decode(blob_b64, validate=True)
    except binascii.Error:
        raise NoteError(f"signature by {name!r} is not valid base64") from None
    if len(blob) < MIN_BLOB:
        raise NoteError(f"signature by {name!r} is too short to hold a key id and signature")
    return name, blob


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if "\n\n" in text or text.startswith("\n"):
        raise NoteError("note text must not contain a blank line")


def open_note(note: str, verifier: Verifier) -> str:
    """Return the text of ``note`` if ``verifier`` signed it; raise :class:`NoteError` if not.

    Signatures by other keys are ignored, as the spec allows, but every signature line
    must be well formed, as the reference implementation (golang.org/x/mod/sumdb/note)
    requires: a valid key name, a non-empty base64 blob of a key id and at least one
    byte of signature, at most 100 signatures, and no control character but newline
    anywhere in the note. At least one signature must be by ``verifier`` and every
    one by it must be valid.
    """
    if _CONTROL.search(note):
        raise NoteError("malformed note: it holds a control character")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signatures")
    text = note[: split + 1]
    _check_text(text)
    found = False
    lines = note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: {len(lines)} signatures (at most {MAX_SIGNATURES})")
    for line in lines:
        name, blob = _signature(line)
        if name != verifier.name or blob[:4] != verifier.key_id:
            continue
        if not verifier.verify(text.encode(), blob[4:]):
            raise NoteError(f"signature by {name} ({verifier.key_id.hex()}) does not verify")
        found = True
    if not found:
        raise NoteError(f"note is not signed by {verifier.name} ({verifier.key_id.hex()})")
    return text
