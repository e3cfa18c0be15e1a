"""`trailseal import terraform`: the organisation audit trail, polled from where it ended.

Terraform Cloud cannot be reached from here, so a local HTTP server answers in the
documented format (the audit trails API: `since`, `page[number]`, `page[size]`, the
`data` array and `pagination`), with an organisation token; the importer is the real
one, run as a real subprocess and inside a real `serve`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import run_cli
from trailseal.app.imports import load_sources
from trailseal.errors import ConfigError
from trailseal.testing import ServiceProcess

TOKEN = "org-token.atlasv1.secret"


def _event(moment: datetime, kind: str = "workspace", action: str = "update") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "version": "0",
        "type": "Resource",
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "auth": {
            "accessor_id": "user-MaTYYw1zK6uHWhEN",
            "description": "pveverka",
            "type": "Client",
            "impersonator_id": None,
            "organization_id": "org-AGLwnwbEHJbQkpbE",
        },
        "request": {"id": str(uuid.uuid4())},
        "resource": {
            "id": f"ws-{uuid.uuid4().hex[:16]}",
            "type": kind,
            "action": action,
            "meta": None,
        },
    }


class TrailAPI:
    """The audit trails API, as documented, over a list of events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, list[str]]] = []
        self.failures: list[int] = []  # statuses to answer before the next real answer
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                api.requests.append(query)
                if url.path != "/api/v2/organization/audit-trail":
                    return self._answer(404, {"errors": [{"status": "404"}]})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"errors": [{"status": "401"}]})
                if api.failures:
                    status = api.failures.pop(0)
                    return self._answer(status, {"errors": [{"status": str(status)}]}, retry=True)
                since = query.get("since", [None])[0]
                found = [
                    e for e in api.events if since is None or _parse(e["timestamp"]) > _parse(since)
                ]
                found.sort(key=lambda e: e["timestamp"], reverse=True)  # newest first
                size = min(int(query.get("page[size]", ["1000"])[0]), 1000)
                number = int(query.get("page[number]", ["1"])[0])
                pages = max(1, -(-len(found) // size))
                body = {
                    "data": found[(number - 1) * size : number * size],
                    "pagination": {
                        "current_page": number,
                        "prev_page": number - 1 if number > 1 else None,
                        "next_page": number + 1 if number < pages else None,
                        "total_pages": pages,
                        "total_count": len(found),
                    },
                }
                return self._answer(200, body)

            def _answer(self, status: int, body: Any, retry: bool = False) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def api() -> Iterator[TrailAPI]:
    found = TrailAPI()
    yield found
    found.server.shutdown()


def _import(data: Path, api: TrailAPI, token: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli(
        "import",
        "terraform",
        "--org",
        "acme",
        "--token-file",
        token,
        "--url",
        api.url,
        *extra,
        data=data,
    )
    out = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, out, result.stderr.decode()


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def test_pages_then_only_what_came_after(tmp_path: Path, api: TrailAPI, token: Path) -> None:
    now = datetime.now(UTC)
    api.events = [_event(now - timedelta(days=3, seconds=n)) for n in range(2500)]
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)

    code, found, _ = _import(data, api, token)
    assert code == 0
    assert (found["files"], found["records"], found["imported"]) == (3, 2500, 2500)
    assert [q.get("page[number]") for q in api.requests] == [["1"], ["2"], ["3"]]
    assert all("since" not in q for q in api.requests)
    cursor = json.loads((data / "imports" / "terraform-acme.json").read_text())
    newest = max(_parse(e["timestamp"]) for e in api.events)
    assert _parse(cursor["since"]) == newest

    api.requests.clear()
    later = [_event(now - timedelta(hours=1, seconds=n)) for n in range(10)]
    api.events += later
    code, found, _ = _import(data, api, token)
    assert code == 0
    since = api.requests[0]["since"][0]
    assert _parse(since) == newest - timedelta(seconds=1)  # a second back: none missed
    assert found["imported"] == 10
    assert found["duplicates"] >= 1  # the newest of the last run, asked for again

    out = run_cli("export", data=data, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    imported = [x for x in lines if x["entry"]["event"]["action"].startswith("terraform.")]
    assert len(imported) == 2510
    first = next(x for x in imported if x["entry"]["event"]["id"] == f"tfc:{later[0]['id']}")
    event = first["entry"]["event"]
    assert event["action"] == "terraform.workspace.update"
    assert event["actor"] == {"id": "user-MaTYYw1zK6uHWhEN", "name": "pveverka", "type": "user"}
    assert event["resource"] == {"type": "workspace", "id": later[0]["resource"]["id"]}
    assert json.loads(first["detail"]["terraform"]) == later[0]
    assert first["detail"]["terraform"] == json.dumps(later[0], separators=(",", ":"))


def test_a_cursor_past_the_fourteen_days_is_warned(
    tmp_path: Path, api: TrailAPI, token: Path
) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    (data / "imports").mkdir()
    old = datetime.now(UTC) - timedelta(days=20)
    (data / "imports" / "terraform-acme.json").write_text(json.dumps({"since": old.isoformat()}))
    api.events = [_event(datetime.now(UTC) - timedelta(days=1))]
    code, found, stderr = _import(data, api, token)
    assert code == 0
    assert found["imported"] == 1
    assert "behind the API's 14-day window" in found["notes"][0]
    assert "warning: behind the API's 14-day window" in stderr


def test_rate_limits_and_server_errors_are_waited_out(
    tmp_path: Path, api: TrailAPI, token: Path
) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    api.events = [_event(datetime.now(UTC) - timedelta(minutes=n)) for n in range(5)]
    api.failures = [429, 503]
    code, found, _ = _import(data, api, token)
    assert (code, found["imported"]) == (0, 5)


def test_refusals_are_said_plainly_and_lose_nothing(
    tmp_path: Path, api: TrailAPI, token: Path
) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    api.events = [_event(datetime.now(UTC))]
    wrong = tmp_path / "wrong"
    wrong.write_text("user-token")
    code, _, stderr = _import(data, api, wrong)
    assert code == 1
    assert "the token was refused (401)" in stderr
    assert "organization token" in stderr
    code, _, stderr = _import(data, api, token, "--url", api.url + "/nothing-here")
    assert code == 1
    assert "not found (404)" in stderr
    bad = _event(datetime.now(UTC))
    bad["timestamp"] = "yesterday"
    api.events.append(bad)
    code, found, _ = _import(data, api, token)
    assert code == 1
    assert found["imported"] == 1
    assert (
        "timestamp" in found["refusals"][0]["reason"]
        or "eventTime" in found["refusals"][0]["reason"]
    )


def test_imports_yaml_is_checked_by_name(tmp_path: Path) -> None:
    path = tmp_path / "imports.yaml"
    path.write_text("terraform:\n  - org: acme\n    token_file: t\n    every: soon\n")
    with pytest.raises(ConfigError, match=r"terraform\[1\]: every: 'soon' is not an interval"):
        load_sources(path)
    path.write_text("terraform:\n  - org: acme\n")
    with pytest.raises(ConfigError, match="org and token_file are required"):
        load_sources(path)
    path.write_text("terraform:\n  - org: acme\n    token_file: t\n    every: 2m\n")
    assert load_sources(path)[0].every == 120
    assert load_sources(path)[0].token_file == tmp_path / "t"


def test_serve_imports_on_its_interval(tmp_path: Path, api: TrailAPI, token: Path) -> None:
    data = tmp_path / "data"
    api.events = [_event(datetime.now(UTC) - timedelta(minutes=n)) for n in range(3)]
    run_cli("init", data=data, check=True)
    (data / "imports.yaml").write_text(
        f"terraform:\n  - org: acme\n    token_file: {token}\n    url: {api.url}\n    every: 1s\n"
    )
    created = run_cli("principals", "create", "a", "--role", "auditor", data=data, check=True)
    auditor = json.loads(created.stdout)["token"]
    service = ServiceProcess(data, auditor)
    service.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with service.client(auditor) as client:
                got = client.get("/v1/entries", params={"action": "terraform.workspace.update"})
            if got.status_code == 200 and len(got.json()["entries"]) == 3:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"serve did not import: {service.stderr()}")
        api.events.append(_event(datetime.now(UTC)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with service.client(auditor) as client:
                got = client.get("/v1/entries", params={"action": "terraform.workspace.update"})
            if len(got.json()["entries"]) == 4:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"serve did not import again: {service.stderr()}")
        assert "importing Terraform Cloud audit trails on their intervals: acme" in service.stderr()
    finally:
        service.stop()
