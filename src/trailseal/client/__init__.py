"""A Python client that never loses an event.

``emit`` writes the event to a local durable spool and returns (microseconds,
on the caller's thread); a background sender batches spooled events to the
service, retries with backoff and jitter, and moves past them only once the
service has answered that they are durable. Delivery is at-least-once; the
service's idempotency by event id makes entries exactly-once.

    client = Client("http://127.0.0.1:8080", token, spool="/var/lib/app/trailseal-spool")
    client.emit({"id": ..., "time": ..., "actor": {"id": "u-1"}, "action": "record.read"})
    client.close(timeout=10)    # drains, or reports what is still pending
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from datetime import UTC, datetime
from typing import Any, Literal, Self

import orjson

from trailseal.client.jetstream import JetStreamSender
from trailseal.client.sender import Sender, SenderStatus
from trailseal.client.spool import Spool, SpoolFullError, SpoolWriteError
from trailseal.errors import EventError, TrailsealError

__all__ = [
    "AsyncClient",
    "Client",
    "PendingError",
    "SenderStatus",
    "SpoolFullError",
    "SpoolWriteError",
]


class PendingError(TrailsealError):
    """``flush`` or ``close`` timed out with events still unacknowledged (they stay spooled)."""

    def __init__(self, pending_bytes: int) -> None:
        super().__init__(
            f"{pending_bytes} bytes of events are not yet acknowledged; they stay in the spool "
            "and are sent when a client opens it again"
        )
        self.pending_bytes = pending_bytes


def new_event_id() -> str:
    """A UUIDv7: time-ordered, so the service's id index grows at its end."""
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62)
    value |= secrets.randbits(62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class Client:
    """Sends events to a trailseal service through a durable local spool."""

    def __init__(  # noqa: PLR0913 - every setting has a sane default
        self,
        url: str,
        token: str,
        spool: str | os.PathLike[str],
        *,
        max_spool_bytes: int = 256 * 1024 * 1024,
        when_full: Literal["block", "raise"] = "block",
        full_timeout: float | None = 30.0,
        fsync: bool = False,
        batch_bytes: int = 4 * 1024 * 1024,
        timeout: float = 30.0,
        max_backoff: float = 30.0,
    ) -> None:
        self._spool = Spool(spool, max_spool_bytes, fsync=fsync)
        self._block = when_full == "block"
        self._full_timeout = full_timeout
        self._sender: Sender | JetStreamSender
        if url.startswith(("nats://", "tls://")):
            # Through NATS JetStream (`serve --nats` consumes it); the token is unused:
            # NATS's own credentials go in the URL.
            self._sender = JetStreamSender(self._spool, url, max_backoff=max_backoff)
        else:
            self._sender = Sender(
                self._spool,
                url,
                token,
                batch_bytes=batch_bytes,
                timeout=timeout,
                max_backoff=max_backoff,
            )
        self._sender.start()
        self._closed = False

    def emit(self, event: dict[str, Any]) -> str:
        """Spool one event (an ``id`` and ``time`` are added if missing); returns its id.

        Once this returns the event survives a crash of this process. Invalid
        events are refused here when the shape is plainly wrong, and otherwise
        by the service, which the sender logs and counts in ``status``.
        """
        if self._closed:
            raise TrailsealError("the client is closed")
        if not isinstance(event, dict) or "actor" not in event or "action" not in event:
            raise EventError("$", "an event is an object with at least actor and action")
        if "id" not in event or "time" not in event:
            event = {
                "id": new_event_id(),
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                **event,
            }
        try:
            line = orjson.dumps(event) + b"\n"
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise EventError("$", f"cannot be encoded as JSON: {exc}") from None
        self._spool.append(line, block=self._block, timeout=self._full_timeout)
        return str(event["id"])

    @property
    def pending_bytes(self) -> int:
        return self._spool.pending_bytes

    @property
    def status(self) -> SenderStatus:
        return self._sender.status

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every spooled event is acknowledged; PendingError on timeout."""
        if not self._spool.wait_drained(timeout):
            raise PendingError(self._spool.pending_bytes)

    def close(self, timeout: float | None = 30.0) -> None:
        """Drain and stop; if the timeout passes first, stop anyway and raise PendingError
        (the events stay in the spool for the next client)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(timeout)
        finally:
            self._sender.stop()
            self._sender.join(timeout=5)
            self._spool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The same client for asyncio applications: ``emit`` stays synchronous (it only
    writes to the spool); waiting for the sender is awaitable."""

    def __init__(self, url: str, token: str, spool: str | os.PathLike[str], **options: Any) -> None:
        self._client = Client(url, token, spool, **options)

    def emit(self, event: dict[str, Any]) -> str:
        return self._client.emit(event)

    async def flush(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the wait runs in a thread that asyncio.timeout could not stop
        await asyncio.to_thread(self._client.flush, timeout)

    async def aclose(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109 - as flush
        await asyncio.to_thread(self._client.close, timeout)

    @property
    def status(self) -> SenderStatus:
        return self._client.status
