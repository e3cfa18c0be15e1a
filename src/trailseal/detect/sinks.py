"""Where alerts go: a webhook, syslog (RFC 5424 over UDP, or TCP with RFC 5425 octet
counting), a JSON Lines file, standard output.

Alerts are not sent by the engine itself: each new alert gets a delivery row
per sink in the same transaction that stores it, and the :class:`Dispatcher`
sends them from its own thread, retrying with backoff. A sink that is down
never blocks ingestion or detection and never loses an alert; after
``give_up`` seconds of failures a delivery is a dead letter, listed by
``trailseal alerts dead`` and sent again by ``trailseal alerts redeliver``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from trailseal.detect.store import DetectionStore
from trailseal.errors import ConfigError

logger = logging.getLogger("trailseal.detect")

SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "informational": 6}
FACILITY_LOG_AUDIT = 13


class Sink(Protocol):
    name: str

    def send(self, delivery_id: int, alert: dict[str, Any]) -> None:
        """Deliver or raise; the dispatcher retries."""


class StdoutSink:
    def __init__(self, name: str = "stdout") -> None:
        self.name = name

    def send(self, delivery_id: int, alert: dict[str, Any]) -> None:  # noqa: ARG002
        sys.stdout.write(orjson.dumps(alert).decode() + "\n")
        sys.stdout.flush()


class JsonLinesSink:
    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path

    def send(self, delivery_id: int, alert: dict[str, Any]) -> None:  # noqa: ARG002
        with self.path.open("ab") as out:
            out.write(orjson.dumps(alert) + b"\n")
            out.flush()


class WebhookSink:
    """POSTs the alert as JSON, signed the Standard Webhooks way: ``webhook-id``,
    ``webhook-timestamp`` and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of
    ``id.timestamp.body`` under the secret), so receivers can use existing libraries."""

    def __init__(self, name: str, url: str, secret: bytes, timeout: float = 10) -> None:
        self.name, self.url, self.secret = name, url, secret
        self.http = httpx.Client(timeout=timeout)

    def send(self, delivery_id: int, alert: dict[str, Any]) -> None:
        body = orjson.dumps(alert)
        message_id = f"alert-{alert['id']}-{delivery_id}"
        stamp = str(int(time.time()))
        signed = f"{message_id}.{stamp}.".encode() + body
        signature = base64.b64encode(hmac.new(self.secret, signed, hashlib.sha256).digest())
        answer = self.http.post(
            self.url,
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": stamp,
                "webhook-signature": f"v1,{signature.decode()}",
            },
        )
        if answer.status_code >= 300:
            raise RuntimeError(f"{self.url} answered {answer.status_code}")


def webhook_key(secret: str) -> bytes:
    """The signing key of a Standard Webhooks secret (``whsec_`` + base64), or of any other
    text, taken as its bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_") + "==")
        except ValueError:
            raise ConfigError("a whsec_ secret must be base64 after the prefix") from None
    if not secret:
        raise ConfigError("the webhook secret is empty")
    return secret.encode()


def syslog_message(alert: dict[str, Any], app: str = "trailseal") -> bytes:
    """RFC 5424: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG``, the alert as JSON."""
    severity = SYSLOG_SEVERITY.get(str(alert.get("severity")), 4)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = socket.gethostname()[:255] or "-"
    structured = '[trailseal@32473 rule="{}" alert="{}"]'.format(
        sd_value(str(alert.get("rule"))), alert.get("id")
    )
    header = f"<{FACILITY_LOG_AUDIT * 8 + severity}>1 {stamp} {host} {app} - ALERT {structured} "
    return header.encode() + b"\xef\xbb\xbf" + orjson.dumps(alert)


