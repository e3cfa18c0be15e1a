"""The Python client against the real server: outages, crashes and SIGKILL lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from conftest import Server, needs_mount
from trailseal.client import AsyncClient, Client, SpoolFullError, SpoolWriteError
from trailseal.ledger import Ledger


def _event(n: int, run: str) -> dict:
    return {
        "id": f"{run}-{n:06d}",
        "time": "2026-03-01T14:05:09Z",
        "actor": {"id": f"u-{n % 50}", "type": "user"},
        "action": "record.read",
        "resource": {"type": "patient", "id": f"p-{n}"},
    }


def _ids_in_log(data: Path, run: str) -> Counter[str]:
    with Ledger.open(data) as ledger:
        ids = (view.entry["event"]["id"] for view in map(ledger.get, range(ledger.size())))
        found = Counter(i for i in ids if i.startswith(run))
        ledger.verify()
    return found


@pytest.fixture
def writer_token(server: Server) -> str:
    return server.principal("app", "writer")


def test_emit_flush_close(server: Server, writer_token: str, tmp_path: Path) -> None:
    with Client(server.url, writer_token, tmp_path / "spool") as client:
        for n in range(500):
            client.emit(_event(n, "basic"))
        client.emit({"actor": {"id": "u-1"}, "action": "auth.login"})  # id and time filled in
        client.flush(timeout=60)
        assert client.pending_bytes == 0
        assert client.status.sent == 501
    server.stop()
    assert len(_ids_in_log(server.data, "basic")) == 500


def test_server_killed_mid_stream_loses_nothing(
    server: Server, writer_token: str, tmp_path: Path
) -> None:
    total = 100_000
    client = Client(server.url, writer_token, tmp_path / "spool", max_backoff=0.5)
    for n in range(total):
        client.emit(_event(n, "outage"))
        if n == total // 4:
            time.sleep(0.5)  # let some batches land before the kill
            server.kill()
    assert client.pending_bytes > 0
    server.start()  # the same data and port
    client.close(timeout=300)
    assert client.status.attempts_failed > 0  # it really saw the outage
    server.stop()
    found = _ids_in_log(server.data, "outage")
    assert len(found) == total
    assert set(found.values()) == {1}  # exactly once


CHILD = textwrap.dedent(
    """
    import sys
    from trailseal.client import Client
    url, token, spool, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Client(url, token, spool)
    for n in range(count):
        client.emit({"id": f"killed-{n:06d}", "time": "2026-03-01T14:05:09Z",
                     "actor": {"id": "u-1"}, "action": "record.read"})
    print("emitted", flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


def test_client_sigkilled_after_emit_then_restarted(
    server: Server, writer_token: str, tmp_path: Path
) -> None:
    total = 10_000
    spool = tmp_path / "spool"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.url, writer_token, str(spool), str(total)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"emitted"
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Client(server.url, writer_token, spool) as again:
        again.flush(timeout=120)
    server.stop()
    found = _ids_in_log(server.data, "killed")
    assert len(found) == total
    assert set(found.values()) == {1}


def _fill(client: Client) -> None:
    for n in range(100):
        client.emit(_event(n, "full"))


def test_full_spool_raises_or_blocks_never_drops(tmp_path: Path) -> None:
    nowhere = "http://127.0.0.1:9"  # nothing listens: every send fails
    raising = Client(nowhere, "tsk_x", tmp_path / "a", max_spool_bytes=2000, when_full="raise")
    blocking = Client(nowhere, "tsk_x", tmp_path / "b", max_spool_bytes=2000, full_timeout=0.2)
    try:
        with pytest.raises(SpoolFullError, match="not written"):
            _fill(raising)
        with pytest.raises(SpoolFullError, match="stayed full"):
            _fill(blocking)
        assert 0 < raising.pending_bytes <= 2000
    finally:
        for client in (raising, blocking):
            client._sender.stop()


def test_invalid_events_are_counted_not_silently_dropped(
    server: Server, writer_token: str, tmp_path: Path
) -> None:
    with Client(server.url, writer_token, tmp_path / "spool") as client:
        client.emit(_event(1, "mixed"))
        client.emit({**_event(2, "mixed"), "time": "yesterday"})
        client.emit(_event(3, "mixed"))
        client.flush(timeout=60)
        assert client.status.rejected == 1
        assert "/time" in str(client.status.rejections[0]["pointer"])
    server.stop()
    assert set(_ids_in_log(server.data, "mixed")) == {"mixed-000001", "mixed-000003"}


def test_async_client(server: Server, writer_token: str, tmp_path: Path) -> None:
    async def main() -> int:
        client = AsyncClient(server.url, writer_token, tmp_path / "spool")
        for n in range(200):
            client.emit(_event(n, "async"))
        await client.flush(timeout=60)
        sent = client.status.sent
        await client.aclose()
        return sent

    assert asyncio.run(main()) == 200
    server.stop()
    assert len(_ids_in_log(server.data, "async")) == 200


@needs_mount
def test_emit_on_a_full_disk_raises_and_leaves_no_partial_line(
    server: Server, writer_token: str, small_disk: Path
) -> None:
    """Issue 10, point 10: on a full spool disk `emit` returned an id for an event whose
    line was only partly written, and the sender died on it. Now emit raises, the spool
    holds whole lines only, and the sender goes on."""
    spool = small_disk / "spool"
    client = Client(server.url, writer_token, spool)
    try:
        client.emit(_event(0, "full"))
        client.flush(timeout=60)
        filler = small_disk / "filler"
        with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 4096)
        big = {**_event(1, "full"), "detail": {"note": "x" * 20_000}}
        with pytest.raises(SpoolWriteError, match="not written"):
            client.emit(big)
        content = (spool / "spool.jsonl").read_bytes()
        assert content == b"" or content.endswith(b"\n")
        filler.unlink()
        client.emit(_event(2, "full"))
        client.flush(timeout=60)
        assert client._sender.is_alive()
        assert client.status.rejected == 0
    finally:
        client.close()
    server.stop()
    assert set(_ids_in_log(server.data, "full")) == {"full-000000", "full-000002"}


def test_an_id_reused_with_other_content_is_set_aside_and_the_rest_delivered(
    server: Server, writer_token: str, tmp_path: Path
) -> None:
    """Issue 10, point 11: one event id reused with different content blocked the spool
    forever. The refused event is counted, reported and set aside; the rest go."""
    with Client(server.url, writer_token, tmp_path / "spool") as client:
        client.emit(_event(1, "reuse"))
        client.flush(timeout=60)
        client.emit({**_event(1, "reuse"), "action": "record.update"})  # same id, other event
        for n in range(2, 5):
            client.emit(_event(n, "reuse"))
        client.flush(timeout=60)
        assert client.status.rejected == 1
        assert client.pending_bytes == 0
    aside = [
        orjson.loads(line)
        for line in (tmp_path / "spool" / "rejected.jsonl").read_bytes().splitlines()
    ]
    assert len(aside) == 1
    assert '"record.update"' in aside[0]["event"]
    assert "reuse-000001" in aside[0]["event"]
    assert aside[0]["reason"]
    server.stop()
    found = _ids_in_log(server.data, "reuse")
    assert set(found) == {f"reuse-{n:06d}" for n in range(1, 5)}
    assert found["reuse-000001"] == 1
