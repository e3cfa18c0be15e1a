"""Faults: SIGKILL mid-batch, a full disk, a read-only disk. Nothing stored is ever lost."""

from __future__ import annotations

import json
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from backends import Backend, SQLiteBackend
from conftest import event_lines, needs_mount, run_cli


def _size(data: Path) -> int:
    """The verified size before this check; the check itself then adds its audit.verify."""
    report = run_cli("verify", "--json", data=data)
    assert report.returncode == 0, report.stderr
    return int(json.loads(report.stdout)["size"])


def _checkpoints(backend: Backend, data: Path) -> int:
    if isinstance(backend, SQLiteBackend):  # read-only: never the writer's lock
        db = sqlite3.connect(f"file:{data / 'log.db'}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM checkpoints").fetchone()[0])
        finally:
            db.close()
    return int(backend.query(data, "SELECT count(*) FROM checkpoints")[0][0])


def test_sigkill_mid_append_leaves_a_verifiable_log(backend: Backend, tmp_path: Path) -> None:
    """On both backends: a batch is in the log whole or not at all."""
    data = tmp_path / "data"
    store = backend.store(data)
    run_cli("init", *(("--store", store) if store else ()), data=data, check=True)
    total = 60_000
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(event_lines(total, seed=21)) + b"\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "trailseal", "append", str(source), "--data", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while (
        _checkpoints(backend, data) < 1 and process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    size = _size(data)  # verifies: no partial batch, every entry signed
    assert size % 10_000 == 0
    assert 0 < size < total, "the kill came too late to interrupt a batch"
    result = run_cli("append", source, data=data, check=True)
    report = json.loads(result.stdout)
    assert report["appended"] == total - size
    assert report["duplicates"] == size
    assert _size(data) == total + 1  # and the first check's audit.verify entry


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_full_disk_simulated_with_rlimit_fsize(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    run_cli("append", "-", data=data, stdin=b"\n".join(event_lines(500, seed=1)), check=True)
    before = (data / "log.db").read_bytes()
    source = tmp_path / "more.jsonl"
    source.write_bytes(b"\n".join(event_lines(30_000, seed=2)))
    result = run_cli(
        "append",
        source,
        data=data,
        preexec_fn=lambda: _limit_file_size(len(before) + 2_000_000),
    )
    assert result.returncode == 1
    assert b"error: cannot" in result.stderr
    assert b"Traceback" not in result.stderr
    size = _size(data)
    assert size >= 500
    assert size % 10_000 == 500  # whole batches only
    run_cli("append", source, data=data, check=True)
    assert _size(data) == 30_501  # and the first check's audit.verify entry


@needs_mount
def test_really_full_disk(small_disk: Path, tmp_path: Path) -> None:
    data = small_disk / "data"
    run_cli("init", data=data, check=True)
    run_cli("append", "-", data=data, stdin=b"\n".join(event_lines(300, seed=4)), check=True)
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"\n".join(event_lines(20_000, seed=5)))
    result = run_cli("append", source, data=data)
    assert result.returncode == 1
    assert b"full" in result.stderr or b"disk" in result.stderr
    assert b"Traceback" not in result.stderr
    assert _size(data) % 10_000 == 300


@needs_mount
def test_read_only_disk(small_disk: Path) -> None:
    data = small_disk / "data"
    run_cli("init", data=data, check=True)
    run_cli("append", "-", data=data, stdin=b"\n".join(event_lines(50, seed=6)), check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        result = run_cli("append", "-", data=data, stdin=event_lines(1, seed=7)[0])
        assert result.returncode == 1
        assert b"error:" in result.stderr
        assert b"Traceback" not in result.stderr
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert _size(data) == 50
