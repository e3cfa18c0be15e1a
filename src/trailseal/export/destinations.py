"""Where exported entries go, each over its own protocol, answering what became of a batch.

A destination's :meth:`deliver` takes a batch in log order and says, per entry, whether
it is delivered, dead (refused for good: a bad field, said by the receiver), or to be
tried again (everything else: the receiver down, busy, rate-limited, not yet
acknowledging). The exporter keeps the order, the cursor and the retries; a destination
only speaks its protocol:

- :class:`SplunkHEC`: ``/services/collector/event`` with ``Authorization: Splunk TOKEN``
  and, with indexer acknowledgement, a channel (``X-Splunk-Request-Channel``) and
  ``/services/collector/ack``: a batch counts only once Splunk says it is indexed.
- :class:`ElasticBulk`: ``_bulk`` NDJSON with ``create`` and a document id per entry
  (the origin and the index), so a resend is a conflict (409), not a second document;
  each item's answer is read, and only the failed items are tried again.
- :class:`Syslog`: RFC 5424 (the entry as JSON, or a CEF line) over UDP, TCP or TLS
  with octet counting, through the alert sinks' transport.
- :class:`JsonLines`: a file, one record a line (OCSF or ECS for a collector to pick up).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from trailseal.detect.sinks import SyslogTransport
from trailseal.export.formats import (
    Exported,
    cef_message,
    ecs_document,
    hec_event,
    ocsf_event,
    syslog_message,
)

Format = Callable[[Exported], dict[str, Any]]
FORMATS: dict[str, Format] = {"ecs": ecs_document, "ocsf": ocsf_event}


class Transient(Exception):  # noqa: N818 - a condition, not an error of ours
    """The batch (or what is left of it) should be tried again, after ``wait`` seconds
    if the receiver said so."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


@dataclass
class Outcome:
    """What became of a batch: positions delivered, dead (with the receiver's reason),
    and to try again."""

    delivered: set[int] = field(default_factory=set)
    dead: dict[int, str] = field(default_factory=dict)
    retry: set[int] = field(default_factory=set)
    wait: float | None = None  # what the receiver asked (Retry-After)
    reason: str | None = None  # why some are to be tried again


class Destination(Protocol):
    name: str

    def deliver(self, batch: list[Exported]) -> Outcome:
        """Send the batch; raise :class:`Transient` when none of it got through."""

    def close(self) -> None: ...


def _retry_after(answer: httpx.Response) -> float | None:
    try:
        return max(0.0, min(float(answer.headers.get("Retry-After", "")), 300.0))
    except ValueError:
        return None


def _http_error(exc: httpx.HTTPError, url: str) -> Transient:
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return Transient(f"{url}: the TLS certificate does not verify: {exc}")
    return Transient(f"{url}: {type(exc).__name__}: {exc}")


class SplunkHEC:
    """Splunk's HTTP Event Collector, with indexer acknowledgement when ``ack``."""

    def __init__(  # noqa: PLR0913 - HEC's own settings, by name
        self,
        name: str,
        url: str,
        token: str,
        *,
        index: str | None = None,
        sourcetype: str = "trailseal:audit",
        source: str = "trailseal",
        ack: bool = True,
        ack_timeout: float = 120,
        verify: bool | str = True,
        timeout: float = 30,
    ) -> None:
        self.name, self.url = name, url.rstrip("/")
        self.index, self.sourcetype, self.source = index, sourcetype, source
        self.ack, self.ack_timeout = ack, ack_timeout
        self.channel = str(uuid.uuid4())
        self.host = socket.gethostname() or "trailseal"
        headers = {"Authorization": f"Splunk {token}", "X-Splunk-Request-Channel": self.channel}
        self.http = httpx.Client(headers=headers, timeout=timeout, verify=verify)

    def _body(self, batch: list[Exported]) -> bytes:
        return b"".join(
            orjson.dumps(
                hec_event(
                    item,
                    host=self.host,
                    source=self.source,
                    sourcetype=self.sourcetype,
                    index=self.index,
                )
            )
            for item in batch
        )

    def deliver(self, batch: list[Exported]) -> Outcome:
        outcome = Outcome()
        pending = list(range(len(batch)))
        while pending:
            url = f"{self.url}/services/collector/event"
            try:
                answer = self.http.post(url, content=self._body([batch[i] for i in pending]))
            except httpx.HTTPError as exc:
                raise _http_error(exc, url) from None
            found = _json(answer)
            if answer.status_code == 400 and "invalid-event-number" in found:
                # one event is malformed: it goes to the dead letters, the rest again
                bad = pending[int(found["invalid-event-number"])]
                outcome.dead[bad] = f"HEC {found.get('code')}: {found.get('text')}"
                pending.remove(bad)
                continue
            if answer.status_code in (429, 503) or answer.status_code >= 500:
                raise Transient(f"{url} answered {answer.status_code}", _retry_after(answer))
            if answer.status_code in (401, 403):
                raise Transient(f"{url}: the token was refused ({answer.status_code})")
            if answer.status_code != 200:
                raise Transient(f"{url} answered {answer.status_code}: {answer.text[:200]}")
            if self.ack:
                self._acknowledged(found.get("ackId"))
            outcome.delivered.update(pending)
            pending = []
        return outcome

    def _acknowledged(self, ack_id: Any) -> None:
        """Wait until Splunk says the batch is indexed; a receiver that accepts and never
        acknowledges makes the batch go again (HEC cannot tell an indexed batch apart
        from a lost one otherwise)."""
        if not isinstance(ack_id, int):
            raise Transient(f"{self.url}: no ackId in the answer (is acknowledgement on?)")
        url = f"{self.url}/services/collector/ack"
        deadline = time.monotonic() + self.ack_timeout
        wait = 0.05
        while time.monotonic() < deadline:
            try:
                answer = self.http.post(url, content=orjson.dumps({"acks": [ack_id]}))
            except httpx.HTTPError as exc:
                raise _http_error(exc, url) from None
            if answer.status_code != 200:
                raise Transient(f"{url} answered {answer.status_code}", _retry_after(answer))
            if _json(answer).get("acks", {}).get(str(ack_id)) is True:
                return
            time.sleep(wait)
            wait = min(wait * 2, 2.0)
        raise Transient(f"{url}: batch {ack_id} not acknowledged in {self.ack_timeout:.0f}s")

    def close(self) -> None:
        self.http.close()


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        found = orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