def sd_value(value: str) -> str:
    """An RFC 5424 SD-PARAM value: backslash, double quote and ``]`` escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


class SyslogTransport:
    """RFC 5424 messages over UDP (one datagram each), or over TCP or TLS with RFC 5425
    octet counting (one connection a batch; TLS verifies the server's certificate against
    ``ca_file``, else the system's CAs). The alert sinks and the exporter share it."""

    def __init__(
        self, where: str, host: str, port: int, protocol: str, ca_file: Path | None = None
    ) -> None:
        if protocol not in ("udp", "tcp", "tls"):
            raise ConfigError(f"{where}: protocol is udp, tcp or tls, not {protocol!r}")
        self.address, self.protocol = (host, port), protocol
        self.tls: ssl.SSLContext | None = None
        if protocol == "tls":
            self.tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def send(self, messages: list[bytes], timeout: float = 10) -> None:
        """Send every message, or raise (a batch over TCP or TLS goes in one connection)."""
        if self.protocol == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
                for message in messages:
                    out.sendto(message, self.address)
            return
        framed = b"".join(str(len(m)).encode() + b" " + m for m in messages)  # RFC 5425
        with socket.create_connection(self.address, timeout=timeout) as raw:
            if self.tls is None:
                raw.sendall(framed)
                return
            with self.tls.wrap_socket(raw, server_hostname=self.address[0]) as out:
                out.sendall(framed)
                _drain(out)


def _drain(tls: ssl.SSLSocket) -> None:
    """Read what the server sent (TLS 1.3 session tickets) before closing: a socket
    closed with unread data sends a reset, and the server then drops what it had not yet
    read of ours (rsyslog lost 1,023 of 1,200 messages so until this was read)."""
    tls.settimeout(0.05)
    try:
        while tls.recv(4096):
            pass
    except (OSError, ssl.SSLError):
        pass


class SyslogSink:
    """Alerts as RFC 5424 messages through a :class:`SyslogTransport`."""

    def __init__(
        self, name: str, host: str, port: int, protocol: str, ca_file: Path | None = None
    ) -> None:
        self.name = name
        self.transport = SyslogTransport(f"sink {name}", host, port, protocol, ca_file)

    def send(self, delivery_id: int, alert: dict[str, Any]) -> None:  # noqa: ARG002
        self.transport.send([syslog_message(alert)])


class Dispatcher(threading.Thread):
    """Sends pending deliveries to their sinks, retrying with backoff, in its own thread."""

    def __init__(
        self,
        store: Path | Callable[[], DetectionStore],
        sinks: list[Sink],
        *,
        give_up: float = 86400,
        poll: float = 0.2,
    ) -> None:
        """``store`` opens the detection state this thread uses (a SQLite file's path, or
        :meth:`DetectionStore.reopen` of the engine's)."""
        super().__init__(name="trailseal-sinks", daemon=True)
        self.store = DetectionStore(store) if isinstance(store, Path) else store()
        self.sinks = {sink.name: sink for sink in sinks}
        self.give_up, self.poll = give_up, poll
        self.halt = threading.Event()
        self.wake = threading.Event()

    def stop(self) -> None:
        self.halt.set()
        self.wake.set()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.deliver_due()
            except Exception:  # a full disk, a lost connection: deliveries wait, not die
                logger.exception("trailseal: alert delivery failed; retrying")
                self.halt.wait(min(30.0, self.poll * 10))
            self.wake.wait(self.poll)
            self.wake.clear()
        self.store.close()

    def deliver_due(self) -> int:
        """Try every due delivery once; returns how many succeeded."""
        done = 0
        for delivery_id, alert_id, sink_name, attempts in self.store.due(time.time()):
            sink = self.sinks.get(sink_name)
            alert = self.store.alert(alert_id).to_json()
            if sink is None:  # the configuration no longer has it: kept as a dead letter
                self.store.failed(delivery_id, f"no sink named {sink_name!r} is configured", None)
                continue
            try:
                sink.send(delivery_id, alert)
            except Exception as exc:  # noqa: BLE001 - any failure of a sink is retried
                retry = time.time() + min(300.0, 2.0 ** min(attempts, 9))
                error = f"{type(exc).__name__}: {exc}"
                keep = retry - _failing_since(attempts) < self.give_up
                self.store.failed(delivery_id, error, retry if keep else None)
                continue
            self.store.delivered(delivery_id)
            done += 1
        return done


def _failing_since(attempts: int) -> float:
    """When a delivery was first tried, from the backoff its attempts waited."""
    return time.time() - sum(min(300.0, 2.0 ** min(n, 9)) for n in range(attempts))
