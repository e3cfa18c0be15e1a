"""Alert sinks against real receivers: a local HTTP server that checks Standard Webhooks
signatures with the reference library (and is down for a while), and Debian's rsyslog
receiving RFC 5424 over UDP and over TCP with octet counting."""

from __future__ import annotations

import base64
import http.server
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from conftest import need, run_cli
from trailseal.detect.config import load_config
from trailseal.detect.engine import Engine
from trailseal.detect.rules import BUILTIN, load
from trailseal.detect.sinks import Dispatcher, SyslogSink
from trailseal.detect.store import DetectionStore
from trailseal.events import event_from_mapping
from trailseal.ledger import Ledger, SearchFilter
from trailseal.testing import free_port

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _export(n: int) -> dict:
    return {
        "id": f"x-{n}",
        "time": f"2026-03-02T1{n}:00:00Z",
        "actor": {"id": f"clerk-{n}"},
        "action": "export.create",
        "resource": {"type": "export", "count": 400 + n},
    }


class Receiver:
    """A webhook receiver on loopback that verifies every signature."""

    def __init__(self, port: int) -> None:
        self.port, self.alerts, self.refused = port, [], 0
        verifier = Webhook(SECRET)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    verifier.verify(body.decode(), dict(self.headers.items()))
                except Exception:
                    outer.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                outer.alerts.append(orjson.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    with Ledger.init(tmp_path / "data", origin="sinks.example/log") as ledger:
        ledger.append([event_from_mapping(_export(n)) for n in range(3)])
    return tmp_path / "data"


def test_a_webhook_that_is_down_for_a_while_gets_every_alert_once_signed(data: Path) -> None:
    port = free_port()
    (data / "hook.secret").write_text(SECRET)
    (data / "detection.yaml").write_text(
        "sinks:\n"
        f"  - {{name: soc, type: webhook, url: 'http://127.0.0.1:{port}/alerts', "
        "secret_file: hook.secret}\n"
    )
    config = load_config(data)
    with Ledger.open(data) as ledger:
        store = DetectionStore(data / "detection.db")
        Engine(ledger, store, load([BUILTIN]), config).run_once()
        store.close()
    dispatcher = Dispatcher(data / "detection.db", config.sinks)
    assert dispatcher.deliver_due() == 0  # nobody is listening yet
    assert dispatcher.deliver_due() == 0  # and retries wait for their backoff
    receiver = Receiver(port)
    try:
        deadline = time.monotonic() + 20
        while len(receiver.alerts) < 3 and time.monotonic() < deadline:
            dispatcher.deliver_due()
            time.sleep(0.2)
    finally:
        receiver.stop()
    assert receiver.refused == 0
    assert sorted(a["group"] for a in receiver.alerts) == [f"actor.id=clerk-{n}" for n in range(3)]
    assert dispatcher.deliver_due() == 0  # nothing left, nothing sent twice
    store = DetectionStore(data / "detection.db")
    assert store.dead() == []
    store.close()


def test_a_delivery_that_keeps_failing_becomes_a_dead_letter_and_can_be_replayed(
    data: Path,
) -> None:
    port = free_port()
    (data / "hook.secret").write_text(SECRET)
    (data / "detection.yaml").write_text(
        f"sinks:\n  - {{name: soc, type: webhook, url: 'http://127.0.0.1:{port}/', "
        "secret_file: hook.secret}\n"
    )
    config = load_config(data)
    with Ledger.open(data) as ledger:
        Engine(ledger, DetectionStore(data / "detection.db"), load([BUILTIN]), config).run_once()
    dispatcher = Dispatcher(data / "detection.db", config.sinks, give_up=0)
    dispatcher.deliver_due()
    dead = orjson.loads(run_cli("alerts", "dead", "--json", data=data, check=True).stdout)
    assert len(dead) == 3
    assert "ConnectError" in dead[0]["last_error"]
    queued = run_cli("alerts", "redeliver", data=data, check=True)
    assert b"3 deliveries queued again" in queued.stderr
    with Ledger.open(data) as ledger:  # both are recorded, as every use of the alerts is
        recorded = [
            (view.entry["event"]["action"], view.entry["event"].get("outcome", {}).get("reason"))
            for view in ledger.search(SearchFilter(action="alert.*"))
        ]
    assert ("alert.read", "dead deliveries") in recorded
    assert ("alert.redelivered", None) in recorded
    receiver = Receiver(port)
    try:
        assert Dispatcher(data / "detection.db", config.sinks).deliver_due() == 3
    finally:
        receiver.stop()
    assert len(receiver.alerts) == 3


# -- syslog ------------------------------------------------------------------------------

RSYSLOG = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    need(Path(RSYSLOG).exists(), "rsyslogd (the syslog receiver)", "apt-get install rsyslog")
    udp, tcp = free_port(), free_port()
    out = tmp_path / "received.log"
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "rsyslog.conf"
    config.write_text(
        f'global(workDirectory="{work}")\n'
        'module(load="imudp")\nmodule(load="imtcp")\n'
        f'input(type="imudp" address="127.0.0.1" port="{udp}")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{tcp}")\n'
        'template(name="parts" type="string" '
        'string="%pri%|%app-name%|%msgid%|%structured-data%|%msg%\\n")\n'
        f'*.* action(type="omfile" file="{out}" template="parts")\n'
    )
    process = subprocess.Popen(
        [RSYSLOG, "-n", "-f", str(config), "-i", str(tmp_path / "rsyslog.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # rsyslog opens its inputs
    if process.poll() is not None:
        pytest.fail(
            f"rsyslogd did not start: {process.stderr.read().decode() if process.stderr else ''}"
        )
    yield udp, tcp, out
    process.terminate()
    process.wait(timeout=10)


def _lines(path: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and len(lines := path.read_text().splitlines()) >= count:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"rsyslog wrote {path.read_text() if path.exists() else 'nothing'}")


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_rsyslog_receives_rfc5424_alerts(rsyslog: tuple[int, int, Path], protocol: str) -> None:
    udp, tcp, out = rsyslog
    sink = SyslogSink("siem", "127.0.0.1", udp if protocol == "udp" else tcp, protocol)
    alert = {
        "id": 7,
        "rule": "bulk_export",
        "severity": "high",
        "group": "actor.id=c1",
        "evidence": [3],
    }
    sink.send(1, alert)
    sink.send(2, alert | {"id": 8, "severity": "critical"})
    first, second = _lines(out, 2)
    pri, app, msgid, structured, message = first.split("|", 4)
    assert (pri, app, msgid) == (str(13 * 8 + 3), "trailseal", "ALERT")
    assert structured == '[trailseal@32473 rule="bulk_export" alert="7"]'
    assert orjson.loads(message.lstrip("\ufeff").strip())["group"] == "actor.id=c1"
    assert second.startswith(f"{13 * 8 + 2}|")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with `cryptography`."""
    import datetime as dt  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "siem.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "siem.pem", folder / "siem.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_syslog_over_tls_with_octet_counting(tmp_path: Path) -> None:
    """RFC 5425: TLS, the server's certificate verified, each message framed by its length."""
    import socket  # noqa: PLC0415
    import ssl  # noqa: PLC0415

    cert_file, key_file = _self_signed(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        for _ in range(2):  # the trusting client, then one that does not trust the server
            connection, _ = listener.accept()
            try:
                with server.wrap_socket(connection, server_side=True) as tls:
                    data = b""
                    while chunk := tls.recv(65536):
                        data += chunk
                    received.append(data)
            except (ssl.SSLError, OSError):
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sink = SyslogSink("siem", "127.0.0.1", port, "tls", ca_file=cert_file)
    sink.send(1, {"id": 9, "rule": "bulk_export", "severity": "high"})
    untrusted = SyslogSink("siem", "127.0.0.1", port, "tls")  # the system CAs do not know it
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusted.send(2, {"id": 10})
    thread.join(timeout=10)
    listener.close()
    (frame,) = received  # only the trusting client's message arrived
    length, _, message = frame.partition(b" ")
    assert int(length) == len(message)
    assert message.startswith(b"<107>1 ")
