"""Shared fixtures: real SQLite files in temporary directories, the real CLI in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from trailseal.events import parse_event
from trailseal.ledger import Ledger
from trailseal.testing import sample_events

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
