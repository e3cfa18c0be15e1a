"""Benchmark the CloudTrail import beside a plain append of the same events.

    python bench/ingest_cloud.py                  # 200,000 records in 200 gzip files
    python bench/ingest_cloud.py --records 50000 --per-file 500

Makes CloudTrail records shaped like real ones (IAM users and assumed roles calling
EC2, S3, IAM, STS and sign-in, about 1.3 KB each, a few with errors), writes them as
AWS delivers them (``{"Records": [...]}``, gzip, one file per batch), then in one run,
each in a fresh log through the real CLI:

- **import**: ``trailseal import cloudtrail FOLDER`` (read, gunzip, split each record's
  text, map, check, append);
- **import again**: the same folder once more (every record found already stored);
- **append (baseline)**: ``trailseal append`` of a JSON Lines file holding exactly the
  events the import made (mapped beforehand, so the baseline is the append alone).

Prints records per second for each, and the import's rate as a share of the append's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from trailseal.ingest.cloudtrail import Tenancy, to_event
from trailseal.ingest.records import records

CALLS = [
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("ec2.amazonaws.com", "RunInstances", False),
    ("s3.amazonaws.com", "GetObject", True),
    ("s3.amazonaws.com", "PutObject", False),
    ("iam.amazonaws.com", "ListUsers", True),
    ("iam.amazonaws.com", "CreateAccessKey", False),
    ("sts.amazonaws.com", "AssumeRole", False),
    ("sts.amazonaws.com", "GetCallerIdentity", True),
    ("signin.amazonaws.com", "ConsoleLogin", False),
    ("cloudtrail.amazonaws.com", "LookupEvents", True),
]


def make_record(rng: random.Random, moment: float) -> dict[str, Any]:
    source, name, read_only = rng.choice(CALLS)
    user = f"user{rng.randrange(200)}"
    account = str(rng.randrange(10**11, 10**12))
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": f"AIDA{uuid.UUID(int=rng.getrandbits(128)).hex[:16].upper()}",
            "arn": f"arn:aws:iam::{account}:user/{user}",
            "accountId": account,
            "accessKeyId": f"AKIA{uuid.UUID(int=rng.getrandbits(128)).hex[:16].upper()}",
            "userName": user,
            "sessionContext": {
                "attributes": {"creationDate": "2026-11-30T09:00:00Z", "mfaAuthenticated": "false"}
            },
        },
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)),
        "eventSource": source,
        "eventName": name,
        "awsRegion": rng.choice(["eu-west-1", "us-east-1", "ap-southeast-2"]),
        "sourceIPAddress": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2 command/x",
        "requestParameters": {"maxResults": 100, "filterSet": {"items": [{"name": "tag:env"}]}},
        "responseElements": None,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": source,
        },
    }
    if rng.random() < 0.03:
        record["errorCode"] = "AccessDenied"
        record["errorMessage"] = f"User: {record['userIdentity']['arn']} is not authorized"
    return record


def write_trail(folder: Path, count: int, per_file: int) -> int:
    """The records as delivery files; returns the total compressed bytes."""
    rng = random.Random(14)
    start = time.time() - 86_400
    written = 0
    for number, first in enumerate(range(0, count, per_file)):
        batch = [
            make_record(rng, start + (first + n) * 0.4) for n in range(min(per_file, count - first))
        ]
        path = folder / f"123456789012_CloudTrail_eu-west-1_20261130T{number:04d}Z_x.json.gz"
        data = gzip.compress(json.dumps({"Records": batch}, separators=(",", ":")).encode())
        path.write_bytes(data)
        written += len(data)
    return written


def events_file(folder: Path, out: Path) -> int:
    """Exactly the events the import makes, as JSON Lines (the baseline's input)."""
    count = 0
    with out.open("wb") as sink:
        for path in sorted(folder.glob("*.json.gz")):
            for record in records(path.read_bytes(), str(path)):
                sink.write(orjson.dumps(to_event(record.value, record.text, Tenancy())) + b"\n")
                count += 1
    return count


def cli(*args: str | Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "trailseal", *map(str, args)],
        capture_output=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(done.stdout) if done.stdout.strip().startswith(b"{") else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--per-file", type=int, default=1_000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="trailseal-cloud-"))
    try:
        trail = scratch / "trail"
        trail.mkdir()
        compressed = write_trail(trail, args.records, args.per_file)
        lines = scratch / "events.jsonl"
        count = events_file(trail, lines)
        for name in ("imported", "appended"):
            cli("init", "--data", scratch / name)
        first, found = cli("import", "cloudtrail", trail, "--data", scratch / "imported")
        assert found["imported"] == count, found
        again, found = cli("import", "cloudtrail", trail, "--data", scratch / "imported")
        assert found["duplicates"] == count, found
        base, found = cli("append", lines, "--data", scratch / "appended")
        assert found["appended"] == count, found
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    files = -(-args.records // args.per_file)
    print(
        f"{count:,} CloudTrail records in {files} gzip files ({compressed / 2**20:.1f} MiB); "
        "each a fresh embedded SQLite log, through the real CLI, one run"
    )
    rows = [
        ("measure", "records/s", "seconds", "vs append"),
        (
            "import cloudtrail (gzip files)",
            f"{count / first:,.0f}",
            f"{first:.1f}",
            f"{base / first:.0%}",
        ),
        (
            "import again (all already stored)",
            f"{count / again:,.0f}",
            f"{again:.1f}",
            f"{base / again:.0%}",
        ),
        ("append, same events (baseline)", f"{count / base:,.0f}", f"{base:.1f}", "100%"),
    ]
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)))


if __name__ == "__main__":
    main()
