"""The fault run of issue 16, sized for CI (bench/faultrun.py; 1,000,000 events in
bench/scale_faults.py): producer processes stream through NATS JetStream into two
`serve` processes sharing a deployment of three logs on one PostgreSQL, while each
`serve`, then NATS, is SIGKILLed and PostgreSQL is restarted.

At the end every event is in exactly one log, the one its tenant routes to, once; every
log verifies; a deployment checkpoint signed before the faults checks out against every
log; and every producer's spool has drained (it drains only as the log gives indexes).
The time each fault took to recover from (until the logs grew again) is printed.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends import PostgresBackend
from conftest import postgres
from trailseal.testing import NATS_SERVER, drop_postgres_log

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import faultrun

PRODUCERS = 3
EVENTS = 4_000  # each: 12,000 in all
LOGS = 3


@pytest.fixture
def pg() -> Iterator[PostgresBackend]:
    yield from postgres()


@pytest.mark.restarts_postgresql
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None,
    reason="restarting PostgreSQL needs root and Debian's pg_ctlcluster",
)
def test_faults_in_turn_lose_nothing(pg: PostgresBackend, tmp_path: Path) -> None:
    if not Path(NATS_SERVER).exists():
        pytest.skip("nats-server is not installed")
    try:
        outcome = faultrun.run(
            tmp_path, pg.schema, producers=PRODUCERS, events=EVENTS, logs=LOGS, pace=0.1,
            settle=1.5,
        )  # fmt: skip
    finally:
        for k in range(1, LOGS):
            drop_postgres_log(f"{faultrun.POSTGRES}?schema={pg.schema}_log{k}")
    print("recovery times:", {name: f"{s:.2f} s" for name, s in outcome.recovery.items()})
    print("events per log:", outcome.per_log)
    assert outcome.problems == []
    assert sum(outcome.per_log.values()) == PRODUCERS * EVENTS
    assert all(outcome.per_log[name] > 0 for name in ("default", "log1", "log2"))
