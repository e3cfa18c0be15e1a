"""Producers publishing to NATS JetStream, `serve --nats` appending: every event in the log
once, and none leaves a producer's spool before the log has given its index, even when
the NATS server is killed in the middle of the stream.

Each test starts its own `nats-server -js` on a free loopback port (the machine's own
server is left alone), with its store in the test's folder, so it can be SIGKILLed and
started again on the same port and store.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from conftest import need, run_cli
from trailseal.client import Client
from trailseal.testing import NATS_SERVER, NatsProcess, ServiceProcess, sample_events


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsProcess]:
    need(
        Path(NATS_SERVER).exists(),
        "nats-server (NATS with JetStream)",
        "apt-get install nats-server",
    )
    server = NatsProcess(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


@pytest.fixture
def service(tmp_path: Path, nats_server: NatsProcess) -> Iterator[ServiceProcess]:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    created = run_cli("principals", "create", "root", "--role", "admin", data=data, check=True)
    process = ServiceProcess(data, json.loads(created.stdout)["token"], ("--nats", nats_server.url))
    process.start()
    yield process
    process.stop()


def _ids_in_log(data: Path) -> list[str]:
    out = run_cli("export", data=data, check=True).stdout
    return [orjson.loads(line)["entry"]["event"]["id"] for line in out.splitlines()]


def _events(count: int, seed: int) -> list[dict]:
    return [
        dict(event, id=f"js-{seed}-{n}") for n, event in enumerate(sample_events(count, seed=seed))
    ]


def test_events_through_jetstream_are_in_the_log_once(
    service: ServiceProcess, nats_server: NatsProcess, tmp_path: Path
) -> None:
    events = _events(2000, 31)
    with Client(nats_server.url, "", tmp_path / "spool") as client:
        for event in events:
            client.emit(event)
        client.flush(timeout=120)
        assert client.status.sent == 2000
        assert client.pending_bytes == 0
    ids = _ids_in_log(service.data)
    wanted = {e["id"] for e in events}
    assert sorted(i for i in ids if i in wanted) == sorted(wanted)  # each exactly once
    assert "appending what producers publish to JetStream" in service.stderr()


def test_nats_killed_mid_stream_loses_nothing(
    service: ServiceProcess, nats_server: NatsProcess, tmp_path: Path
) -> None:
    """SIGKILL the NATS server while a producer streams; start it again on the same store.
    Every event the producer was told is stored is in the log once, and the producer's
    spool still holds every other until it is."""
    events = _events(6000, 32)
    client = Client(nats_server.url, "", tmp_path / "spool")
    try:
        feeder = threading.Thread(target=lambda: [client.emit(e) for e in events])
        feeder.start()
        deadline = time.monotonic() + 60
        while client.status.sent < 1500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.status.sent >= 1500
        nats_server.kill()
        time.sleep(1)
        nats_server.start()
        feeder.join(timeout=60)
        client.flush(timeout=180)
        assert client.status.sent == 6000
    finally:
        client.close(timeout=5)
    ids = _ids_in_log(service.data)
    wanted = {e["id"] for e in events}
    found = [i for i in ids if i in wanted]
    assert len(found) == len(set(found))  # none twice
    assert set(found) == wanted  # none lost


def test_a_refused_event_is_set_aside_with_the_reason(
    service: ServiceProcess, nats_server: NatsProcess, tmp_path: Path
) -> None:
    good = _events(3, 33)
    bad = dict(good[0], id="js-bad", action="not an action!")
    with Client(nats_server.url, "", tmp_path / "spool") as client:
        for event in [*good, bad]:
            client.emit(event)
        client.flush(timeout=60)
        assert (client.status.sent, client.status.rejected) == (3, 1)
    aside = (tmp_path / "spool" / "rejected.jsonl").read_text().splitlines()
    assert len(aside) == 1
    assert "$.action" in json.loads(aside[0])["reason"]
    assert "js-bad" not in _ids_in_log(service.data)


def test_an_event_whose_answer_was_lost_is_not_held_back_by_the_duplicate_window(
    service: ServiceProcess, nats_server: NatsProcess, tmp_path: Path
) -> None:
    """An event published once (as ``Nats-Msg-Id`` = its id) whose answer from the log was
    lost, as when NATS restarts between the append and the reply: the client publishes it
    again. With the same ``Nats-Msg-Id`` JetStream would drop the resend as a duplicate
    for its whole two-minute window, and the producer's spool would stall; a fresh id
    gets it delivered, and the log, which already has it, answers with its index."""
    import asyncio  # noqa: PLC0415

    import nats  # noqa: PLC0415

    (event,) = _events(1, 34)

    async def publish_unanswered() -> None:
        connection = await nats.connect(nats_server.url)
        headers = {"Nats-Msg-Id": event["id"], "Trailseal-Ack-To": "trailseal.acks.nobody"}
        await connection.jetstream().publish(
            "trailseal.events", orjson.dumps(event), headers=headers
        )
        await connection.close()

    asyncio.run(publish_unanswered())
    deadline = time.monotonic() + 30
    while event["id"] not in _ids_in_log(service.data):
        assert time.monotonic() < deadline, "the first publish never reached the log"
        time.sleep(0.2)
    started = time.monotonic()
    with Client(nats_server.url, "", tmp_path / "spool") as client:
        client.emit(event)
        client.flush(timeout=60)  # well inside JetStream's 120 s duplicate window
        assert client.status.sent == 1
    assert time.monotonic() - started < 60
    assert _ids_in_log(service.data).count(event["id"]) == 1
