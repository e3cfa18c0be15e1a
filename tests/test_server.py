"""The HTTP service as a real process on loopback: roles, tenants, hostile input, self-audit."""

from __future__ import annotations

import base64
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import Server, event_lines, needs_mount, run_cli
from trailseal.access import entry_tenant
from trailseal.ledger import Ledger
from trailseal.testing import ServiceProcess


def _events(count: int, seed: int, tenant: str | None = None) -> list[dict]:
    events = [orjson.loads(line) for line in event_lines(count, seed=seed)]
    if tenant is not None:
        for event in events:
            event["resource"]["tenant"] = tenant
            event["actor"]["tenant"] = tenant
    return events


def _actions(data: Path) -> list[str]:
    with Ledger.open(data) as ledger:
        return [view.entry["event"]["action"] for view in map(ledger.get, range(ledger.size()))]


ROLES = ("writer", "auditor", "privacy", "security", "admin")


def test_every_role_against_every_endpoint(server: Server) -> None:
    tokens = {role: server.principal(f"p-{role}", role) for role in ROLES}
    with server.client(tokens["writer"]) as writer:
        assert writer.post("/v1/events", json=_events(5, seed=1)).status_code == 201
    erasable = (
        next(i for i, e in enumerate(_events(5, seed=1)) if "detail" in e)
        if any("detail" in e for e in _events(5, seed=1))
        else 0
    )
    calls = [
        ("POST", "/v1/events", {"json": _events(1, seed=2)}, {"writer"}),
        ("GET", "/v1/entries/1", {}, {"auditor", "security"}),
        ("GET", "/v1/entries?limit=2", {}, {"auditor", "security"}),
        ("GET", "/v1/checkpoint", {}, set(ROLES)),
        ("GET", "/v1/proofs/inclusion?index=1", {}, {"auditor"}),
        ("GET", "/v1/proofs/consistency?old=1&new=3", {}, {"auditor"}),
        ("GET", "/v1/export", {}, {"auditor"}),
        ("POST", "/v1/verify", {}, {"auditor"}),
        ("POST", f"/v1/entries/{erasable}/erase-detail", {"json": {"reason": "test"}}, {"privacy"}),
        ("GET", "/v1/principals", {}, {"admin"}),
        ("POST", "/v1/principals", {"json": {"name": "x", "role": "writer"}}, {"admin"}),
        ("POST", "/v1/reports/procedures", {"json": {}}, {"auditor", "security"}),
        ("POST", "/v1/reports/actor-timeline", {"json": {"actor": "u-1"}}, {"auditor", "security"}),
    ]
    for method, path, kwargs, allowed in calls:
        for role in ROLES:
            with server.client(tokens[role]) as client:
                answer = client.request(method, path, **kwargs)
            if role in allowed:
                assert answer.status_code not in (401, 403), (method, path, role, answer.text)
            else:
                assert answer.status_code == 403, (method, path, role, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert f"role {role} may not" in answer.json()["detail"]
    with server.client(tokens["auditor"]) as auditor:
        assert auditor.post("/v1/verify").json()["ok"] is True


def test_authentication_failures(server: Server) -> None:
    token = server.principal("w", "writer")
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer " + token[:-1]},
        {"Authorization": "Bearer " + token + "x"},
    ):
        answer = httpx.post(f"{server.url}/v1/events", json=_events(1, seed=3), headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "Traceback" not in answer.text
    with server.client(server.admin) as admin:
        principal_id = next(
            p["id"] for p in admin.get("/v1/principals").json()["principals"] if p["name"] == "w"
        )
        rotated = admin.post(f"/v1/principals/{principal_id}/rotate").json()["token"]
        with server.client(token) as old:
            assert old.post("/v1/events", json=_events(1, seed=3)).status_code == 401
        with server.client(rotated) as new:
            assert new.post("/v1/events", json=_events(1, seed=3)).status_code == 201
        assert admin.delete(f"/v1/principals/{principal_id}").status_code == 200
        with server.client(rotated) as revoked:
            assert revoked.post("/v1/events", json=_events(1, seed=4)).status_code == 401


def test_append_batches_idempotent_and_all_or_nothing(server: Server) -> None:
    writer = server.client(server.principal("w", "writer"))
    events = _events(20, seed=5)
    first = writer.post("/v1/events", json=events)
    assert first.status_code == 201
    indexes = [e["index"] for e in first.json()["entries"]]
    assert indexes == list(range(indexes[0], indexes[0] + 20))
    again = writer.post("/v1/events", json=events)
    assert again.json()["appended"] == 0
    assert [e["index"] for e in again.json()["entries"]] == indexes
    bad = [*_events(2, seed=6), {"id": "x"}, {**_events(1, seed=7)[0], "time": "yesterday"}]
    refused = writer.post("/v1/events", json=bad)
    assert refused.status_code == 422
    pointers = [error["pointer"] for error in refused.json()["errors"]]
    assert "/2/time" in pointers
    assert "/3/time" in pointers
    partial = writer.post("/v1/events?partial=true", json=bad)
    assert partial.status_code == 201
    assert [e["position"] for e in partial.json()["entries"]] == [0, 1]
    lines = b"\n".join(orjson.dumps(e) for e in _events(3, seed=8))
    ndjson = writer.post(
        "/v1/events", content=lines, headers={"content-type": "application/x-ndjson"}
    )
    assert ndjson.status_code == 201
    assert ndjson.json()["appended"] == 3


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"{not json", {}, 400, "not JSON"),
        (b'{"id": "\xff"}', {}, 422, "1 of 1 events are invalid"),  # not valid UTF-8
        (b"[" * 5000 + b"]" * 5000, {}, 400, "not JSON"),
        (b"[]", {}, 400, "no events"),
        (b"x" * 2_000_000, {}, 413, "exceeds the limit of 1048576 bytes"),
        (b"[" + b",".join([b"{}"] * 501) + b"]", {}, 413, "the limit is 500"),
        (b"{oops}\n", {"content-type": "application/x-ndjson"}, 422, "1 of 1 events are invalid"),
    ],
)
def test_hostile_bodies(
    server: Server, body: bytes, headers: dict, status: int, words: str
) -> None:
    with server.client(server.principal("w", "writer")) as writer:
        answer = writer.post("/v1/events", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"]
    with server.client(server.principal("a", "auditor")) as auditor:
        assert auditor.post("/v1/verify").json()["ok"] is True


def test_hostile_reads(server: Server) -> None:
    with server.client(server.principal("a", "auditor")) as auditor:
        for path, status in [
            ("/v1/entries/99999", 404),
            ("/v1/entries/-1", 422),
            ("/v1/entries/99999999999999999999999", 422),
            ("/v1/entries/..%2F..%2Fetc%2Fpasswd", 404),
            ("/v1/entries?limit=100000000", 400),
            ("/v1/entries?cursor=garbage", 400),
            ("/v1/entries?since=someday", 400),
            ("/v1/proofs/inclusion?index=5000", 404),
            ("/v1/proofs/consistency?old=9&new=2", 400),
        ]:
            answer = auditor.get(path)
            assert answer.status_code == status, (path, answer.text)
            assert "Traceback" not in answer.text


def test_tenants_never_cross(server: Server) -> None:
    acme_writer = server.client(server.principal("acme-w", "writer", "acme"))
    globex_writer = server.client(server.principal("globex-w", "writer", "globex"))
    assert acme_writer.post("/v1/events", json=_events(5, seed=9, tenant="acme")).status_code == 201
    assert (
        globex_writer.post("/v1/events", json=_events(5, seed=10, tenant="globex")).status_code
        == 201
    )
    crossing = acme_writer.post("/v1/events", json=_events(1, seed=11, tenant="globex"))
    assert crossing.status_code == 422
    assert "tenant 'acme'" in crossing.json()["errors"][0]["detail"]
    acme = server.client(server.principal("acme-a", "auditor", "acme"))
    listed = acme.get("/v1/entries?limit=100").json()["entries"]
    assert len(listed) == 5
    assert {e["entry"]["event"]["resource"]["tenant"] for e in listed} == {"acme"}
    globex_index = (
        server.client(server.principal("root-a", "auditor"))
        .get("/v1/entries?tenant=globex&limit=1")
        .json()["entries"][0]["index"]
    )
    assert acme.get(f"/v1/entries/{globex_index}").status_code == 404
    assert acme.get(f"/v1/proofs/inclusion?index={globex_index}").status_code == 404
    assert acme.get("/v1/entries?tenant=globex").status_code == 403
    exported = [json.loads(line) for line in acme.get("/v1/export").text.splitlines()]
    assert len(exported) >= 5  # its events, and the log's records of its own reads
    assert {entry_tenant(row["entry"]["event"]) for row in exported} == {"acme"}
    page = acme.get("/v1/entries?limit=2").json()
    pinned = page["size"]
    seen = [e["index"] for e in page["entries"]]
    while page["next_cursor"]:
        page = acme.get(f"/v1/entries?limit=2&cursor={page['next_cursor']}").json()
        assert page["size"] == pinned  # the cursor pins the size of the first page
        seen += [e["index"] for e in page["entries"]]
    assert seen == sorted(set(seen))  # stable order, nothing twice
    assert all(index < pinned for index in seen)  # the pages end although reads are logged
    assert {e["index"] for e in listed} <= set(seen)


def test_the_log_audits_itself(server: Server) -> None:
    auditor = server.client(server.principal("a", "auditor"))
    auditor.get("/v1/entries/0")
    auditor.get("/v1/export").read()
    for _ in range(12):
        httpx.get(f"{server.url}/v1/entries/0", headers={"Authorization": "Bearer tsk_wrong"})
    server.stop()
    actions = _actions(server.data)
    assert actions[0] == "principal.create"  # made on the host before the service started
    assert "audit.started" in actions
    assert actions[-1] == "audit.stopped"
    assert "audit.read" in actions
    assert "audit.export" in actions
    assert actions.count("principal.create") == 2
    failures = [a for a in actions if a == "audit.authentication_failed"]
    assert 2 <= len(failures) <= 7  # five individually, the rest counted in one entry
    with Ledger.open(server.data) as ledger:
        ledger.verify()
        summary = [
            view.entry["event"]
            for view in map(ledger.get, range(ledger.size()))
            if view.entry["event"].get("resource", {}).get("type") == "authentication"
        ]
    assert summary
    assert summary[0]["resource"]["count"] == 7


def test_openapi_healthz_and_metrics(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/events" in spec["paths"]
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "trailseal_log_size" in metrics
    assert "trailseal_events_appended_total" in metrics
    assert "trailseal_queue_depth" in metrics
    assert "trailseal_append_seconds_bucket" in metrics


def test_wrong_content_type(server: Server) -> None:
    with server.client(server.principal("w", "writer")) as writer:
        answer = writer.post(
            "/v1/events", content=b"<event/>", headers={"content-type": "text/xml"}
        )
    assert answer.status_code == 415
    assert "application/x-ndjson" in answer.json()["detail"]


def test_rate_limit_per_principal(tmp_path: Path) -> None:
    running = ServiceProcess.boot(tmp_path / "data", "--rate", "2")
    try:
        with running.client(running.admin) as client:
            answers = [client.get("/v1/principals") for _ in range(12)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited, [a.status_code for a in answers]
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].headers["ratelimit-remaining"] == "0"
        assert "2 requests a second" in limited[0].json()["detail"]
    finally:
        running.stop()


def _fill_disk(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@needs_mount
def test_full_store_gets_503_and_reads_go_on(small_disk: Path) -> None:
    running = ServiceProcess.boot(small_disk / "data")
    try:
        writer = running.client(running.principal("w", "writer"))
        auditor = running.client(running.principal("a", "auditor"))
        assert writer.post("/v1/events", json=_events(3, seed=31)).status_code == 201
        filler = _fill_disk(small_disk)
        try:
            refused = writer.post("/v1/events", json=_events(300, seed=32))
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"
            assert refused.headers["content-type"] == "application/problem+json"
            assert auditor.get("/v1/checkpoint").status_code == 200
            # A read must be recorded in the log; when it cannot be, it is refused.
            unrecorded = auditor.get("/v1/entries/3")
            assert unrecorded.status_code == 503
            assert "must be recorded" in unrecorded.json()["detail"]
        finally:
            filler.unlink()
        assert writer.post("/v1/events", json=_events(300, seed=32)).status_code == 201
        assert auditor.post("/v1/verify").json()["ok"] is True
    finally:
        running.stop()


def test_large_batches_prepared_in_worker_processes(tmp_path: Path) -> None:
    """Batches of 1,000 events or more are prepared by worker processes, chunk by chunk:
    the answers must be the same as for small batches."""
    running = ServiceProcess.boot(tmp_path / "data")
    try:
        writer = running.client(running.principal("w", "writer"))
        events = _events(3000, seed=41)
        first = writer.post("/v1/events", json=events)
        assert first.status_code == 201, first.text
        entries = first.json()["entries"]
        assert [e["position"] for e in entries] == list(range(3000))
        indexes = [e["index"] for e in entries]
        assert indexes == list(range(indexes[0], indexes[0] + 3000))
        assert writer.post("/v1/events", json=events).json()["appended"] == 0  # idempotent

        more = _events(2500, seed=42)
        more[2100]["time"] = "not a time"
        more[5]["actor"] = 7
        refused = writer.post("/v1/events", json=more)
        assert refused.status_code == 422
        assert {e["pointer"] for e in refused.json()["errors"]} == {"/5/actor", "/2100/time"}
        partial = writer.post("/v1/events?partial=true", json=more)
        assert partial.status_code == 201
        body = partial.json()
        assert body["appended"] == 2498
        assert {e["pointer"] for e in body["rejected"]} == {"/5/actor", "/2100/time"}
        positions = [e["position"] for e in body["entries"]]
        assert 5 not in positions
        assert 2100 not in positions
        assert len(positions) == 2498
        with running.client(running.principal("a", "auditor")) as auditor:
            assert auditor.post("/v1/verify").json()["ok"] is True
    finally:
        running.stop()


def test_a_100_mb_body_is_refused_before_it_is_read(server: Server) -> None:
    token = server.principal("w", "writer")
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + f"Content-Length: {100 * 1024 * 1024}\r\n\r\n".encode()
            + b"["
            + b" " * 65536
        )
        answer = b""
        while b"exceeds" not in answer:  # the body may come in a later packet than the head
            chunk = raw.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"exceeds the limit of 1048576 bytes" in answer


def test_concurrent_erasures_write_one_record_and_never_500(tmp_path: Path) -> None:
    """Issue 10, point 12: four concurrent erasures of one entry answered 500 (15 of 40)
    and wrote up to four detail.erase entries for one erasure."""
    running = ServiceProcess.boot(tmp_path / "data")
    try:
        writer = running.client(running.principal("w", "writer"))
        events = _events(20, seed=60)
        posted = writer.post("/v1/events", json=events).json()["entries"]
        target = next(e["index"] for e, raw in zip(posted, events, strict=True) if "detail" in raw)
        token = running.principal("dpo", "privacy")

        def erase(_: int) -> int:
            with running.client(token) as http:
                return http.post(
                    f"/v1/entries/{target}/erase-detail", json={"reason": "GDPR 17"}
                ).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(erase, range(40)))
        assert sorted(set(answers)) == [200, 409], answers
        assert answers.count(200) == 1
    finally:
        running.stop()
    with Ledger.open(tmp_path / "data") as ledger:
        records = [
            view.entry["event"]
            for view in map(ledger.get, range(ledger.size()))
            if view.entry["event"]["action"] == "detail.erase"
        ]
        assert len(records) == 1
        assert ledger.verify().erased == [target]


def test_hostile_cursors_and_times_are_400_not_500(server: Server) -> None:
    """Issue 10, point 12: a forged cursor with an out-of-range integer, and a `since` of
    year 1 or 9999 with an offset, answered 500."""
    forged = [2**62, 2**63]  # beyond any log, and beyond SQLite's integers
    cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with server.client(server.principal("a", "auditor")) as auditor:
        for query in (
            f"cursor={cursor}",
            "since=0001-01-01T00:00:00%2B01:00",
            "until=9999-12-31T23:59:59-01:00",
        ):
            answer = auditor.get(f"/v1/entries?{query}")
            assert answer.status_code == 400, (query, answer.text)
            assert "Traceback" not in answer.text


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_worker_processes_die_with_a_killed_server(tmp_path: Path) -> None:
    """Issue 10, point 15: killing the server with SIGKILL left its worker processes
    (which prepare large batches) running."""
    running = ServiceProcess.boot(tmp_path / "data")
    try:
        writer = running.client(running.principal("w", "writer"))
        assert writer.post("/v1/events", json=_events(1500, seed=70)).status_code == 201
        assert running.process is not None
        workers = _children(running.process.pid)
        assert workers, "the large batch was prepared in worker processes"
    finally:
        running.kill()
    deadline = time.monotonic() + 15
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, workers))