_BULK_RETRY = {429, 500, 502, 503, 504}


class ElasticBulk:
    """Elasticsearch or OpenSearch ``_bulk``: ``create`` with the entry's document id."""

    def __init__(  # noqa: PLR0913 - the cluster's settings, by name
        self,
        name: str,
        url: str,
        index: str,
        *,
        fmt: str = "ecs",
        api_key: str | None = None,
        verify: bool | str = True,
        timeout: float = 30,
    ) -> None:
        self.name, self.url, self.index = name, url.rstrip("/"), index
        self.format = FORMATS[fmt]
        headers = {"Content-Type": "application/x-ndjson"}
        if api_key:
            headers["Authorization"] = f"ApiKey {api_key}"
        self.http = httpx.Client(headers=headers, timeout=timeout, verify=verify)

    def deliver(self, batch: list[Exported]) -> Outcome:
        lines = []
        for item in batch:
            lines.append(orjson.dumps({"create": {"_index": self.index, "_id": item.id}}))
            lines.append(orjson.dumps(self.format(item)))
        url = f"{self.url}/_bulk"
        try:
            answer = self.http.post(url, content=b"\n".join(lines) + b"\n")
        except httpx.HTTPError as exc:
            raise _http_error(exc, url) from None
        if answer.status_code != 200:
            raise Transient(f"{url} answered {answer.status_code}", _retry_after(answer))
        items = _json(answer).get("items")
        if not isinstance(items, list) or len(items) != len(batch):
            raise Transient(f"{url}: the bulk answer does not list every item")
        outcome = Outcome()
        for position, item in enumerate(items):
            result = next(iter(item.values())) if isinstance(item, dict) and item else {}
            status = int(result.get("status", 0))
            if status in (200, 201, 409):  # 409: that document id is already there
                outcome.delivered.add(position)
            elif status in _BULK_RETRY:
                outcome.retry.add(position)
                outcome.reason = f"{url}: item answered {status}"
            else:
                error = result.get("error") or {}
                reason = error.get("reason") if isinstance(error, dict) else str(error)
                outcome.dead[position] = f"bulk {status}: {reason}"
        if outcome.retry:
            outcome.wait = _retry_after(answer)
        return outcome

    def close(self) -> None:
        self.http.close()


class Syslog:
    """RFC 5424 syslog (the entry as JSON, or as a CEF line with ``cef``)."""

    def __init__(  # noqa: PLR0913 - the transport's settings, by name
        self,
        name: str,
        host: str,
        port: int,
        protocol: str,
        *,
        ca_file: Path | None = None,
        cef: bool = False,
        version: str = "0",
    ) -> None:
        self.name, self.cef, self.version = name, cef, version
        self.transport = SyslogTransport(f"destination {name}", host, port, protocol, ca_file)
        self.host = socket.gethostname() or "-"

    def deliver(self, batch: list[Exported]) -> Outcome:
        messages = [
            syslog_message(
                item, host=self.host, cef=cef_message(item, self.version) if self.cef else None
            )
            for item in batch
        ]
        try:
            self.transport.send(messages)
        except OSError as exc:  # refused, reset, a certificate that does not verify
            raise Transient(f"syslog {self.transport.address}: {exc}") from None
        return Outcome(delivered=set(range(len(batch))))

    def close(self) -> None:
        pass


class JsonLines:
    """A file, one record a line, appended and flushed to disk per batch."""

    def __init__(self, name: str, path: Path, fmt: str = "ocsf") -> None:
        self.name, self.path, self.format = name, path, FORMATS[fmt]

    def deliver(self, batch: list[Exported]) -> Outcome:
        try:
            with self.path.open("ab") as out:
                out.write(b"".join(orjson.dumps(self.format(item)) + b"\n" for item in batch))
                out.flush()
        except OSError as exc:
            raise Transient(f"{self.path}: {exc}") from None
        return Outcome(delivered=set(range(len(batch))))

    def close(self) -> None:
        pass
