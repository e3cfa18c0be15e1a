"""Benchmark the exporter: entries per second to each destination, and what following
the log costs the appends, beside the append rate measured in the same run.

    python bench/export.py                  # 100,000 entries
    python bench/export.py --entries 20000

In one run, on the embedded SQLite store, through the real CLI:

- **append (baseline)**: ``trailseal append`` of N sample events into a fresh log;
- **export to each destination**: ``trailseal export-to NAME --once`` over that log, to
  the stand-in Splunk HEC receiver (indexer acknowledgement on) and the stand-in bulk
  receiver of ``tests/receivers.py`` (real HTTP servers in their own processes), to a
  TCP syslog drain, and to a JSON Lines file (OCSF);
- **append while exporting**: the same append into a second fresh log while
  ``trailseal export-to`` follows that log to the HEC receiver, against the target that
  the exporter may slow appends by at most 10%.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from trailseal.testing import free_port, sample_events

ROOT = Path(__file__).resolve().parents[1]
RECEIVERS = ROOT / "tests" / "receivers.py"
TOKEN = "hec-token-0000"  # the stand-in receiver's


def cli(*args: str | Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "trailseal", *map(str, args)], check=True, capture_output=True
    )
    return time.perf_counter() - started


def receiver(kind: str, port: int, path: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(RECEIVERS), kind, str(port), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    return process


def tcp_drain(port: int) -> threading.Thread:
    """A TCP listener that reads and drops everything (a syslog server's socket)."""

    def serve() -> None:
        with socket.create_server(("127.0.0.1", port)) as server:
            while True:
                connection, _ = server.accept()
                with connection:
                    while connection.recv(1 << 16):
                        pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    count = args.entries
    scratch = Path(tempfile.mkdtemp(prefix="trailseal-export-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        events = scratch / "events.jsonl"
        events.write_bytes(b"\n".join(orjson.dumps(e) for e in sample_events(count, seed=15)))
        (scratch / "hec.token").write_text(TOKEN)
        hec_port, bulk_port, syslog_port = free_port(), free_port(), free_port()
        processes.append(receiver("hec", hec_port, scratch / "hec.jsonl"))
        processes.append(receiver("bulk", bulk_port, scratch / "bulk.jsonl"))
        tcp_drain(syslog_port)
        destinations = {
            "splunk": {
                "type": "hec",
                "url": f"http://127.0.0.1:{hec_port}",
                "token_file": str(scratch / "hec.token"),
                "batch": 1000,
            },
            "elastic": {
                "type": "elastic",
                "url": f"http://127.0.0.1:{bulk_port}",
                "index": "audit",
                "batch": 1000,
            },
            "syslog": {"type": "syslog", "host": "127.0.0.1", "port": syslog_port, "batch": 1000},
            "lake": {"type": "file", "path": str(scratch / "ocsf.jsonl"), "format": "ocsf"},
        }
        rows = []
        base_log = scratch / "base"
        cli("init", "--data", base_log)
        (base_log / "exports.yaml").write_text(json.dumps({"destinations": destinations}))
        append = cli("append", events, "--data", base_log)
        rows.append(("append (baseline)", count / append, append))
        for name in destinations:
            seconds = cli("export-to", name, "--once", "--data", base_log)
            rows.append((f"export to {name}", count / seconds, seconds))

        followed = scratch / "followed"
        cli("init", "--data", followed)
        (followed / "exports.yaml").write_text(
            json.dumps({"destinations": {"splunk": {**destinations["splunk"]}}})
        )
        exporter = subprocess.Popen(
            [sys.executable, "-m", "trailseal", "export-to", "splunk", "--data", str(followed)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(exporter)
        time.sleep(2)  # it has started and is waiting for entries
        during = cli("append", events, "--data", followed)
        rows.append(("append while exporting to splunk", count / during, during))
    finally:
        for process in processes:
            process.kill()
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"{count:,} sample events; embedded SQLite; real CLI and receivers; one run")
    table = [("measure", "entries/s", "seconds")]
    table += [(name, f"{rate:,.0f}", f"{seconds:.1f}") for name, rate, seconds in rows]
    width = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)))
    slowdown = during / append - 1
    verdict = "met" if slowdown <= 0.10 else "NOT met"
    print(f"appends slowed by {slowdown:.0%} while exporting (target at most 10%: {verdict})")


if __name__ == "__main__":
    main()
