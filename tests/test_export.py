"""`trailseal export-to`: every entry to Splunk HEC, Elastic `_bulk`, syslog and files, in
the destination's format, provable against the log.

Splunk and Elasticsearch cannot run here; local receivers written from their published
specifications stand in for them (tests/receivers.py) and check the wire format field by
field. Syslog goes to Debian's rsyslog, over TCP and over TLS.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import append_sample, need, run_cli
from receivers import TOKEN, serve
from trailseal.app import App, Caller
from trailseal.errors import ConfigError, NotFoundError
from trailseal.export.config import load_destinations
from trailseal.export.formats import (
    ACCOUNT_CHANGE,
    API_ACTIVITY,
    AUTHENTICATION,
    ENTITY_MANAGEMENT,
    Exported,
    cef_message,
    ecs_document,
    hec_event,
    ocsf_class,
    ocsf_event,
    syslog_message,
)
from trailseal.ledger import Ledger
from trailseal.testing import free_port

RECEIVERS = Path(__file__).resolve().parent / "receivers.py"


def _item(**event: Any) -> Exported:
    base = {
        "id": "e-1",
        "time": "2026-11-30T10:00:00.250Z",
        "actor": {"id": "u-7", "name": "Dr. Who", "roles": ["nurse"], "tenant": "acme"},
        "action": "record.read",
        "outcome": {"result": "success"},
        "source": {"ip": "192.0.2.7", "user_agent": "curl/8"},
        "resource": {"type": "patient", "id": "p-1", "tenant": "acme"},
    }
    base.update(event)
    return Exported(
        "test.example/log", 42, "ab" * 32, "2026-11-30T10:00:01Z", "w-1", base, tenant="acme"
    )


# -- formats, field by field --------------------------------------------------------------


def test_hec_event_fields() -> None:
    found = hec_event(
        _item(), host="h", source="trailseal", sourcetype="trailseal:audit", index="audit"
    )
    assert found["time"] == dt.datetime(2026, 11, 30, 10, 0, 0, 250000, tzinfo=dt.UTC).timestamp()
    assert (found["host"], found["source"], found["sourcetype"], found["index"]) == (
        "h",
        "trailseal",
        "trailseal:audit",
        "audit",
    )
    assert found["fields"] == {
        "trailseal.index": "42",
        "trailseal.leaf_hash": "ab" * 32,
        "trailseal.origin": "test.example/log",
    }
    assert found["event"]["trailseal"]["index"] == 42
    assert found["event"]["event"]["action"] == "record.read"
    assert "detail" not in found["event"]


def test_ecs_document_fields() -> None:
    doc = ecs_document(_item(outcome={"result": "denied", "reason": "no"}))
    assert doc["@timestamp"] == "2026-11-30T10:00:00.250Z"
    assert doc["event"]["action"] == "record.read"
    assert doc["event"]["outcome"] == "failure"  # ECS has success, failure, unknown
    assert doc["event"]["reason"] == "no"
    assert doc["user"] == {"id": "u-7", "name": "Dr. Who", "roles": ["nurse"], "domain": "acme"}
    assert doc["source"] == {"ip": "192.0.2.7"}
    assert doc["user_agent"] == {"original": "curl/8"}
    assert doc["organization"] == {"id": "acme"}
    assert doc["trailseal"]["index"] == 42
    assert doc["trailseal"]["leaf_hash"] == "ab" * 32
    assert doc["trailseal"]["origin"] == "test.example/log"


def test_cef_escapes_as_cef_says() -> None:
    line = cef_message(
        _item(action="doc.sign", outcome={"result": "failure", "reason": "a=b\\c\nd|e"}), "1.0"
    )
    parts = re.split(r"(?<!\\)\|", line, maxsplit=7)  # the header's pipes, not escaped ones
    assert parts[:7] == ["CEF:0", "trailseal", "trailseal", "1.0", "doc.sign", "doc.sign", "6"]
    extensions = parts[7]
    assert "reason=a\\=b\\\\c\\nd|e" in extensions  # = and \ escaped, a newline as \n
    assert "cs1Label=trailseal.index cs1=42" in extensions
    assert "cs2=" + "ab" * 32 in extensions
    assert "cs3=test.example/log" in extensions
    pipe = cef_message(_item(action="a|b"), "1|0")
    assert pipe.startswith("CEF:0|trailseal|trailseal|1\\|0|a\\|b|a\\|b|")


def test_syslog_structured_data_is_escaped() -> None:
    item = _item()
    item = Exported('odd"]\\origin', 3, "cd" * 32, item.received_at, None, item.event)
    message = syslog_message(item, host="h")
    assert message.startswith(b"<110>1 2026-11-30T10:00:00.250000Z h trailseal - record.read ")
    assert (
        b'[trailseal@32473 index="3" leaf_hash="' + b"cd" * 32 + b'" origin="odd\\"\\]\\\\origin"]'
        in message
    )
    body = message.split(b"\xef\xbb\xbf", 1)[1]
    assert orjson.loads(body)["trailseal"]["index"] == 3


@pytest.mark.parametrize(
    ("action", "class_uid"),
    [
        ("auth.login", AUTHENTICATION),
        ("auth.failure", AUTHENTICATION),
        ("principal.create", ACCOUNT_CHANGE),
        ("user.role.grant", ACCOUNT_CHANGE),
        ("config.change", ENTITY_MANAGEMENT),
        ("document.transition", ENTITY_MANAGEMENT),
        ("record.delete", ENTITY_MANAGEMENT),
        ("aws.iam.CreateUser", API_ACTIVITY),
        ("report.produce", API_ACTIVITY),
    ],
)
def test_ocsf_class_by_action(action: str, class_uid: int) -> None:
    assert ocsf_class(action) == class_uid
    found = ocsf_event(_item(action=action))
    assert found["class_uid"] == class_uid
    assert found["type_uid"] == class_uid * 100 + found["activity_id"]
    assert found["category_uid"] == class_uid // 1000
    assert found["metadata"]["product"] == {"name": "trailseal", "vendor_name": "trailseal"}
    assert found["unmapped"]["trailseal"]["leaf_hash"] == "ab" * 32
    assert found["time"] == 1796032800250


# -- a log and its destinations -----------------------------------------------------------


@pytest.fixture
def log(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with Ledger.init(data, origin="export.example/log") as ledger:
        append_sample(ledger, 1200)
    return data


def _configure(data: Path, **destinations: dict[str, Any]) -> None:
    (data / "exports.yaml").write_text(json.dumps({"destinations": destinations}))


def _leaves(data: Path) -> dict[int, str]:
    """Each entry's leaf hash, as the log's own export gives them."""
    import hashlib  # noqa: PLC0415

    out = run_cli("export", data=data, check=True).stdout
    found = {}
    for line in out.splitlines():
        parsed = orjson.loads(line)
        entry = orjson.dumps(parsed["entry"], option=orjson.OPT_SORT_KEYS)
        found[parsed["entry"]["index"]] = hashlib.sha256(b"\x00" + entry).hexdigest()
    return found


@pytest.fixture
def hec(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    server, state = serve("hec", 0, tmp_path / "hec.jsonl")
    (tmp_path / "hec.token").write_text(TOKEN)
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def test_hec_receives_every_entry_once_in_order(
    log: Path, hec: tuple[str, Any], tmp_path: Path
) -> None:
    url, state = hec
    _configure(
        log,
        splunk={
            "type": "hec",
            "url": url,
            "token_file": str(tmp_path / "hec.token"),
            "index": "audit",
            "batch": 200,
        },
    )
    run_cli("export-to", "splunk", "--once", data=log, check=True)
    held = state.held()
    indexes = [e["event"]["trailseal"]["index"] for e in held]
    assert indexes == sorted(indexes) == list(range(len(indexes)))
    assert len(held) >= 1200  # the sample, and the log's own record of the export
    leaves = _leaves(log)
    for event in held[:1200]:
        proof = event["fields"]
        assert proof["trailseal.leaf_hash"] == leaves[int(proof["trailseal.index"])]
        assert proof["trailseal.origin"] == "export.example/log"
        assert event["index"] == "audit"
        assert event["sourcetype"] == "trailseal:audit"
        assert "detail" not in event["event"]  # details stay home unless asked for
    posts = [r for r in state.requests if r["path"] == "/services/collector/event"]
    assert all(r["headers"]["Authorization"] == f"Splunk {TOKEN}" for r in posts)
    assert len({r["headers"]["X-Splunk-Request-Channel"] for r in posts}) == 1
    assert any(r["path"] == "/services/collector/ack" for r in state.requests)
    status = json.loads(run_cli("export-to", "status", "--json", data=log, check=True).stdout)
    assert status[0]["lag"] <= 1
    assert status[0]["dead"] == 0
    assert status[0]["last_error"] is None


def _exporter(data: Path, name: str) -> tuple[App, Any]:
    app = App.open(data)
    return app, app.exports.exporter(Caller.host(), name)


def test_hec_faults_lose_nothing(log: Path, hec: tuple[str, Any], tmp_path: Path) -> None:
    """503 and 429 are waited out; an event HEC refuses is a dead letter with the reason;
    a receiver that accepts and never acknowledges gets the batch again, and only the
    acknowledged copy counts."""
    url, state = hec
    _configure(
        log,
        splunk={
            "type": "hec",
            "url": url,
            "token_file": str(tmp_path / "hec.token"),
            "batch": 300,
            "ack_timeout": 1,
        },
    )
    with App.open(log) as app:
        bad = app.ledger.get(500).entry["event"]["action"]
    state.fail = [503, 429]
    state.bad_action = bad
    state.never_ack = True
    app, exporter = _exporter(log, "splunk")
    try:
        worker = threading.Thread(target=exporter.run, kwargs={"once": True})
        worker.start()
        time.sleep(2.5)
        assert "not acknowledged" in (exporter.state.last_error or "")
        assert exporter.state.cursor == -1  # nothing counted as delivered
        state.never_ack = False
        worker.join(timeout=60)
        assert not worker.is_alive()
    finally:
        exporter.destination.close()
        app.close()
    held = [e["event"]["trailseal"]["index"] for e in state.held()]
    dead = [
        json.loads(line)
        for line in (log / "exports" / "splunk.dead.jsonl").read_text().splitlines()
    ]
    refused = {d["index"] for d in dead}
    assert refused
    assert all(d["reason"].startswith("HEC 6: Invalid data format") for d in dead)
    assert sorted(held + sorted(refused)) == list(range(exporter.state.cursor + 1))
    assert len(held) == len(set(held))  # the unacknowledged copies were never indexed

    state.bad_action = None  # the cause fixed: the dead letters go
    delivered = json.loads(run_cli("export-to", "replay", "splunk", data=log, check=True).stdout)
    assert delivered == {"delivered": len(refused), "dead": 0}
    assert refused <= {e["event"]["trailseal"]["index"] for e in state.held()}


@pytest.fixture
def bulk(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    server, state = serve("bulk", 0, tmp_path / "bulk.jsonl")
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def test_bulk_retries_only_failed_items_and_ids_prevent_copies(
    log: Path, bulk: tuple[str, Any]
) -> None:
    url, state = bulk
    _configure(log, elastic={"type": "elastic", "url": url, "index": "audit", "batch": 400})
    with App.open(log) as app:
        bad = app.ledger.get(10).entry["event"]["action"]
    state.bad_action = bad
    state.fail_items = 50
    run_cli("export-to", "elastic", "--once", data=log, check=True)
    held = state.held()
    ids = [doc["_id"] for doc in held]
    assert len(ids) == len(set(ids))
    dead = run_cli("export-to", "dead", "elastic", data=log, check=True)
    reasons = {d["index"]: d["reason"] for d in json.loads(dead.stdout)}
    assert all(r.startswith("bulk 400: failed to parse field") for r in reasons.values())
    got = {int(i.rsplit(":", 1)[1]) for i in ids}
    assert got | set(reasons) == set(range(max(got | set(reasons)) + 1))
    retried = [r for r in state.requests if r["path"] == "/_bulk"][1]
    assert retried["body"].count(b'"create"') == 50  # only the items answered 429
    doc = next(d for d in held if d["_id"] == "export.example/log:0")["_source"]
    assert doc["trailseal"]["index"] == 0
    assert doc["event"]["action"]
    assert doc["@timestamp"]
    # Everything again from the start: every id is already there (409), nothing doubles.
    (log / "exports" / "elastic.json").unlink()
    run_cli("export-to", "elastic", "--once", data=log, check=True)
    again = [doc["_id"] for doc in state.held()]
    assert len(again) == len(set(again))
    assert len(again) == len(held) + 1  # only the log's record of this second export


def test_a_query_selects_what_goes_and_details_stay_home(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "ocsf.jsonl"
    _configure(
        log, lake={"type": "file", "path": str(out), "format": "ocsf", "query": "action:auth.*"}
    )
    run_cli("export-to", "lake", "--once", data=log, check=True)
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    assert sent
    assert all(s["unmapped"]["trailseal"]["event"]["action"].startswith("auth.") for s in sent)
    assert all(s["class_uid"] == AUTHENTICATION for s in sent)
    assert all("detail" not in s["unmapped"]["trailseal"] for s in sent)
    with App.open(log) as app:
        expected = [v.index for v in app.ledger.find(_query("action:auth.*"))]
    assert [s["unmapped"]["trailseal"]["index"] for s in sent] == expected


def _query(text: str) -> Any:
    from trailseal.app import search_filter  # noqa: PLC0415

    return search_filter(q=text, limit=1_000_000)


def test_a_tenants_exporter_sends_only_that_tenants_entries(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "acme.jsonl"
    _configure(log, mine={"type": "file", "path": str(out), "format": "ecs"})
    with App.open(log) as app:
        auditor, _ = app.principals.create(Caller.host(), "acme-auditor", "auditor", tenant="acme")
        exporter = app.exports.exporter(Caller(auditor, None, "test"), "mine")
        exporter.run(once=True)
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    assert sent
    assert {s["organization"]["id"] for s in sent} == {"acme"}


def test_bad_configuration_is_named(tmp_path: Path) -> None:
    path = tmp_path / "exports.yaml"
    cases = {
        "destinations: {a: {type: kafka}}": "type is one of hec, elastic, syslog, file",
        "destinations: {a: {type: hec, url: x}}": "token_file required",
        "destinations: {a: {type: elastic, url: x, index: i, colour: red}}": "unknown colour",
        "destinations: {a: {type: syslog, host: h, port: 0}}": "port is a positive whole",
        "destinations: {a: {type: file, path: p, query: 'actor:('}}": "query:",
        "destinations: {a: {type: syslog, host: h, port: 1, format: ocsf}}": "is one of json, cef",
        "somewhere: else": "the only key is destinations",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            load_destinations(path)


def test_an_unknown_destination_is_refused_by_name(log: Path) -> None:
    with App.open(log) as app, pytest.raises(NotFoundError, match="no destination named 'nope'"):
        app.exports.exporter(Caller.host(), "nope")
    result = run_cli("export-to", "nope", "--once", data=log)
    assert result.returncode == 1
    assert b"no destination named 'nope'" in result.stderr


def test_falling_behind_is_recorded_and_alerted(log: Path, tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the destination is down
    _configure(
        log,
        siem={
            "type": "syslog",
            "host": "127.0.0.1",
            "port": port,
            "protocol": "tcp",
            "max_lag": 100,
        },
    )
    app, exporter = _exporter(log, "siem")
    try:
        worker = threading.Thread(target=exporter.run)
        worker.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not exporter.state.lagging:
            time.sleep(0.1)
        said_while_down = exporter.state.lagging  # not only once the exporter stops
        exporter.stop.set()
        worker.join(timeout=30)
    finally:
        app.close()
    assert said_while_down
    assert exporter.state.cursor == -1
    assert "Connection refused" in (exporter.state.last_error or "")
    run_cli("watch", "--once", data=log, check=True)
    alerts = json.loads(run_cli("alerts", "list", "--json", data=log, check=True).stdout)
    assert "export_lagging" in {a["rule"] for a in alerts}


# -- rsyslog, over TCP and TLS ------------------------------------------------------------

RSYSLOG = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


def _certificates(root: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 it signed."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress  # noqa: PLC0415

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = root / f"{name}-ca.pem", root / f"{name}-cert.pem", root / f"{name}-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def rsyslog_tls(tmp_path: Path) -> Iterator[tuple[int, int, Path, Path]]:
    need(Path(RSYSLOG).exists(), "rsyslogd (the syslog receiver)", "apt-get install rsyslog")
    need(
        any(Path("/usr/lib").glob("*/rsyslog/lmnsd_ossl.so")),
        "rsyslog's TLS driver",
        "apt-get install rsyslog-openssl",
    )
    ca, cert, key = _certificates(tmp_path, "server")
    tcp, tls = free_port(), free_port()
    out = tmp_path / "received.log"
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "rsyslog.conf"
    config.write_text(
        f'global(workDirectory="{work}" DefaultNetstreamDriverCAFile="{ca}" '
        f'DefaultNetstreamDriverCertFile="{cert}" DefaultNetstreamDriverKeyFile="{key}")\n'
        'module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" '
        'StreamDriver.AuthMode="anon")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{tls}")\n'
        'module(load="imptcp")\n'
        f'input(type="imptcp" address="127.0.0.1" port="{tcp}")\n'
        'template(name="parts" type="string" '
        'string="%msgid%|%structured-data%|%msg%\\n")\n'
        f'*.* action(type="omfile" file="{out}" template="parts")\n'
    )
    process = subprocess.Popen(
        [RSYSLOG, "-n", "-f", str(config), "-i", str(tmp_path / "rsyslog.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    if process.poll() is not None:
        pytest.fail(
            f"rsyslogd did not start: {process.stderr.read().decode() if process.stderr else ''}"
        )
    yield tcp, tls, out, ca
    process.terminate()
    process.wait(timeout=10)


def _received(path: Path, count: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(lines := path.read_text().splitlines()) >= count:
            return lines
        time.sleep(0.2)
    raise AssertionError(
        f"rsyslog wrote {len(path.read_text().splitlines()) if path.exists() else 0} lines"
    )


def test_rsyslog_receives_every_entry_over_tls(
    log: Path, rsyslog_tls: tuple[int, int, Path, Path], tmp_path: Path
) -> None:
    _tcp, tls, out, ca = rsyslog_tls
    other_ca, _, _ = _certificates(tmp_path, "other")
    _configure(
        log,
        siem={
            "type": "syslog",
            "host": "127.0.0.1",
            "port": tls,
            "protocol": "tls",
            "ca_file": str(other_ca),
        },
    )
    # A certificate that does not verify: nothing sent, nothing counted, the reason shown.
    app, exporter = _exporter(log, "siem")
    worker = threading.Thread(target=exporter.run, kwargs={"once": True})
    worker.start()
    time.sleep(2)
    exporter.stop.set()
    worker.join(timeout=30)
    app.close()
    assert exporter.state.cursor == -1
    assert "CERTIFICATE_VERIFY_FAILED" in (exporter.state.last_error or "")
    assert not out.exists() or not out.read_text()

    _configure(
        log,
        siem={
            "type": "syslog",
            "host": "127.0.0.1",
            "port": tls,
            "protocol": "tls",
            "ca_file": str(ca),
        },
    )
    run_cli("export-to", "siem", "--once", data=log, check=True)
    lines = _received(out, 1200)
    leaves = _leaves(log)
    seen = set()
    for line in lines[:1200]:
        msgid, structured, message = line.split("|", 2)
        body = json.loads(message.lstrip("\ufeff"))
        index = body["trailseal"]["index"]
        assert f'index="{index}"' in structured
        assert f'leaf_hash="{leaves[index]}"' in structured
        assert msgid == body["event"]["action"][:32]
        seen.add(index)
    assert seen == set(range(1200))


def test_cef_over_tcp_to_rsyslog(log: Path, rsyslog_tls: tuple[int, int, Path, Path]) -> None:
    tcp, _tls, out, _ca = rsyslog_tls
    _configure(
        log,
        arcsight={
            "type": "syslog",
            "host": "127.0.0.1",
            "port": tcp,
            "protocol": "tcp",
            "format": "cef",
            "query": "action:auth.*",
        },
    )
    run_cli("export-to", "arcsight", "--once", data=log, check=True)
    with App.open(log) as app:
        expected = len(list(app.ledger.find(_query("action:auth.*"))))
    lines = _received(out, expected)
    assert all(line.split("|", 2)[2].startswith("CEF:0|trailseal|trailseal|") for line in lines)
    assert all(" cs1Label=trailseal.index cs1=" in line for line in lines)


# -- a receiver killed in the middle of a stream -------------------------------------------

STREAM = 100_000


def _receiver(kind: str, port: int, path: Path, kill_after: int | None) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(RECEIVERS), kind, str(port), str(path)]
    if kill_after is not None:
        args.append(str(kill_after))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    return process


@pytest.mark.parametrize("kind", ["hec", "bulk"])
def test_a_receiver_killed_mid_stream_ends_with_every_entry_once(kind: str, tmp_path: Path) -> None:
    """100,000 entries; the receiver SIGKILLs itself in the middle (HEC: a batch
    accepted and not yet indexed; bulk: halfway through writing a batch) and is started
    again on the same port; every entry ends up there exactly once."""
    data = tmp_path / "data"
    with Ledger.init(data, origin="stream.example/log") as ledger:
        append_sample(ledger, STREAM, batch=10_000)
    port = free_port()
    held = tmp_path / "held.jsonl"
    (tmp_path / "hec.token").write_text(TOKEN)
    settings = (
        {
            "type": "hec",
            "url": f"http://127.0.0.1:{port}",
            "token_file": str(tmp_path / "hec.token"),
            "batch": 1000,
        }
        if kind == "hec"
        else {"type": "elastic", "url": f"http://127.0.0.1:{port}", "index": "audit", "batch": 1000}
    )
    _configure(data, dest=settings)
    receiver = _receiver(kind, port, held, kill_after=40)
    exporter = subprocess.Popen(
        [sys.executable, "-m", "trailseal", "export-to", "dest", "--data", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert receiver.wait(timeout=240) == -9  # it killed itself mid-stream
        receiver = _receiver(kind, port, held, kill_after=None)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if held.exists() and held.read_bytes().count(b"\n") >= STREAM:
                break
            time.sleep(0.5)
        time.sleep(2)  # anything more that would arrive (a second copy) arrives now
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)
        receiver.kill()
    docs = [json.loads(line) for line in held.read_text().splitlines()]
    if kind == "hec":
        indexes = [d["event"]["trailseal"]["index"] for d in docs]
    else:
        indexes = [int(d["_id"].rsplit(":", 1)[1]) for d in docs]
    assert len(indexes) == len(set(indexes))  # exactly once
    assert set(range(STREAM)) <= set(indexes)


def test_serve_follows_the_log_to_a_destination(tmp_path: Path) -> None:
    """`serve --export NAME`: entries appended over the API reach the destination while
    the service runs, each once."""
    data = tmp_path / "data"
    out = tmp_path / "ecs.jsonl"
    service = _serving(data, {"lake": {"type": "file", "path": str(out), "format": "ecs"}})
    try:
        _append_and_wait(service, out)
        indexes = [json.loads(line)["trailseal"]["index"] for line in out.read_text().splitlines()]
        assert len(indexes) == len(set(indexes))
        assert sum('"sample-' in line for line in out.read_text().splitlines()) == 50
        assert "exporting to lake from entry" in service.stderr()
        metrics = service.client().get("/metrics").text
        assert 'trailseal_export_lag_entries{destination="lake"}' in metrics
        assert 'trailseal_export_dead_letters{destination="lake"} 0.0' in metrics
    finally:
        service.stop()


def _serving(data: Path, destinations: dict[str, dict[str, Any]]) -> Any:
    """A new log, its destinations, and a `serve` exporting to every one of them."""
    from trailseal.testing import ServiceProcess  # noqa: PLC0415

    run_cli("init", data=data, check=True)
    created = run_cli("principals", "create", "root", "--role", "admin", data=data, check=True)
    _configure(data, **destinations)
    exports = [arg for name in destinations for arg in ("--export", name)]
    service = ServiceProcess(data, json.loads(created.stdout)["token"], tuple(exports))
    service.start()
    return service


def _append_and_wait(service: Any, out: Path) -> None:
    """Append 50 sample events through the API, and wait (30 s at most) until the file
    destination ``out`` holds them."""
    with service.client(service.admin) as admin:
        writer = admin.post("/v1/principals", json={"name": "app", "role": "writer"}).json()
    with service.client(writer["token"]) as client:
        assert client.post("/v1/events", json=_sample(50)).status_code == 201
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sent = out.read_text().splitlines() if out.exists() else []
        if sum('"sample-' in line for line in sent) >= 50:
            return
        time.sleep(0.2)


def _sample(count: int) -> list[dict[str, Any]]:
    from trailseal.testing import sample_events  # noqa: PLC0415

    return [dict(event, id=f"sample-{n}") for n, event in enumerate(sample_events(count))]


# -- OCSF, validated against the schema ----------------------------------------------------
# ocsf-json-schema packages the OCSF schema releases and builds a JSON Schema for each
# class; jsonschema validates against it.

_SCHEMAS: dict[int, Any] = {}


def _ocsf_validator(class_uid: int) -> Any:
    from jsonschema import Draft202012Validator  # noqa: PLC0415
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema  # noqa: PLC0415

    from trailseal.export.formats import OCSF_VERSION  # noqa: PLC0415

    if class_uid not in _SCHEMAS:
        schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=OCSF_VERSION))
        name = schema.lookup_class_name_from_uid(class_uid=class_uid)
        _SCHEMAS[class_uid] = Draft202012Validator(
            schema.get_class_schema(class_name=name, profiles=[])
        )
    return _SCHEMAS[class_uid]


_ACTIONS = [
    "auth.login",
    "auth.logout",
    "auth.failure",
    "principal.create",
    "principal.revoke",
    "user.role.grant",
    "config.change",
    "document.transition",
    "document.sign",
    "record.read",
    "record.delete",
    "aws.iam.CreateUser",
    "report.produce",
    "export.bulk",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(_ACTIONS),
    st.sampled_from(["success", "failure", "denied", None]),
    st.booleans(),
)
def test_ocsf_events_validate_against_the_schema(
    seed: int, action: str, result: str | None, details: bool
) -> None:
    from trailseal.testing import sample_events  # noqa: PLC0415

    event = next(iter(sample_events(1, seed=seed)))
    event["action"] = action
    if result is None:
        event.pop("outcome", None)
    else:
        event["outcome"] = {"result": result, "reason": "because"}
    if seed % 3 == 0:
        event.pop("source", None)  # an event with no source at all
    item = Exported(
        "test.example/log",
        seed,
        "ef" * 32,
        "2026-11-30T10:00:01Z",
        "w",
        event,
        {"before": 1} if details else None,
    )
    found = ocsf_event(item)
    errors = [e.message for e in _ocsf_validator(found["class_uid"]).iter_errors(found)]
    assert errors == []


def _cef_extensions(text: str) -> dict[str, str]:
    """CEF's extension pairs read back: a key is letters and digits before an unescaped
    '=', and a value runs to the space before the next key."""
    found = {}
    for part in re.split(r" (?=\w+=)", text):
        key, _, value = part.partition("=")
        found[key] = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), value)
    return found


_hostile = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda t: t.strip())


@settings(max_examples=300, deadline=None)
@given(_hostile, _hostile, _hostile)
def test_cef_and_syslog_carry_any_text_back_intact(reason: str, origin: str, resource: str) -> None:
    """Whatever a reason, an origin or a resource holds (pipes, equals signs,
    backslashes, quotes, brackets, newlines), a CEF or syslog reader gets it back."""
    item = _item(
        outcome={"result": "failure", "reason": reason}, resource={"id": resource, "type": "t"}
    )
    item = Exported(origin, 9, item.leaf_hash, item.received_at, None, item.event)
    line = cef_message(item, "1.0")
    assert "\n" not in line
    assert "\r" not in line
    parts = re.split(r"(?<!\\)\|", line, maxsplit=7)
    assert len(parts) == 8
    extensions = _cef_extensions(parts[7])
    assert extensions["reason"] == reason
    assert extensions["cs3"] == origin
    assert extensions["cs4"] == f"t/{resource}"
    message = syslog_message(item, host="h").decode()
    quoted = re.search(r' origin="((?:[^"\\]|\\.)*)"\]', message)
    assert quoted is not None
    assert re.sub(r"\\(.)", r"\1", quoted[1]) == origin


def test_purged_and_cold_entries(tmp_path: Path) -> None:
    """After retention, cold entries go like hot ones, purged ones (nothing left to send)
    are passed over, and a batch of nothing but purged entries still moves the cursor."""
    from test_retention_run import AT, _run, _tiers, build  # noqa: PLC0415

    data = tmp_path / "data"
    build(data)
    with App.open(data) as app:
        _run(app, AT)
    purged, cold, _hot = _tiers(data)
    assert purged
    assert cold
    out = tmp_path / "ecs.jsonl"
    _configure(data, lake={"type": "file", "path": str(out), "format": "ecs", "batch": 20})
    run_cli("export-to", "lake", "--once", data=data, check=True)
    sent = [json.loads(line)["trailseal"]["index"] for line in out.read_text().splitlines()]
    with App.open(data) as app:
        size = app.ledger.size()
    assert sent == [i for i in range(size) if i not in purged][: len(sent)]
    assert set(sent) >= set(range(size - 1)) - purged  # all but perhaps the export's own record
    assert cold <= set(sent)


def test_a_destination_that_is_down_blocks_no_other(tmp_path: Path) -> None:
    """Two destinations in one `serve`: one down (nothing listens), one a file. The file
    gets every entry while the other waits, and appends go on."""
    data = tmp_path / "data"
    out = tmp_path / "ecs.jsonl"
    down = {"type": "syslog", "host": "127.0.0.1", "port": free_port(), "protocol": "tcp"}
    lake = {"type": "file", "path": str(out), "format": "ecs"}
    service = _serving(data, {"down": down, "lake": lake})
    try:
        _append_and_wait(service, out)
        assert sum('"sample-' in line for line in out.read_text().splitlines()) == 50
        status = {
            row["destination"]: row
            for row in json.loads(run_cli("export-to", "status", "--json", data=data).stdout)
        }
        assert status["down"]["cursor"] == -1
        assert "Connection refused" in (status["down"]["last_error"] or "")
        assert status["lake"]["lag"] <= 2
    finally:
        service.stop()


def test_hec_over_https_refuses_a_certificate_that_does_not_verify(
    log: Path, tmp_path: Path
) -> None:
    """A receiver whose certificate no trusted CA signed: nothing is sent, nothing counted,
    and the reason is shown; trusted (verify: its CA), every entry goes."""
    ca, cert, key = _certificates(tmp_path, "hec")
    server, state = serve("hec", 0, tmp_path / "hec.jsonl", tls=(cert, key))
    (tmp_path / "hec.token").write_text(TOKEN)
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        _configure(
            log, splunk={"type": "hec", "url": url, "token_file": str(tmp_path / "hec.token")}
        )
        app, exporter = _exporter(log, "splunk")
        worker = threading.Thread(target=exporter.run, kwargs={"once": True})
        worker.start()
        time.sleep(1.5)
        exporter.stop.set()
        worker.join(timeout=30)
        exporter.destination.close()
        app.close()
        assert exporter.state.cursor == -1
        assert "the TLS certificate does not verify" in (exporter.state.last_error or "")
        assert state.held() == []
        _configure(
            log,
            splunk={
                "type": "hec",
                "url": url,
                "token_file": str(tmp_path / "hec.token"),
                "verify": str(ca),
            },
        )
        run_cli("export-to", "splunk", "--once", data=log, check=True)
        assert len(state.held()) >= 1200
    finally:
        server.shutdown()


def test_a_ca_file_that_is_missing_or_not_a_certificate_is_named(log: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    for ca, message in ((tmp_path / "nowhere.pem", b"is not a file"), (junk, b"cannot set up TLS")):
        _configure(
            log,
            siem={
                "type": "syslog",
                "host": "127.0.0.1",
                "port": 6514,
                "protocol": "tls",
                "ca_file": str(ca),
            },
        )
        result = run_cli("export-to", "siem", "--once", data=log)
        assert result.returncode == 1
        assert b"destination siem: " in result.stderr
        assert message in result.stderr
        assert b"Traceback" not in result.stderr