def test_one_verification_at_a_time_others_get_429(tmp_path: Path) -> None:
    """Issue 10, point 15: sixteen concurrent /v1/verify calls each re-read the whole log
    and slowed appends a hundredfold. One runs at a time; the others are told to come
    back (429 with Retry-After), and appends go on meanwhile."""
    data = tmp_path / "data"
    service = ServiceProcess.boot(data)
    try:
        events = tmp_path / "events.jsonl"
        events.write_bytes(b"\n".join(event_lines(60_000, seed=11)))
        subprocess_result = run_cli("append", events, data=data)
        assert subprocess_result.returncode == 0, subprocess_result.stderr
        auditor = service.principal("aud", "auditor")
        writer = service.principal("w", "writer")

        def verify(_: int) -> httpx.Response:
            with service.client(auditor) as http:
                return http.post("/v1/verify")

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(verify, range(8)))
            with service.client(writer) as http:  # appends are not refused meanwhile
                line = event_lines(1, seed=12)[0]
                assert http.post("/v1/events", content=line).status_code == 201
        codes = sorted(answer.status_code for answer in answers)
        assert set(codes) <= {200, 429}, [a.text for a in answers]
        assert 200 in codes
        assert 429 in codes
        busy = next(answer for answer in answers if answer.status_code == 429)
        assert busy.headers["Retry-After"]
        assert "already running" in busy.json()["detail"]
        assert all(a.json()["ok"] for a in answers if a.status_code == 200)
    finally:
        service.stop()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "alice\n", "role": "auditor"},
        {"name": "alice", "role": "auditor", "tenant": "acme\n"},
    ],
)
def test_names_ending_in_a_newline_are_refused(server: Server, body: dict) -> None:
    """Issue 10, same kind as point 14: `$` let principal and tenant names end in a
    newline, so "alice\\n" could pass for "alice" in every listing."""
    with server.client(server.admin) as http:
        answer = http.post("/v1/principals", json=body)
    assert answer.status_code == 400, answer.text
    assert "name" in answer.json()["detail"]


def test_verify_since_a_checkpoint_over_http(server: Server) -> None:
    """`POST /v1/verify` takes the checkpoint to start from, as `verify --since` does."""
    writer = server.principal("w", "writer")
    auditor = server.principal("aud", "auditor")
    with server.client(writer) as http:
        lines = b"\n".join(event_lines(50, seed=31))
        ndjson = {"Content-Type": "application/x-ndjson"}
        assert http.post("/v1/events", content=lines, headers=ndjson).status_code == 201
    with server.client(auditor) as http:
        kept = http.get("/v1/checkpoint").text
        with server.client(writer) as more:
            assert more.post("/v1/events", content=event_lines(1, seed=32)[0]).status_code == 201
        report = http.post("/v1/verify", json={"since": kept}).json()
        assert report["ok"] is True
        assert report["since_size"] == int(kept.split("\n")[1])
        assert report["size"] > report["since_size"]
        assert http.post("/v1/verify").json()["since_size"] is None
        forged = http.post("/v1/verify", json={"since": "not a note"}).json()
        assert forged["ok"] is False
        assert "--since checkpoint" in forged["message"]
