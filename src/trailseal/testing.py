"""Helpers for testing code that uses trailseal: realistic sample events, and a real
service process on loopback (:class:`ServiceProcess`).

``sample_events(n)`` yields JSON-ready dicts shaped like what a hospital EHR,
a SaaS admin console, a CI/CD pipeline and a document-control system report:
varied actors, resources and actions, about 600 bytes each, and a before/after
``detail`` on changes. The same seed gives the same events.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

_UNITS = ("cardiology", "oncology", "emergency", "pediatrics", "radiology", "icu")
_ROLES = ("nurse", "physician", "admin", "billing", "auditor", "engineer")
_AGENTS = ("ehr-web/4.2", "ehr-mobile/2.9", "admin-console/1.7", "terraform/1.9", "dms/3.1")
_COUNTRIES = ("US", "US", "US", "CA", "GB", "DE")
_ACTIONS: tuple[tuple[str, str, str, int], ...] = (
    # action, resource type, HTTP method, weight
    ("record.read", "patient", "GET", 60),
    ("record.update", "patient", "PATCH", 10),
    ("record.export", "patient", "POST", 2),
    ("auth.login", "session", "POST", 8),
    ("iam.role.assign", "user", "POST", 2),
    ("iam.apikey.create", "apikey", "POST", 1),
    ("config.change", "config", "PUT", 3),
    ("document.transition", "document", "POST", 2),
    ("document.sign", "document", "POST", 1),
    ("document.download", "document", "GET", 3),
    ("record.delete", "patient", "DELETE", 1),
)
_WEIGHTS = [weight for *_, weight in _ACTIONS]
_STATES = ("draft", "review", "approved", "obsolete")


def _uuid7(rng: random.Random, millis: int) -> str:
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= rng.getrandbits(12) << 64
    value |= 0b10 << 62
    value |= rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def _detail(rng: random.Random, action: str) -> dict[str, Any] | None:
    if action == "record.update":
        before, after = rng.sample(("3B", "4A", "5C", "ICU-2", "ER-1"), 2)
        return {
            "before": {"ward": before, "attending": f"dr-{rng.randint(1, 80)}"},
            "after": {"ward": after, "attending": f"dr-{rng.randint(1, 80)}"},
        }
    if action == "iam.role.assign":
        return {"before": {"roles": ["member"]}, "after": {"roles": ["member", "admin"]}}
    if action == "config.change":
        return {
            "before": {"retention_days": 365, "mfa_required": True},
            "after": {"retention_days": rng.choice((90, 730)), "mfa_required": True},
        }
    if action == "document.transition":
        start = rng.randrange(3)
        return {"before": {"state": _STATES[start]}, "after": {"state": _STATES[start + 1]}}
    return None


def sample_event(rng: random.Random, moment: datetime) -> dict[str, Any]:
    """One realistic event at ``moment``."""
    action, rtype, method, _ = rng.choices(_ACTIONS, weights=_WEIGHTS)[0]
    user = rng.randint(1, 5000)
    unit = _UNITS[user % len(_UNITS)]
    tenant = f"tenant-{user % 17}"
    rid = f"{rtype[0]}-{rng.randint(1, 200_000)}"
    event: dict[str, Any] = {
        "id": _uuid7(rng, int(moment.timestamp() * 1000)),
        "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": {
            "id": f"u-{user}",
            "type": "user",
            "roles": [_ROLES[user % len(_ROLES)]],
            "session_id": f"s-{rng.getrandbits(32):08x}",
            "tenant": tenant,
            "unit": unit,
            "auth_method": "sso+mfa",
        },
        "action": action,
        "resource": {"type": rtype, "id": rid, "tenant": tenant, "unit": rng.choice(_UNITS)},
        "outcome": {"result": "success" if rng.random() < 0.97 else "denied", "status": 200},
        "source": {
            "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "user_agent": rng.choice(_AGENTS),
            "geo": {"country": rng.choice(_COUNTRIES)},
            "host": f"api-{rng.randint(1, 8)}",
            "service": "ehr",
        },
        "request": {
            "method": method,
            "path": f"/api/{rtype}s/{{id}}",
            "request_id": f"r-{rng.getrandbits(40):010x}",
        },
        "context": {"reason": "treatment", "labels": {"env": "prod", "region": "us-east-1"}},
    }
    if rtype == "document":
        event["resource"]["version"] = rng.randint(1, 12)
        event["resource"]["hash"] = f"{rng.getrandbits(256):064x}"
    if action == "record.export":
        event["resource"]["count"] = rng.randint(10, 5000)
    if action.startswith(("iam.", "config.")):
        event["context"]["ticket"] = f"CHG-{rng.randint(1000, 9999)}"
    if event["outcome"]["result"] == "denied":
        event["outcome"].update(status=403, reason="outside care team")
    detail = _detail(rng, action)
    if detail is not None:
        event["detail"] = detail
    return event


def sample_events(
    count: int, seed: int = 7, start: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """``count`` realistic events, a few milliseconds apart, reproducible by ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    moment = start or datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for _ in range(count):
        moment += timedelta(microseconds=rng.randint(500, 8000))
        yield sample_event(rng, moment)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> bytes:
    return subprocess.run(  # noqa: S603 - our own command, arguments from the caller's test
        [sys.executable, "-m", "trailseal", *args], check=True, capture_output=True
    ).stdout


