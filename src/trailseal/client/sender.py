"""The background sender: batches spooled events, retries with backoff and jitter."""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field

import httpx
import orjson

from trailseal.client.spool import Spool

logger = logging.getLogger("trailseal.client")

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class SenderStatus:
    """What the sender has done; nothing is dropped without being counted here."""

    sent: int = 0
    rejected: int = 0  # refused by the server as invalid: logged with their reasons
    attempts_failed: int = 0
    last_error: str | None = None
    rejections: list[dict[str, object]] = field(default_factory=list)


class Sender(threading.Thread):
    """Sends spooled events to ``{url}/v1/events`` until stopped."""

    def __init__(  # noqa: PLR0913 - each is a setting of the client
        self,
        spool: Spool,
        url: str,
        token: str,
        *,
        batch_bytes: int,
        timeout: float,
        max_backoff: float,
    ) -> None:
        super().__init__(name="trailseal-sender", daemon=True)
        self._spool = spool
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
            timeout=timeout,
        )
        self._batch_bytes = batch_bytes
        self._batch_lines = 5000  # halved whenever the service answers 413
        self._max_backoff = max_backoff
        self._halt = threading.Event()
        self.status = SenderStatus()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        backoff = 0.05
        try:
            while not self._halt.is_set():
                try:
                    sent = self._once()
                except Exception as exc:  # noqa: BLE001 - the sender outlives every error
                    sent = self._failed(f"{type(exc).__name__}: {exc}")
                if sent:
                    backoff = 0.05
                else:
                    self._halt.wait(backoff * (0.5 + random.random()))  # noqa: S311 - jitter
                    backoff = min(backoff * 2, self._max_backoff)
        finally:
            self._http.close()

    def _once(self) -> bool:
        """Send the next batch, if any; False when it must be retried after a pause."""
        if not self._spool.wait_for_data(0.2):
            return True
        end, lines = self._spool.read(self._batch_bytes, self._batch_lines)
        if not lines:
            return True
        if not self._send(lines):
            return False
        self._spool.acknowledge(end)
        return True

    def _send(self, lines: list[bytes]) -> bool:  # noqa: PLR0911 - one return per answer
        """True once the server answered that the batch is durable (or refused for good)."""
        try:
            answer = self._http.post("/v1/events?partial=true", content=b"\n".join(lines))
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if answer.status_code in (200, 201):
            body = orjson.loads(answer.content)
            rejected = body.get("rejected", [])
            self.status.sent += len(lines) - len(
                {str(r["pointer"]).split("/")[1] for r in rejected}
            )
            self._reject(rejected, lines)
            return True
        if answer.status_code == 413 and len(lines) > 1:
            self._batch_lines = max(1, len(lines) // 2)
            self._batch_bytes = max(64 * 1024, self._batch_bytes // 2)
            return self._failed(f"HTTP 413, sending at most {self._batch_lines} events a batch")
        if answer.status_code in RETRYABLE or answer.status_code in (401, 403):
            # Authentication problems are retried too: a rotated token may be fixed by an
            # operator, and dropping audit events is never the answer.
            return self._failed(f"HTTP {answer.status_code}: {answer.text[:200]}")
        if answer.status_code == 422:  # the whole batch invalid even with partial=true
            self._reject(orjson.loads(answer.content).get("errors", []), lines)
            return True
        if answer.status_code == 409:  # an id the log holds with other content
            if len(lines) > 1:  # narrow it down: the others must not wait on it
                self._batch_lines = max(1, len(lines) // 2)
                return self._failed("HTTP 409 for a batch, sending smaller ones")
            self._reject([{"pointer": "/0", "message": _message(answer)}], lines)
            self._batch_lines = 5000
            return True
        return self._failed(f"HTTP {answer.status_code}: {answer.text[:200]}")

    def _failed(self, why: str) -> bool:
        self.status.attempts_failed += 1
        self.status.last_error = why
        logger.warning("trailseal: sending failed, will retry: %s", why)
        return False

    def _reject(self, errors: list[dict[str, object]], lines: list[bytes]) -> None:
        """Count, report and set aside the events the server refused for good; the rest
        of the batch was stored, and the spool moves on."""
        for error in errors:
            self.status.rejected += 1
            self.status.rejections.append(error)
            logger.error("trailseal: the server refused an event: %s", error)
            line = _line_of(str(error.get("pointer", "")), lines)
            if line is not None:
                self._spool.set_aside(line, str(error.get("message") or error))


def _line_of(pointer: str, lines: list[bytes]) -> bytes | None:
    """The line a JSON pointer such as ``/3/actor/id`` names (its first step), if any."""
    step = pointer.split("/")[1] if pointer.count("/") >= 1 else ""
    return lines[int(step)] if step.isdigit() and int(step) < len(lines) else None


def _message(answer: httpx.Response) -> str:
    try:
        body = orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        return answer.text[:200]
    return str(body.get("detail") or body.get("title") or body)[:500]
