"""CloudTrail log file integrity validation: digest files, their signatures and chain.

With validation on, CloudTrail writes a digest file every hour: the SHA-256 of each log
file it delivered in that hour (of the file's uncompressed content), and the hash and
signature of the previous digest, which makes the digests a chain. Each digest is
signed with SHA256withRSA over::

    digestEndTime \\n digestS3Bucket/digestS3Object \\n hex(SHA-256(digest content)) \\n
    previousDigestSignature (or "null" for the first)

The signature itself is not in the file: S3 keeps it as the object's metadata
(``x-amz-meta-signature``, hex). Read from S3, it is taken from there; for a digest
copied to disk, it is read from ``DIGEST.signature`` beside the file (what
``aws s3api head-object --query Metadata.signature`` prints). The public keys are the
ones ``aws cloudtrail list-public-keys`` gives, saved to a file: each is matched to a
digest by its fingerprint.

This module is pure: it is given the files' bytes and says what it found.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from trailseal.errors import ConfigError
from trailseal.ingest.records import decompress

PublicKeys = dict[str, rsa.RSAPublicKey]  # by fingerprint
_Parsed = tuple["Digest", dict[str, Any], bytes]


def load_public_keys(data: bytes, name: str) -> PublicKeys:
    """The keys of ``aws cloudtrail list-public-keys`` output (JSON), by fingerprint."""
    try:
        listed = orjson.loads(data)["PublicKeyList"]
        found: PublicKeys = {
            str(item["Fingerprint"]): _rsa(base64.b64decode(item["Value"], validate=True))
            for item in listed
        }
    except (
        orjson.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
        binascii.Error,
        UnsupportedAlgorithm,
    ) as exc:
        raise ConfigError(
            f"{name}: not the output of `aws cloudtrail list-public-keys` "
            f"(a PublicKeyList of base64 DER RSA keys with fingerprints): {exc}"
        ) from None
    if not found:
        raise ConfigError(f"{name}: the PublicKeyList is empty")
    return found


def _rsa(der: bytes) -> rsa.RSAPublicKey:
    key = load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError(f"a {type(key).__name__}, not an RSA key")
    return key


@dataclass(frozen=True)
class Digest:
    """One digest file as delivered: where it is, its bytes and its signature (hex)."""

    name: str
    data: bytes
    signature: str | None


@dataclass
class Finding:
    """One file found wanting: a digest or a log file, what is wrong, and why."""

    kind: str  # "digest" or "log"
    name: str
    problem: str  # missing, altered, unsigned, bad-signature, broken-chain, unreadable
    reason: str


@dataclass
class DigestReport:
    """What validation found over every digest given."""

    digests: int = 0
    digests_valid: int = 0
    logs: int = 0
    logs_valid: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "digests": self.digests,
            "digests_valid": self.digests_valid,
            "log_files": self.logs,
            "log_files_valid": self.logs_valid,
            "findings": [
                {"kind": f.kind, "name": f.name, "problem": f.problem, "reason": f.reason}
                for f in self.findings
            ],
        }


def _s3_path(bucket: Any, key: Any) -> str:
    return f"s3://{bucket}/{key}"


def _content(data: bytes, name: str) -> bytes:
    return decompress(data, name)


def content_hash(content: bytes) -> str:
    """What a digest says of a log file: the SHA-256 of its uncompressed content."""
    return hashlib.sha256(content).hexdigest()


def string_to_sign(body: Mapping[str, Any], content: bytes) -> bytes:
    """What CloudTrail signs for one digest (``content`` uncompressed)."""
    previous = body.get("previousDigestSignature") or "null"
    return (
        f"{body['digestEndTime']}\n{body['digestS3Bucket']}/{body['digestS3Object']}\n"
        f"{hashlib.sha256(content).hexdigest()}\n{previous}"
    ).encode()


def _signed(digest: Digest, body: Mapping[str, Any], content: bytes, keys: PublicKeys) -> str:
    """Why the digest's signature fails, or '' when it holds."""
    if not digest.signature:
        return "unsigned"
    key = keys.get(str(body.get("digestPublicKeyFingerprint")))
    if key is None:
        return "bad-signature: no public key with fingerprint " + str(
            body.get("digestPublicKeyFingerprint")
        )
    try:
        key.verify(
            binascii.unhexlify(digest.signature.strip()),
            string_to_sign(body, content),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return "bad-signature: the signature does not verify with the public key"
    return ""


def _log_name(entry: Mapping[str, Any]) -> str:
    return _s3_path(entry.get("s3Bucket"), entry.get("s3Object"))


def find_log(files: Mapping[str, str], wanted: str) -> str | None:
    """A log file's hash by its S3 path: the same path, or a local copy whose path ends
    with the object's key, or failing both the same file name."""
    if wanted in files:
        return files[wanted]
    key = wanted.removeprefix("s3://").partition("/")[2]
    for name, data in files.items():
        if name.endswith("/" + key):
            return data
    base = PurePosixPath(key).name
    for name, data in files.items():
        if PurePosixPath(name.replace("\\", "/")).name == base:
            return data
    return None


_REQUIRED = ("digestEndTime", "digestS3Bucket", "digestS3Object", "logFiles")


def _body(content: bytes) -> dict[str, Any]:
    body = orjson.loads(content)
    if not isinstance(body, dict):
        raise TypeError("not a JSON object")
    missing = [name for name in _REQUIRED if name not in body]
    if missing:
        raise KeyError(f"no {', '.join(missing)}")
    return body


def _read(digests: Sequence[Digest], report: DigestReport) -> list[_Parsed]:
    parsed = []
    for digest in digests:
        report.digests += 1
        try:
            content = _content(digest.data, digest.name)
            parsed.append((digest, _body(content), content))
        except (ConfigError, orjson.JSONDecodeError, TypeError, KeyError) as exc:
            report.findings.append(
                Finding("digest", digest.name, "unreadable", f"not a CloudTrail digest: {exc}")
            )
    return parsed


def validate(digests: Sequence[Digest], logs: Mapping[str, str], keys: PublicKeys) -> DigestReport:
    """Check every digest (signature, chain) and every log file each names (present,
    unchanged). ``logs`` maps each log file's name (S3 URL or path) to the SHA-256 (hex)
    of its uncompressed content (:func:`content_hash`)."""
    report = DigestReport()
    parsed = _read(digests, report)
    by_path = {_s3_path(b["digestS3Bucket"], b["digestS3Object"]): (d, b, c) for d, b, c in parsed}
    ordered = sorted(parsed, key=lambda found: str(found[1]["digestEndTime"]))
    for position, (digest, body, content) in enumerate(ordered):
        problems = []
        if why := _signed(digest, body, content, keys):
            problem, _, detail = why.partition(": ")
            problems.append(Finding("digest", digest.name, problem, detail or why))
        problems += _chain(digest, body, by_path, first=position == 0)
        report.findings += problems
        report.digests_valid += not problems
        for entry in body.get("logFiles") or []:
            _check_log(digest, entry, logs, report)
    return report


def _check_log(
    digest: Digest, entry: Mapping[str, Any], logs: Mapping[str, str], report: DigestReport
) -> None:
    report.logs += 1
    wanted = _log_name(entry)
    actual = find_log(logs, wanted)
    if actual is None:
        report.findings.append(
            Finding("log", wanted, "missing", f"named by {digest.name}, not found")
        )
        return
    if actual != entry.get("hashValue"):
        said = entry.get("hashValue")
        report.findings.append(
            Finding("log", wanted, "altered", f"its SHA-256 is {actual}; {digest.name} says {said}")
        )
        return
    report.logs_valid += 1


def _chain(
    digest: Digest,
    body: Mapping[str, Any],
    by_path: Mapping[str, _Parsed],
    *,
    first: bool,
) -> list[Finding]:
    """Whether the digest's link to the one before holds. The first digest of a trail
    links to none, and the earliest digest given may link to one from before the files
    given; any later one must find the digest it names among them."""
    previous_path = _s3_path(body.get("previousDigestS3Bucket"), body.get("previousDigestS3Object"))
    if not body.get("previousDigestS3Object"):
        return []
    found = by_path.get(previous_path)
    if found is None:
        if first:
            return []
        return [
            Finding(
                "digest",
                previous_path,
                "missing",
                f"{digest.name} links to it as the digest before, and it is not among the files",
            )
        ]
    previous, _, previous_content = found
    reasons = []
    if hashlib.sha256(previous_content).hexdigest() != body.get("previousDigestHashValue"):
        reasons.append(f"the hash of {previous.name} is not the one this digest names")
    named = str(body.get("previousDigestSignature") or "")
    if previous.signature and previous.signature.strip() != named:  # none: found unsigned
        reasons.append(f"the signature of {previous.name} is not the one this digest names")
    return [Finding("digest", digest.name, "broken-chain", "; ".join(reasons))] if reasons else []
