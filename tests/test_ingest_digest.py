"""CloudTrail digest validation: every log file against its digest, every digest's RSA
signature and its link to the one before.

AWS's signing keys cannot be fetched here, so these tests make their own RSA key pair
and sign digests exactly as CloudTrail does (see cloudtrail_files.py); the public key
is handed over in the shape `aws cloudtrail list-public-keys` prints. S3 is moto's
server on loopback (the real service cannot be reached from here).
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from cloudtrail_files import BUCKET, Signer, Trail, compact, envelope, record
from conftest import run_cli


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def _trail(signer: Signer) -> tuple[Trail, list[str]]:
    trail = Trail(signer)
    digests = [
        trail.hour(
            f"20261130T{hour:02d}00Z", [[record("ListUsers", "iam.amazonaws.com")] for _ in "ab"]
        )
        for hour in (10, 11, 12)
    ]
    return trail, digests


def _run(tmp_path: Path, root: Path, signer: Signer) -> tuple[int, dict[str, Any], Path]:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    keys = tmp_path / "keys.json"
    keys.write_bytes(signer.public_keys())
    result = run_cli("import", "cloudtrail", root, "--public-keys", keys, data=data)
    assert result.returncode in (0, 1), result.stderr.decode()
    return result.returncode, json.loads(result.stdout), data


def test_an_untouched_trail_validates(tmp_path: Path, signer: Signer) -> None:
    trail, _ = _trail(signer)
    code, found, data = _run(tmp_path, trail.write(tmp_path / "bucket"), signer)
    assert code == 0
    assert found["imported"] == 6  # two log files an hour, one record each
    digests = found["digests"]
    assert (digests["digests"], digests["digests_valid"]) == (3, 3)
    assert (digests["log_files"], digests["log_files_valid"]) == (6, 6)
    assert digests["findings"] == []
    entries = _entries(data, "trailseal.cloudtrail.validated")
    assert [e["outcome"]["result"] for e in entries] == ["success"]


def _entries(data: Path, action: str) -> list[dict[str, Any]]:
    out = run_cli("search", "--action", action, "--json", data=data, check=True).stdout
    rows = json.loads(out)
    return [row["entry"]["event"] for row in rows]


def _change_log(trail: Trail, digests: list[str]) -> list[tuple[str, str, str]]:
    key = next(k for k in trail.files if "CloudTrail/" in k and "T1100Z_0001" in k)
    trail.files[key] = gzip.compress(envelope([record("DeleteUser", "iam.amazonaws.com")]))
    return [("log", "altered", key)]


def _remove_log(trail: Trail, digests: list[str]) -> list[tuple[str, str, str]]:
    key = next(k for k in trail.files if "CloudTrail/" in k and "T1200Z_0000" in k)
    del trail.files[key]
    return [("log", "missing", key)]


def _bad_signature(trail: Trail, digests: list[str]) -> list[tuple[str, str, str]]:
    other = Signer()  # a valid RSA signature, by a key that is not CloudTrail's
    body = json.loads(gzip.decompress(trail.files[digests[1]]))
    trail.signatures[digests[1]] = other.sign(body, gzip.decompress(trail.files[digests[1]]))
    # and the next digest, which names the real signature, no longer links to it
    return [("digest", "bad-signature", digests[1]), ("digest", "broken-chain", digests[2])]


def _unsigned(trail: Trail, digests: list[str]) -> list[tuple[str, str, str]]:
    del trail.signatures[digests[0]]
    return [("digest", "unsigned", digests[0])]


def _broken_chain(trail: Trail, digests: list[str]) -> list[tuple[str, str, str]]:
    """The last digest re-signed (validly) with a link that names other content."""
    body = json.loads(gzip.decompress(trail.files[digests[2]]))
    body["previousDigestHashValue"] = "0" * 64
    content = compact(body)
    trail.files[digests[2]] = gzip.compress(content)
    trail.signatures[digests[2]] = trail.signer.sign(body, content)
    return [("digest", "broken-chain", digests[2])]


def _removed_digest(trail: Trail, digests: list[str]) -> list[tuple[str, str, str]]:
    del trail.files[digests[1]]
    del trail.signatures[digests[1]]
    return [("digest", "missing", digests[1])]


@pytest.mark.parametrize(
    "damage",
    [_change_log, _remove_log, _bad_signature, _unsigned, _broken_chain, _removed_digest],
)
def test_damage_is_found_recorded_and_alerted(
    tmp_path: Path, signer: Signer, damage: Callable[[Trail, list[str]], list[tuple[str, str, str]]]
) -> None:
    trail, digests = _trail(signer)
    expected = damage(trail, digests)
    code, found, data = _run(tmp_path, trail.write(tmp_path / "bucket"), signer)
    assert code == 1
    findings = found["digests"]["findings"]
    assert [(f["kind"], f["problem"]) for f in findings] == [(k, p) for k, p, _ in expected]
    assert all(f["name"].endswith(key) for f, (_, _, key) in zip(findings, expected, strict=True))
    recorded = _entries(data, "trailseal.cloudtrail.finding")
    assert len(recorded) == len(expected)
    assert all(r["outcome"]["result"] == "failure" for r in recorded)
    assert {r["outcome"]["reason"].split(":")[0] for r in recorded} == {p for _, p, _ in expected}
    assert [e["outcome"]["result"] for e in _entries(data, "trailseal.cloudtrail.validated")] == [
        "failure"
    ]
    run_cli("watch", "--once", data=data, check=True)
    alerts = json.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    # one alert a damaged file
    assert [a["rule"] for a in alerts] == ["cloudtrail_integrity_finding"] * len(expected)
    assert {a["severity"] for a in alerts} == {"critical"}


def test_digests_without_keys_are_named_not_checked(tmp_path: Path, signer: Signer) -> None:
    trail, _ = _trail(signer)
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    result = run_cli("import", "cloudtrail", trail.write(tmp_path / "b"), data=data, check=True)
    assert "3 digest files found and not checked" in json.loads(result.stdout)["notes"][0]


def test_a_bad_keys_file_is_refused_by_name(tmp_path: Path, signer: Signer) -> None:
    trail, _ = _trail(signer)
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    keys = tmp_path / "keys.json"
    keys.write_text('{"PublicKeyList": [{"Value": "not base64!", "Fingerprint": "f"}]}')
    result = run_cli(
        "import", "cloudtrail", trail.write(tmp_path / "b"), "--public-keys", keys, data=data
    )
    assert result.returncode == 1
    assert b"keys.json: not the output of `aws cloudtrail list-public-keys`" in result.stderr
    assert json.loads(run_cli("export", data=data, check=True).stdout.splitlines()[0])  # any
    # nothing was imported before the keys were read
    assert b'"aws.' not in run_cli("export", data=data, check=True).stdout


# -- from S3 (moto) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_validation_from_s3_reads_signatures_from_object_metadata(
    tmp_path: Path, signer: Signer, s3_endpoint: str
) -> None:
    import boto3  # noqa: PLC0415

    env = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    trail, _digests = _trail(signer)
    for key, data in trail.files.items():
        # The digests name the bucket they were signed for; moto's buckets need unique
        # names, so the test's files keep BUCKET inside and live in `bucket`.
        meta = (
            {"signature": trail.signatures[key], "signature-algorithm": "SHA256withRSA"}
            if key in trail.signatures
            else {}
        )
        s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata=meta)
    data_dir = tmp_path / "data"
    run_cli("init", data=data_dir, check=True)
    keys = tmp_path / "keys.json"
    keys.write_bytes(signer.public_keys())
    result = run_cli(
        "import",
        "cloudtrail",
        f"s3://{bucket}/AWSLogs/",
        "--public-keys",
        keys,
        data=data_dir,
        env=env,
    )
    found = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr.decode()
    assert (
        found["files"],
        found["digests"]["digests_valid"],
        found["digests"]["log_files_valid"],
    ) == (6, 3, 6)

    changed = next(k for k in trail.files if "CloudTrail/" in k)
    s3.put_object(Bucket=bucket, Key=changed, Body=gzip.compress(b'{"Records":[]}'))
    again = run_cli(
        "import",
        "cloudtrail",
        f"s3://{bucket}/AWSLogs/",
        "--public-keys",
        keys,
        data=data_dir,
        env=env,
    )
    assert again.returncode == 1
    problems = [(f["problem"], f["name"]) for f in json.loads(again.stdout)["digests"]["findings"]]
    assert problems == [("altered", f"s3://{BUCKET}/{changed}")]
