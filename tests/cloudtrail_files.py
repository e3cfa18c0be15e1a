"""CloudTrail delivery files for tests: records, log files and signed digest files.

AWS's own signing keys cannot be fetched here (and a test must not need them), so the
digest tests make their own RSA key pair and sign digests exactly as CloudTrail does
(SHA256withRSA over the documented string to sign), and publish the public key in the
shape `aws cloudtrail list-public-keys` prints.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SHARED = Path(__file__).resolve().parents[2] / "shared"
ACCOUNT = "111122223333"
BUCKET = "trail-bucket"


def shared() -> Path:
    """The shared folder beside the repository, or where TRAILSEAL_SHARED says."""
    import os  # noqa: PLC0415

    found = os.environ.get("TRAILSEAL_SHARED")
    return Path(found) if found else SHARED


def record(event_name: str, source: str = "ec2.amazonaws.com", **extra: Any) -> dict[str, Any]:
    """A CloudTrail record of an IAM user's call, as AWS writes one."""
    found: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLE",
            "userName": "alice",
        },
        "eventTime": "2026-11-30T10:00:00Z",
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11",
        "requestParameters": None,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": event_name.startswith(("Describe", "List", "Get")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    }
    found.update(extra)
    return found


def compact(value: Any) -> bytes:
    """JSON as AWS delivers it: no whitespace, key order kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def envelope(records: list[dict[str, Any]]) -> bytes:
    return compact({"Records": records})


def log_key(region: str, stamp: str, number: int) -> str:
    return (
        f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/2026/11/30/"
        f"{ACCOUNT}_CloudTrail_{region}_{stamp}_{number:04d}.json.gz"
    )


def digest_key(stamp: str) -> str:
    return (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/eu-west-1/2026/11/30/"
        f"{ACCOUNT}_CloudTrail-Digest_eu-west-1_trail_eu-west-1_{stamp}.json.gz"
    )


@dataclass
class Signer:
    """A test key pair standing in for CloudTrail's (whose private half AWS keeps)."""

    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    @property
    def fingerprint(self) -> str:
        return hashlib.md5(self.der).hexdigest()

    @property
    def der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )

    def public_keys(self) -> bytes:
        """What `aws cloudtrail list-public-keys --output json` prints."""
        return json.dumps(
            {
                "PublicKeyList": [
                    {
                        "Value": base64.b64encode(self.der).decode(),
                        "ValidityStartTime": "2026-01-01T00:00:00Z",
                        "ValidityEndTime": "2027-01-01T00:00:00Z",
                        "Fingerprint": self.fingerprint,
                    }
                ]
            }
        ).encode()

    def sign(self, body: dict[str, Any], content: bytes) -> str:
        previous = body["previousDigestSignature"] or "null"
        text = (
            f"{body['digestEndTime']}\n{body['digestS3Bucket']}/{body['digestS3Object']}\n"
            f"{hashlib.sha256(content).hexdigest()}\n{previous}"
        ).encode()
        return self.key.sign(text, padding.PKCS1v15(), hashes.SHA256()).hex()


@dataclass
class Trail:
    """A bucket's worth of CloudTrail files: log files and a chain of signed digests."""

    signer: Signer
    files: dict[str, bytes] = field(default_factory=dict)  # key -> bytes (gzip)
    signatures: dict[str, str] = field(default_factory=dict)  # digest key -> hex
    _previous: tuple[str, bytes, str] | None = None  # key, content, signature

    def hour(self, stamp: str, logs: list[list[dict[str, Any]]]) -> str:
        """Deliver one log file per list of records, then that hour's digest; the digest's
        key."""
        entries = []
        for number, records in enumerate(logs):
            key = log_key("eu-west-1", stamp, number)
            content = envelope(records)
            self.files[key] = gzip.compress(content)
            entries.append(
                {
                    "s3Bucket": BUCKET,
                    "s3Object": key,
                    "hashValue": hashlib.sha256(content).hexdigest(),
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": "2026-11-30T10:00:00Z",
                    "oldestEventTime": "2026-11-30T10:00:00Z",
                }
            )
        key = digest_key(stamp)
        previous = self._previous
        body = {
            "awsAccountId": ACCOUNT,
            "digestStartTime": "2026-11-30T09:00:00Z",
            "digestEndTime": f"2026-11-30T{stamp[9:11]}:00:00Z",
            "digestS3Bucket": BUCKET,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": self.signer.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": "2026-11-30T10:00:00Z",
            "oldestEventTime": "2026-11-30T10:00:00Z",
            "previousDigestS3Bucket": BUCKET if previous else None,
            "previousDigestS3Object": previous[0] if previous else None,
            "previousDigestHashValue": (
                hashlib.sha256(previous[1]).hexdigest() if previous else None
            ),
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous[2] if previous else None,
            "logFiles": entries,
        }
        content = compact(body)
        signature = self.signer.sign(body, content)
        self.files[key] = gzip.compress(content)
        self.signatures[key] = signature
        self._previous = (key, content, signature)
        return key

    def write(self, root: Path) -> Path:
        """The bucket copied to disk, each digest's signature beside it."""
        for key, data in self.files.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if key in self.signatures:
                path.with_name(path.name + ".signature").write_text(self.signatures[key])
        return root
