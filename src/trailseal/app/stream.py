"""Appends from a NATS JetStream stream: producers on many hosts publish, sequencers
consume (`serve --nats URL`).

The consumer is durable and shared: several `serve` processes pull from it and each
message goes to one of them. A batch is checked, routed to the deployment's logs by
tenant, and appended through the one append pipeline, as ``host`` with the service name
``trailseal-nats`` (who may publish is NATS's to decide: its accounts and permissions);
then each producer is told, on the subject its messages name in ``Trailseal-Ack-To``,
the index each event landed at (or why it was refused), and only then are the messages
acknowledged to JetStream. A sequencer that dies before that leaves them to be delivered
again, and the log keeps each event id once. De-duplication by event id is the log's:
JetStream's duplicate window (``Nats-Msg-Id``) only saves work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import orjson

from trailseal.app.caller import Caller
from trailseal.app.deployment import Deployment
from trailseal.errors import EventError, TrailsealError

logger = logging.getLogger("trailseal.stream")

STREAM = "TRAILSEAL"
SUBJECT = "trailseal.events"
DURABLE = "trailseal-sequencers"
ACK_HEADER = "Trailseal-Ack-To"
EVENT_HEADER = "Trailseal-Event-Id"  # Nats-Msg-Id is the event id only on a first publish
BATCH = 1000
ACK_WAIT = 5.0  # seconds before JetStream hands unacknowledged messages to another
# Messages out to sequencers at once, unacknowledged. JetStream's default (1,000) is one
# batch: the sequencers would take turns, each waiting for the other's acknowledgements.
MAX_ACK_PENDING = 20 * BATCH


class StreamIngest(threading.Thread):
    """Pulls events from JetStream and appends them, until stopped."""

    def __init__(self, deployment: Deployment, url: str, *, subject: str = SUBJECT) -> None:
        super().__init__(name="trailseal-nats", daemon=True)
        self.deployment, self.url, self.subject = deployment, url, subject
        self.caller = Caller(Caller.host().principal, None, "trailseal-nats")
        self.halt = threading.Event()
        self.appended = 0
        self.last_error: str | None = None

    def stop(self) -> None:
        self.halt.set()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import nats  # noqa: PLC0415 - only `serve --nats` needs it
        from nats.js.api import ConsumerConfig, StreamConfig  # noqa: PLC0415
        from nats.js.errors import BadRequestError  # noqa: PLC0415

        while not self.halt.is_set():
            try:
                nc = await nats.connect(
                    self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5
                )
                js = nc.jetstream()
                # it may exist (made by another sequencer, or an operator)
                with contextlib.suppress(BadRequestError):
                    await js.add_stream(StreamConfig(name=STREAM, subjects=[self.subject]))
                # a sequencer that dies holding messages gives them back within ACK_WAIT
                config = ConsumerConfig(ack_wait=ACK_WAIT, max_ack_pending=MAX_ACK_PENDING)
                pull = await js.pull_subscribe(self.subject, durable=DURABLE, config=config)
                while not self.halt.is_set():
                    try:
                        messages = await pull.fetch(BATCH, timeout=1)
                    except TimeoutError:
                        continue
                    await self._batch(nc, messages)
                await nc.close()
            except Exception as exc:  # noqa: BLE001 - the consumer outlives every error
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("trailseal: stream ingest failed (%s); retrying", self.last_error)
                await asyncio.sleep(1)

    async def _batch(self, nc: Any, messages: list[Any]) -> None:
        """Append a batch, tell each producer where its events landed, then ack them."""
        lines = [bytes(m.data) for m in messages]
        try:
            outcome = await asyncio.to_thread(
                self.deployment.append, self.caller, lines, partial=True
            )
        except TrailsealError as exc:  # the store unavailable: JetStream delivers them again
            self.last_error = exc.diagnostics()
            for message in messages:
                await message.nak(delay=1)
            return
        self.appended += outcome.appended
        replies: dict[str, dict[str, dict[str, Any]]] = {}
        for number, _, index in outcome.placed:
            self._reply(replies, messages[number - 1], "acks", index)
        for problem in outcome.problems:
            error = problem.error
            reason = error.message if isinstance(error, EventError) else str(error)
            self._reply(replies, messages[problem.line - 1], "rejected", f"{error}"[:500] or reason)
        for subject, body in replies.items():
            await nc.publish(subject, orjson.dumps(body))
        await nc.flush()
        for message in messages:
            await message.ack()

    @staticmethod
    def _reply(
        replies: dict[str, dict[str, dict[str, Any]]], message: Any, kind: str, value: Any
    ) -> None:
        headers = message.headers or {}
        subject = headers.get(ACK_HEADER)
        event_id = headers.get(EVENT_HEADER) or headers.get("Nats-Msg-Id")
        if not subject or not event_id:
            return  # a producer that does not wait for the log's word
        replies.setdefault(subject, {"acks": {}, "rejected": {}})[kind][event_id] = value