@dataclass
class ServiceProcess:
    """A real `trailseal serve` process on loopback, for tests and benchmarks."""

    data: Path
    admin: str
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _stderr: IO[bytes] = field(default_factory=tempfile.TemporaryFile)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def boot(cls, data: Path, *args: str, origin: str = "service.example/log") -> ServiceProcess:
        """Create a log and its first administrator in ``data``, then start serving it."""
        _cli("init", "--data", str(data), "--origin", origin)
        created = _cli("principals", "create", "root-admin", "--role", "admin", "--data", str(data))
        service = cls(data, orjson.loads(created)["token"], args)
        service.start()
        return service

    def start(self, timeout: float = 30) -> None:
        """Start (or restart, on the same port) and wait until /healthz answers."""
        self.process = subprocess.Popen(  # noqa: S603 - our own command
            [
                sys.executable,
                "-m",
                "trailseal",
                "serve",
                "--data",
                str(self.data),
                "--port",
                str(self.port),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"trailseal serve did not start: {self.stderr()}")

    def stderr(self) -> str:
        """What the process wrote to stderr so far (a file, so a chatty server never
        blocks on a full pipe)."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def signed_in(self, token: str) -> httpx.Client:
        """A client signed in to the dashboard with ``token`` (its session cookie kept),
        through the sign-in form as a browser would."""
        client = httpx.Client(base_url=self.url, timeout=60)
        form = client.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        if csrf is None:
            raise RuntimeError("the sign-in page has no CSRF token")
        answer = client.post("/signin", data={"token": token, "csrf": csrf[1], "next": "/"})
        if answer.status_code != 303:
            raise RuntimeError(f"cannot sign in: {answer.status_code} {answer.text[:200]}")
        return client

    def principal(self, name: str, role: str, tenant: str = "*") -> str:
        """Create a principal through the API; returns its token."""
        with self.client(self.admin) as admin:
            answer = admin.post(
                "/v1/principals", json={"name": name, "role": role, "tenant": tenant}
            )
        if answer.status_code != 201:
            raise RuntimeError(f"cannot create principal {name}: {answer.text}")
        return str(answer.json()["token"])

    def kill(self) -> None:
        """SIGKILL: no shutdown, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM: a clean shutdown (the log records audit.stopped)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


def drop_postgres_log(url: str) -> None:
    """Remove a log `trailseal init` made in PostgreSQL (its schema and its two roles),
    for tests and benchmarks that make throwaway logs; the log's own roles cannot do it."""
    import psycopg  # noqa: PLC0415 - only for PostgreSQL logs
    from psycopg import sql  # noqa: PLC0415

    from trailseal.storage.postgres import parse_url  # noqa: PLC0415

    conninfo, schema = parse_url(url)
    with psycopg.connect(conninfo, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        for role in (f"{schema}_owner", f"{schema}_service"):
            if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NatsProcess:
    """``nats-server -js`` on a loopback port of its own, its store in ``root``, for tests
    and benchmarks that kill it and start it again on the same port and store."""

    def __init__(self, root: Path) -> None:
        self.port, self.store = free_port(), root / "jetstream"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - the server, with our own arguments
            [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def kill(self) -> None:
        """SIGKILL, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


def pg_ctl(action: str) -> None:
    """Stop (fast) or start this machine's PostgreSQL cluster (Debian's pg_ctlcluster)."""
    version = max(path.name for path in Path("/etc/postgresql").iterdir())
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    subprocess.run(  # noqa: S603 - Debian's tool, our own arguments
        [*command, "-m", "fast"] if action == "stop" else command,
        check=True,
        capture_output=True,
    )


def wait_for_postgres(url: str, timeout: float = 60) -> None:
    """Until PostgreSQL at ``url`` accepts connections again (RuntimeError after ``timeout``)."""
    import psycopg  # noqa: PLC0415 - only for PostgreSQL tests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            psycopg.connect(url, connect_timeout=1).close()
        except psycopg.OperationalError:
            time.sleep(0.2)
        else:
            return
    raise RuntimeError("PostgreSQL did not come back")
