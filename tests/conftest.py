"""Shared fixtures: real SQLite files in temporary directories, the real CLI in subprocesses."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from backends import Backend, PostgresBackend, SQLiteBackend
from trailseal.events import parse_event
from trailseal.ledger import Ledger
from trailseal.testing import ServiceProcess, sample_events

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def need(available: bool, what: str, how: str) -> None:
    """Skip, saying how to get it, when a real server or tool a test needs is absent;
    under CI (CI=true) its absence fails the run instead, so CI runs everything."""
    if available:
        return
    message = f"{what} is not available: {how}"
    if IN_CI:
        pytest.fail(f"{message} (.ci/run provides it; under CI=true nothing is skipped)")
    pytest.skip(message)


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


# PostgreSQL is one server shared by the test workers, and two tests stop and start it.
# Every test of a module that uses it holds this lock shared; those two hold it alone.
POSTGRES_LOCK = Path(tempfile.gettempdir()) / "trailseal-tests-postgresql.lock"
USES_POSTGRES = {
    "test_capture_orm",
    "test_faults",
    "test_ingest_cloudtrail",
    "test_leases",
    "test_ledger",
    "test_logs",
    "test_postgres",
    "test_proofs_property",
    "test_retention_run",
    "test_scale_faults",
    "test_search",
    "test_tamper",
}


@pytest.fixture(autouse=True)
def _postgresql_in_turn(request: pytest.FixtureRequest) -> Iterator[None]:
    module = request.node.module.__name__ if request.node.module else ""
    if module not in USES_POSTGRES:
        yield
        return
    alone = request.node.get_closest_marker("restarts_postgresql") is not None
    with POSTGRES_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        yield


def need_postgres() -> None:
    need(
        listening(5432),
        "PostgreSQL on 127.0.0.1:5432",
        "start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
        "with trust authentication for 127.0.0.1 and a database named test",
    )


VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "rfc9162.json"
LOCAL_VECTORS = Path(__file__).resolve().parent / "data" / "rfc9162.json"


@pytest.fixture(scope="session")
def vectors() -> dict:
    """The shared known-answer vectors (a copy is kept beside the tests for clean clones)."""
    path = VECTORS if VECTORS.exists() else LOCAL_VECTORS
    return orjson.loads(path.read_bytes())


def event_lines(count: int, seed: int = 7) -> list[bytes]:
    return [orjson.dumps(event) for event in sample_events(count, seed=seed)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each storage-level test runs on both backends: a real SQLite file and a schema of
    its own in the real PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        yield SQLiteBackend()
        return
    yield from postgres()


def postgres() -> Iterator[PostgresBackend]:
    """A schema of its own in the real PostgreSQL, dropped (with its roles) afterwards."""
    need_postgres()
    chosen = PostgresBackend.fresh()
    try:
        yield chosen
    finally:
        chosen.cleanup()


@pytest.fixture
def ledger(data_dir: Path) -> Iterator[Ledger]:
    with Ledger.init(data_dir, origin="test.example/log") as opened:
        yield opened


def append_sample(ledger: Ledger, count: int, seed: int = 7, batch: int = 1000) -> None:
    lines = event_lines(count, seed)
    for start in range(0, count, batch):
        ledger.append([parse_event(line) for line in lines[start : start + batch]])


def run_cli(
    *args: str | os.PathLike[str],
    data: Path | None = None,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = False,
    **kwargs: object,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m trailseal ARGS` as a real subprocess."""
    command = [sys.executable, "-m", "trailseal", *map(str, args)]
    if data is not None:
        command += ["--data", str(data)]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    full_env = {**inherited, "NO_COLOR": "1", **(env or {})}
    result = subprocess.run(  # noqa: PLW1510 - callers assert on the exit code
        command, input=stdin, capture_output=True, env=full_env, timeout=300, **kwargs
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{command} exited {result.returncode}\nstdout: {result.stdout!r}\n"
            f"stderr: {result.stderr.decode(errors='replace')}"
        )
    return result


Server = ServiceProcess


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> tuple[Path, str]:
    """`trailseal demo`'s whole month (about a minute) and what it printed, run once for
    the whole session: under xdist the first worker to ask runs it, under a lock, into a
    directory nobody opens afterwards, and every worker gets a copy of its own (the
    printed commands then name the copy). A test that changes the log works on a further
    copy."""
    own = tmp_path_factory.mktemp("demo") / "hospital"
    if worker_id == "master":  # no xdist: this session alone
        result = run_cli("demo", "--data", own, check=True)
        return own, result.stdout.decode()
    session = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    shared = session / "demo-shared"
    with (session / "demo-shared.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "stdout.txt").exists():
            result = run_cli("demo", "--data", shared / "hospital", check=True)
            (shared / "stdout.txt").write_bytes(result.stdout)
    shutil.copytree(shared / "hospital", own)
    printed = (shared / "stdout.txt").read_text()
    return own, printed.replace(str(shared / "hospital"), str(own))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServiceProcess]:
    running = ServiceProcess.boot(
        tmp_path / "data", "--max-body-bytes", "1048576", "--max-batch", "500"
    )
    yield running
    running.stop()


def _can_mount() -> bool:
    if os.geteuid() != 0:
        return False
    probe = Path(f"/tmp/trailseal-mount-probe-{uuid.uuid4().hex}")
    probe.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0:
            return False
        subprocess.run(["umount", str(probe)], check=False)
        return True
    finally:
        probe.rmdir()


needs_mount = pytest.mark.skipif(
    not _can_mount(), reason="needs root and permission to mount a tmpfs (a real small disk)"
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        check=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
