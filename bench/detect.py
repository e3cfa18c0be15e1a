"""Benchmark detection: entries/s through the built-in rule pack, and the delay from append
to alert at a sink, beside the raw append rate as the ceiling.

    python bench/detect.py                   # 200,000 entries, 200 alerts timed
    python bench/detect.py --entries 50000 --alerts 50

Prints, in one run:

- the raw append rate of the same entries through the library's bulk path (the
  ceiling: detection cannot usefully run faster than the log grows);
- entries/s through the whole built-in pack with a staff roster and an IP
  geography file (every rule, correlation, enrichment and the per-entry hash
  re-check), in one `watch --once` pass;
- the delay from `append` returning to the alert arriving at a webhook receiver
  on loopback, while the engine follows the log (p50, p99).

Two workloads, each with its own ceiling: the demo hospital's traffic
(``examples/ehr``: months of staff activity with the planted incidents, as
the EHR's middleware would record it; alerts are rare, as in a real
hospital), and `trailseal.testing.sample_events`, where units and export
sizes are random so that two entries in three raise or extend an alert (a
stress case for alert storage, not a realistic one).
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from ehr.hospital import patients, staff, write_context
from ehr.traffic import Month, Step
from trailseal.detect.config import DetectionConfig
from trailseal.detect.engine import Engine
from trailseal.detect.rules import BUILTIN, load
from trailseal.detect.sinks import Dispatcher, WebhookSink
from trailseal.detect.store import DetectionStore
from trailseal.events import event_from_mapping
from trailseal.ledger import Ledger
from trailseal.testing import free_port, sample_events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--alerts", type=int, default=200)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="trailseal-detect-"))
    try:
        rows = run(args.entries, args.alerts, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in (("measure", "result", "target"), *rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)))


def _context(scratch: Path) -> DetectionConfig:
    roster = scratch / "roster.csv"
    roster.write_text(
        "user_id,unit,shift_start,shift_end,timezone\n"
        + "".join(f"u-{n},unit-{n % 6},07:00,19:00,UTC\n" for n in range(1, 5001))
    )
    geo = scratch / "geo.csv"
    geo.write_text("network,country\n10.0.0.0/9,US\n10.128.0.0/9,CA\n")
    return DetectionConfig(roster=roster, geography=geo)


VERBS = {  # what the EHR's middleware records for each kind of step
    "login": ("user.login", "session"),
    "logout": ("user.logout", "session"),
    "read": ("patient.read", "patient"),
    "list": ("patient.read", "patient"),
    "note": ("note.create", "note"),
    "diagnose": ("patient.update", "patient"),
    "export": ("export.create", "export"),
    "list_staff": ("admin.staff.list", "staff"),
    "grant": ("iam.role.assign", "user"),
    "revoke": ("iam.role.revoke", "user"),
}


def hospital_events(count: int) -> list[bytes]:
    """Months of the demo hospital, as events, until there are ``count``."""
    people, charts = staff(), patients()
    unit_of = {c.id: c.unit for c in charts}
    units = {p.id: p.unit for p in people}
    lines: list[bytes] = []
    for month in range(100):
        offset = timedelta(days=30 * month)
        for n, step in enumerate(Month(people, charts, seed=2026 + month)):
            lines.append(orjson.dumps(_event(step, offset, f"m{month}-{n}", unit_of, units)))
            if len(lines) == count:
                return lines
    return lines


def _event(step: Step, offset: timedelta, ident: str, unit_of: dict, units: dict) -> dict:
    action, rtype = VERBS[step.verb]
    resource: dict[str, object] = {"type": rtype}
    detail = None
    if "patient" in step.args:
        resource |= {"id": step.args["patient"], "unit": unit_of[step.args["patient"]]}
    if step.verb == "export":
        resource["count"] = step.args["limit"]
    if step.verb in ("grant", "revoke"):
        resource["id"] = step.args["staff"]
        detail = {"role": step.args["role"]}
    event = {
        "id": ident,
        "time": (step.when + offset).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": {"id": step.actor, "unit": units[step.actor]},
        "action": action,
        "resource": resource,
        "outcome": {"result": "failure" if step.args.get("wrong") else "success"},
        "source": {"ip": step.ip, "service": "ehr", "user_agent": "ehr-workstation/4.2"},
    }
    return event | ({"detail": detail} if detail else {})


def run(count: int, alerts: int, scratch: Path) -> list[tuple[str, str, str]]:
    pack = load([BUILTIN])
    rows: list[tuple[str, str, str]] = [("entries per workload", f"{count:,}", "")]
    print(f"generating {count:,} hospital events ...", file=sys.stderr)
    roster, geo = write_context(scratch / "context", staff())
    hospital = DetectionConfig(roster=roster, geography=geo)
    events = hospital_events(count)
    rows += _workload(
        "hospital", events, hospital, pack, data=scratch / "hospital", target=">= 50,000/s"
    )
    print(f"generating {count:,} sample events ...", file=sys.stderr)
    stress = [orjson.dumps(event) for event in sample_events(count)]
    rows += _workload(
        "sample (stress)", stress, _context(scratch), pack, data=scratch / "sample", target=""
    )
    print(f"timing {alerts} alerts from append to a webhook ...", file=sys.stderr)
    p50, p99 = _latency(scratch / "hospital", hospital, pack, alerts)
    rows.append(
        (
            "append to alert at a webhook: p50 / p99",
            f"{p50 * 1000:.0f} / {p99 * 1000:.0f} ms",
            "p99 < 1 s",
        )
    )
    return rows


def _workload(
    name: str, lines: list[bytes], config: DetectionConfig, pack: Any, *, data: Path, target: str
) -> list[tuple[str, str, str]]:
    count = len(lines)
    print(f"{name}: appending (the ceiling) ...", file=sys.stderr)
    with Ledger.init(data, origin="bench.example/detect") as ledger:
        started = time.perf_counter()
        for chunk in ledger.prepare_lines(lines):
            ledger.append_prepared(chunk.prepared)
        append_rate = count / (time.perf_counter() - started)

        print(f"{name}: detecting ...", file=sys.stderr)
        store = DetectionStore(data / "detection.db")
        engine = Engine(ledger, store, pack, config)  # as deployed: alerts and progress logged
        started = time.perf_counter()
        engine.run_once()
        detect_rate = count / (time.perf_counter() - started)
        raised = len(store.alerts())
        store.close()

    return [
        (f"{name}: append, bulk path (ceiling)", f"{append_rate:,.0f}/s", ""),
        (f"{name}: detection, built-in pack with context", f"{detect_rate:,.0f}/s", target),
        ("  = share of the ceiling", f"{detect_rate / append_rate:.2f}", ""),
        ("  alerts raised (after dedup)", f"{raised:,}", ""),
    ]


def _latency(data: Path, config: DetectionConfig, pack: object, alerts: int) -> tuple[float, float]:
    arrived: dict[str, float] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
            arrived[body["group"]] = time.monotonic()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = WebhookSink("bench", f"http://127.0.0.1:{port}/", b"bench-secret")
    config.sinks = [sink]
    sent: dict[str, float] = {}
    with Ledger.open(data) as ledger:
        store = DetectionStore(data / "detection.db")
        dispatcher = Dispatcher(store.reopen, [sink])
        engine = Engine(ledger, store, pack, config, on_alert=dispatcher.wake.set)  # type: ignore[arg-type]
        engine.run_once()
        dispatcher.start()
        stop = threading.Event()
        follower = threading.Thread(target=engine.follow, args=(stop.is_set,), daemon=True)
        follower.start()
        for n in range(alerts):
            event = {
                "id": f"bench-alert-{n}",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "actor": {"id": f"exporter-{n}"},
                "action": "record.export",
                "resource": {"type": "patient", "count": 1000},
            }
            ledger.append([event_from_mapping(event)])
            sent[f"actor.id=exporter-{n}"] = time.monotonic()
            time.sleep(0.02)
        deadline = time.monotonic() + 30
        while len(arrived) < alerts and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        follower.join(timeout=10)
        dispatcher.stop()
        dispatcher.join(timeout=10)
        store.close()
    server.shutdown()
    delays = sorted(arrived[g] - sent[g] for g in sent if g in arrived)
    if len(delays) < alerts:
        print(f"only {len(delays)} of {alerts} alerts arrived", file=sys.stderr)
    return delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]


if __name__ == "__main__":
    main()
