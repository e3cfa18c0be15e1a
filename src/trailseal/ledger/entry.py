"""Sealing: an event becomes an entry with its index, receipt time and detail commitment.

The entry is ``{"event", "index", "received_at", "submitter"}`` in RFC 8785
bytes; ``submitter`` is who handed the event to the log (a principal's id,
``host:<user>`` for the command line, ``trailseal`` for the log's own records).
Entries written before it existed have no ``submitter`` and verify as before. The
event's ``detail`` is replaced by ``detail_commitment``, the hex SHA-256 of a
fresh 16-byte salt followed by the detail's canonical bytes. The detail and
salt are kept beside the entry, so erasing them later leaves every hash intact.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import orjson

from trailseal.access.actions import LOG_SUBMITTER
from trailseal.access.tenants import event_tenant
from trailseal.errors import EventError
from trailseal.events import Event, EventLimits, canonical, parse_event
from trailseal.events.canonical import canonical_struct

SALT_BYTES = 16
# Principal ids (pr-…), host:<user> and the log's own name: plain ASCII, so the entry's
# canonical bytes need no escaping.
_SUBMITTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,255}\Z")


def check_submitter(submitter: str) -> str:
    if not _SUBMITTER.match(submitter):
        raise EventError(
            "submitter",
            f"{submitter[:40]!r} is not a submitter: 1-256 letters, digits and . _ @ : + -",
        )
    return submitter


def utc_now() -> str:
    """The current time as RFC 3339 UTC with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def commitment(salt: bytes, detail: bytes) -> str:
    """``hex(SHA-256(salt || detail))``, where ``detail`` is canonical bytes."""
    return hashlib.sha256(salt + detail).hexdigest()


@dataclass(frozen=True, slots=True)
class Prepared:
    """An event made ready to sequence: everything that does not depend on its index.

    Preparing happens outside the sequencer's lock: on the caller's thread, or in
    worker processes for bulk input, which send back only these bytes. ``source``
    is the event, or the JSON line it came from; it is parsed again only in the
    rare case of a resent id that must be compared with what is stored.
    """

    event_id: str
    body: bytes  # canonical bytes of the event as the entry holds it
    detail: bytes | None
    salt: bytes | None
    source: Event | bytes
    tenant: str | None  # the entry's tenant (:mod:`trailseal.access.tenants`)
    action: str

    @classmethod
    def of(cls, event: Event, source: bytes | None = None) -> Prepared:
        check_unsealed(event)
        detail = detail_bytes(event)
        origin = event if source is None else source
        tenant = event_tenant(event)
        if detail is None:
            return cls(event.id, canonical_struct(event), None, None, origin, tenant, event.action)
        salt = os.urandom(SALT_BYTES)
        body = sealed_event(event, commitment(salt, detail))
        return cls(event.id, body, detail, salt, origin, tenant, event.action)

    def event(self, limits: EventLimits | None = None) -> Event:
        if isinstance(self.source, Event):
            return self.source
        return parse_event(self.source, limits or EventLimits(max_bytes=max(len(self.source), 256)))


def check_unsealed(event: Event) -> None:
    """Refuse an event that already carries a commitment: only sealing sets it."""
    if event.detail_commitment is not None:
        raise EventError("$.detail_commitment", "is computed by trailseal; send the detail itself")


def event_fingerprint(event: Event) -> bytes:
    """Canonical bytes of the whole event, detail included, to compare resends."""
    return canonical_struct(event)


def detail_bytes(event: Event) -> bytes | None:
    return None if event.detail is None else canonical(event.detail)


def sealed_event(event: Event, detail_commitment: str | None) -> bytes:
    """Canonical bytes of the event as the entry holds it."""
    if event.detail is None and detail_commitment is None:
        return canonical_struct(event)
    return canonical_struct(
        msgspec.structs.replace(event, detail=None, detail_commitment=detail_commitment)
    )


def entry_bytes(event: bytes, index: int, tail: bytes) -> bytes:
    """``{"event":…,"index":…,"received_at":…,"submitter":…}``: keys in RFC 8785 order.

    ``tail`` is :func:`received_tail` of the batch's receipt time and submitter.
    """
    return b'{"event":' + event + b',"index":' + str(index).encode() + tail


def received_tail(received_at: str, submitter: str | None = None) -> bytes:
    """The entry's end; ``submitter`` has passed :func:`check_submitter` (no escaping)."""
    if submitter is None:
        return b',"received_at":"' + received_at.encode() + b'"}'
    return (
        b',"received_at":"' + received_at.encode() + b'","submitter":"' + submitter.encode() + b'"}'
    )


def matches_stored(event: Event, entry: bytes, salt: bytes | None) -> bool:
    """Whether ``event`` is the one stored as ``entry`` (an idempotent resend). A purged
    entry (no bytes) can no longer be compared: its id stays taken, and a resend of it is
    taken as the resend it most likely is, never appended again."""
    if not entry:
        return True
    stored = orjson.loads(entry)["event"]
    stored_commitment = stored.get("detail_commitment")
    detail = detail_bytes(event)
    if (stored_commitment is None) != (detail is None):
        return False
    if detail is not None and salt is not None and commitment(salt, detail) != stored_commitment:
        return False
    # With the detail erased (no salt) only the rest of the event can be compared.
    return sealed_event(event, stored_commitment) == canonical(stored)


__all__ = [
    "LOG_SUBMITTER",
    "Prepared",
    "check_submitter",
    "check_unsealed",
    "commitment",
    "detail_bytes",
    "entry_bytes",
    "event_fingerprint",
    "matches_stored",
    "received_tail",
    "sealed_event",
    "utc_now",
]
