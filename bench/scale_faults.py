"""The fault run of issue 16 at full size: 1,000,000 events from several producer
processes through NATS JetStream into two `serve` processes sharing a deployment of
three logs on one PostgreSQL, while one `serve`, then the other, then the NATS server is
SIGKILLed, and PostgreSQL is restarted once. See bench/faultrun.py for what is checked.

    python bench/scale_faults.py                      # 4 producers x 250,000 events
    python bench/scale_faults.py --events 50000       # a shorter run

Needs root (pg_ctlcluster restarts PostgreSQL) and nats-server. Prints the time each
fault took to recover from, each log's share, and the whole run's rate; exits 1 if
anything was lost, stored twice, misrouted, or does not verify.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from faultrun import POSTGRES, run, say
from trailseal.testing import drop_postgres_log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="In all.")
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--logs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=20.0, help="Seconds before the faults.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="trailseal-faults-"))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    each = args.events // args.producers
    say(f"{each * args.producers:,} events from {args.producers} producers into {args.logs} logs")
    try:
        outcome = run(
            root,
            schema,
            producers=args.producers,
            events=each,
            logs=args.logs,
            pace=0.0,
            settle=args.settle,
        )
    finally:
        for name in [schema, *(f"{schema}_log{k}" for k in range(1, args.logs))]:
            drop_postgres_log(f"{POSTGRES}?schema={name}")
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{outcome.events:,} events, {args.producers} producers, {args.logs} logs, 2 serve, "
        f"JetStream, PostgreSQL; one run"
    )
    print(f"  {'fault':<34} recovered in")
    for name, seconds in outcome.recovery.items():
        print(f"  {name:<34} {seconds:8.2f} s")
    for name, count in outcome.per_log.items():
        print(f"  log {name:<30} {count:>10,} events")
    rate = outcome.events / outcome.seconds
    print(f"  whole run, faults included        {outcome.seconds:8.1f} s   {rate:,.0f} events/s")
    if outcome.problems:
        print("FAILED:")
        for problem in outcome.problems[:20]:
            print(f"  {problem}")
        return 1
    print("  every event in exactly one log once; every log verifies; the deployment")
    print("  checkpoint signed before the faults checks out; every spool drained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
