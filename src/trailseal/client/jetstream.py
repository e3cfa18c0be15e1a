"""Sending spooled events through NATS JetStream instead of HTTP.

Each event is published to the stream's subject with its id in ``Trailseal-Event-Id``
and, the first time, as ``Nats-Msg-Id`` (so JetStream drops a second publish of it
within its duplicate window), and a ``Trailseal-Ack-To`` header naming this client's
acknowledgement subject. An event published again because the log's word on it never
came (a reply lost when NATS restarted) gets a fresh ``Nats-Msg-Id`` (``ID#2``, ...):
with its first id, JetStream would take it for a duplicate and never deliver it, and the
client would wait out the duplicate window (two minutes). A stream's acknowledgement is
never taken for durability (published fault tests have shown JetStream losing
acknowledged writes under network faults): an event leaves the spool only once a
sequencer has appended it to the log and said at which index, on that subject. A batch
not wholly acknowledged in time is published again; the log keeps each event id once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

import orjson

from trailseal.client.sender import SenderStatus
from trailseal.client.spool import Spool

logger = logging.getLogger("trailseal.client")

SUBJECT = "trailseal.events"
ACK_HEADER = "Trailseal-Ack-To"
EVENT_HEADER = "Trailseal-Event-Id"


class JetStreamSender(threading.Thread):
    """Publishes spooled events to JetStream and waits for the log's acknowledgements."""

    def __init__(  # noqa: PLR0913 - each is a setting of the client
        self,
        spool: Spool,
        url: str,
        *,
        subject: str = SUBJECT,
        batch_lines: int = 1000,
        ack_timeout: float = 10.0,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__(name="trailseal-jetstream", daemon=True)
        self._spool, self.url, self.subject = spool, url, subject
        self._batch_lines, self._ack_timeout, self._max_backoff = (
            batch_lines,
            ack_timeout,
            max_backoff,
        )
        self.inbox = f"trailseal.acks.{uuid.uuid4().hex}"
        self._halt = threading.Event()
        self._acked: dict[str, int] = {}
        self._rejected: dict[str, str] = {}
        self._published: dict[str, int] = {}  # how many times each unanswered event went out
        self._arrived = asyncio.Event()
        self.status = SenderStatus()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import nats  # noqa: PLC0415 - only a client that uses JetStream needs it

        backoff = 0.1
        nc = js = None
        while not self._halt.is_set():
            try:
                if nc is None or nc.is_closed:
                    nc = await nats.connect(
                        self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5
                    )
                    await nc.subscribe(self.inbox, cb=self._on_ack)
                    js = nc.jetstream()
                sent = await self._once(js)
            except Exception as exc:  # noqa: BLE001 - the sender outlives every error
                sent = self._failed(f"{type(exc).__name__}: {exc}")
            if sent:
                backoff = 0.1
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
        if nc is not None and not nc.is_closed:
            await nc.close()

    async def _on_ack(self, message: Any) -> None:
        """The log's word on events this client published: indexes, or refusals."""
        try:
            body = orjson.loads(message.data)
        except orjson.JSONDecodeError:
            return
        self._acked.update({str(k): int(v) for k, v in (body.get("acks") or {}).items()})
        self._rejected.update({str(k): str(v) for k, v in (body.get("rejected") or {}).items()})
        self._arrived.set()

    async def _once(self, js: Any) -> bool:
        if not await asyncio.to_thread(self._spool.wait_for_data, 0.2):
            return True
        end, lines = self._spool.read(64 * 1024 * 1024, self._batch_lines)
        if not lines:
            return True
        ids = [str(orjson.loads(line)["id"]) for line in lines]
        await self._publish(js, ids, lines)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ack_timeout
        while not all(i in self._acked or i in self._rejected for i in ids):
            left = deadline - loop.time()
            if left <= 0:
                missing = sum(1 for i in ids if i not in self._acked and i not in self._rejected)
                return self._failed(f"{missing} events not yet acknowledged by the log")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                continue
        for event_id, line in zip(ids, lines, strict=True):
            self._published.pop(event_id, None)
            reason = self._rejected.pop(event_id, None)
            if reason is not None:
                self.status.rejected += 1
                self.status.rejections.append({"id": event_id, "message": reason})
                self._spool.set_aside(line, reason)
            else:
                self._acked.pop(event_id, None)
                self.status.sent += 1
        self._spool.acknowledge(end)
        return True

    async def _publish(self, js: Any, ids: list[str], lines: list[bytes]) -> None:
        """Publish the events the log has not answered for, all in flight at once (not a
        round trip an event), and wait for JetStream to take them."""
        published = []
        for event_id, line in zip(ids, lines, strict=True):
            if event_id in self._acked or event_id in self._rejected:
                continue  # the log has answered for it already (a resent batch)
            times = self._published.get(event_id, 0) + 1
            self._published[event_id] = times
            headers = {
                "Nats-Msg-Id": event_id if times == 1 else f"{event_id}#{times}",
                EVENT_HEADER: event_id,
                ACK_HEADER: self.inbox,
            }
            published.append(await js.publish_async(self.subject, line, headers=headers))
        if published:
            await asyncio.wait_for(asyncio.gather(*published), self._ack_timeout)

    def _failed(self, why: str) -> bool:
        self.status.attempts_failed += 1
        self.status.last_error = why
        logger.warning("trailseal: sending through JetStream failed, will retry: %s", why)
        return False
