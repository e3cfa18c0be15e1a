"""How long the command line and a sending application take to start, against baselines
measured in the same run.

    python bench/startup.py            # 15 runs each
    python bench/startup.py --runs 30

Each figure is the median wall time of a fresh process. Baselines: the bare interpreter
(no trailseal at all), and importing the HTTP server's modules (FastAPI and the rest),
which is what every command used to pay before the CLI loaded its commands lazily.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from trailseal.testing import sample_events


def median_seconds(command: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    scratch = Path(tempfile.mkdtemp(prefix="trailseal-startup-"))
    try:
        data = scratch / "data"
        cli = [sys.executable, "-m", "trailseal"]
        subprocess.run([*cli, "init", "--data", str(data)], check=True, capture_output=True)
        events = scratch / "events.jsonl"
        events.write_bytes(b"\n".join(orjson.dumps(e) for e in sample_events(20)) + b"\n")
        subprocess.run(
            [*cli, "append", str(events), "--data", str(data)], check=True, capture_output=True
        )
        python = [sys.executable, "-c"]
        rows = [
            ("baseline: bare interpreter", [*python, "pass"], None),
            (
                "baseline: import the server (FastAPI)",
                [*python, "import trailseal.server.app"],
                None,
            ),
            ("import trailseal.client", [*python, "import trailseal.client"], None),
            ("import trailseal.capture", [*python, "import trailseal.capture"], None),
            ("trailseal --version", [*cli, "--version"], 0.2),
            ("trailseal get 5 (recorded)", [*cli, "get", "5", "--data", str(data)], 0.5),
        ]
        measured = [
            (name, median_seconds(command, args.runs, env), target)
            for name, command, target in rows
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    width = max(len(name) for name, _, _ in measured)
    print(f"{'start-up, median of ' + str(args.runs):<{width}} | seconds | target")
    print(f"{'-' * width}-+---------+-------")
    for name, seconds, target in measured:
        verdict = (
            ""
            if target is None
            else f"< {target} s " + ("(met)" if seconds < target else "(MISSED)")
        )
        print(f"{name:<{width}} | {seconds:7.3f} | {verdict}")


if __name__ == "__main__":
    main()
