"""Local receivers standing in for Splunk's HTTP Event Collector and Elasticsearch's
``_bulk`` API, written from their published specifications, checking the wire format
field by field. Each keeps what it accepted in a JSON Lines file, so a receiver killed
with SIGKILL and started again on the same port (``python tests/receivers.py hec PORT
FILE``) still has what it had indexed, as the real ones do:

- HEC: a batch is accepted with an ``ackId`` and becomes indexed (written to the file)
  when the client asks ``/services/collector/ack`` about it; a batch accepted and not
  yet indexed when the receiver dies is lost, as in Splunk, and the client resends it.
  ``kill_after`` makes it SIGKILL itself once it has accepted that many batches.
- Bulk: each ``create`` is written as it is applied; an id already there answers 409.
  ``kill_after`` makes it SIGKILL itself halfway through that many-th batch.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "hec-token-0000"


class Receiver:
    """A receiver's state: what it holds (by the file), and how it should misbehave."""

    def __init__(self, path: Path, kill_after: int | None = None) -> None:
        self.path = path
        self.kill_after = kill_after
        self.lock = threading.Lock()
        self.batches = 0
        self.requests: list[dict[str, Any]] = []  # headers and bodies, for the tests
        self.fail: list[int] = []  # statuses to answer before a real answer
        self.never_ack = False
        self.bad_action: str | None = None  # an event with this action is refused
        self.fail_items = 0  # bulk: items answered 429 before any is created
        self.pending: dict[int, list[dict[str, Any]]] = {}
        self.next_ack = 0
        self.ids: set[str] = set()
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    self.ids.add(json.loads(line).get("_id", ""))

    def held(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def write(self, items: list[dict[str, Any]]) -> None:
        with self.path.open("a") as out:
            for item in items:
                out.write(json.dumps(item) + "\n")
            out.flush()
            os.fsync(out.fileno())


def _events(body: bytes) -> list[Any]:
    """HEC's body: JSON objects one after another (no separator needed)."""
    decoder = json.JSONDecoder()
    text, position, found = body.decode(), 0, []
    while position < len(text):
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        value, position = decoder.raw_decode(text, position)
        found.append(value)
    return found


def hec_handler(state: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: PLR0911 - one answer per case HEC names
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.headers.get("Authorization") != f"Splunk {TOKEN}":
                    return self._answer(401, {"text": "Invalid authorization", "code": 3})
                if not self.headers.get("X-Splunk-Request-Channel"):
                    return self._answer(400, {"text": "Data channel is missing", "code": 10})
                if state.fail:
                    status = state.fail.pop(0)
                    return self._answer(
                        status, {"text": "Server is busy", "code": 9}, {"Retry-After": "0"}
                    )
                if self.path == "/services/collector/ack":
                    return self._ack(json.loads(body))
                if self.path != "/services/collector/event":
                    return self._answer(404, {"text": "Not found", "code": 404})
                events = _events(body)
                for number, event in enumerate(events):
                    missing = [
                        k
                        for k in ("time", "host", "source", "sourcetype", "event")
                        if k not in event
                    ]
                    action = event.get("event", {}).get("event", {}).get("action")
                    if (
                        missing
                        or not isinstance(event["time"], int | float)
                        or action == state.bad_action
                    ):
                        return self._answer(
                            400,
                            {
                                "text": "Invalid data format",
                                "code": 6,
                                "invalid-event-number": number,
                            },
                        )
                state.batches += 1
                ack = state.next_ack
                state.next_ack += 1
                state.pending[ack] = events
                self._answer(200, {"text": "Success", "code": 0, "ackId": ack})
                if state.kill_after is not None and state.batches >= state.kill_after:
                    self.wfile.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            return None

        def _ack(self, asked: dict[str, Any]) -> None:
            answers = {}
            for ack in asked.get("acks", []):
                if state.never_ack:
                    answers[str(ack)] = False
                    continue
                events = state.pending.pop(ack, None)
                if events is not None:
                    state.write(events)  # indexed
                    answers[str(ack)] = True
                else:
                    answers[str(ack)] = False  # unknown: lost when the receiver died
            self._answer(200, {"acks": answers})

    return Handler


def bulk_handler(state: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.path != "/_bulk":
                    return self._answer(404, {"error": "no such route"})
                if self.headers.get("Content-Type") != "application/x-ndjson":
                    return self._answer(406, {"error": "Content-Type must be application/x-ndjson"})
                if state.fail:
                    return self._answer(state.fail.pop(0), {"error": "busy"})
                lines = body.decode().splitlines()
                if len(lines) % 2:
                    return self._answer(400, {"error": "bulk body must be action and source pairs"})
                state.batches += 1
                items, written = [], []
                half = len(lines) // 4
                for number in range(0, len(lines), 2):
                    action, source = json.loads(lines[number]), json.loads(lines[number + 1])
                    meta = action["create"]
                    if (
                        state.kill_after is not None
                        and state.batches >= state.kill_after
                        and number // 2 == half
                    ):
                        state.write(written)
                        os.kill(os.getpid(), signal.SIGKILL)
                    if meta["_id"] in state.ids:
                        items.append(
                            {
                                "create": {
                                    "_id": meta["_id"],
                                    "status": 409,
                                    "error": {"type": "version_conflict_engine_exception"},
                                }
                            }
                        )
                    elif source.get("event", {}).get("action") == state.bad_action:
                        items.append(
                            {
                                "create": {
                                    "_id": meta["_id"],
                                    "status": 400,
                                    "error": {
                                        "type": "mapper_parsing_exception",
                                        "reason": "failed to parse field [event.action]",
                                    },
                                }
                            }
                        )
                    elif state.fail_items:
                        state.fail_items -= 1
                        items.append(
                            {
                                "create": {
                                    "_id": meta["_id"],
                                    "status": 429,
                                    "error": {"type": "es_rejected_execution_exception"},
                                }
                            }
                        )
                    else:
                        state.ids.add(meta["_id"])
                        written.append(
                            {"_id": meta["_id"], "_index": meta["_index"], "_source": source}
                        )
                        items.append(
                            {"create": {"_id": meta["_id"], "status": 201, "result": "created"}}
                        )
                state.write(written)
                errors = any(item["create"]["status"] >= 300 for item in items)
                return self._answer(200, {"took": 1, "errors": errors, "items": items})

    return Handler


def serve(
    kind: str,
    port: int,
    path: Path,
    kill_after: int | None = None,
    tls: tuple[Path, Path] | None = None,
) -> tuple[ThreadingHTTPServer, Receiver]:
    """A receiver on ``port`` (0: any); with ``tls`` (certificate, key), over HTTPS."""
    state = Receiver(path, kill_after)
    handler = hec_handler(state) if kind == "hec" else bulk_handler(state)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    if tls is not None:
        import ssl  # noqa: PLC0415

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


if __name__ == "__main__":
    kind, port, file = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    kill = int(sys.argv[4]) if len(sys.argv) > 4 else None
    server, _ = serve(kind, port, file, kill)
    print("ready", flush=True)
    threading.Event().wait()
