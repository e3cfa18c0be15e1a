"""Where delivery files come from: local files and folders, or an S3 bucket and prefix.

A folder is read recursively, in name order, taking the files a log source writes
(``.json``, ``.jsonl``, ``.ndjson``, each perhaps ``.gz``); a file named outright is
read whatever its name. ``s3://BUCKET/PREFIX`` lists every object under the prefix
(boto3, with the usual AWS credentials and region settings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trailseal.errors import ConfigError

SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
DIGEST_MARK = "CloudTrail-Digest"  # AWS writes digests under .../CloudTrail-Digest/...


@dataclass(frozen=True)
class Delivery:
    """One file to read: its name (path or s3:// URL), and how to read its bytes."""

    name: str
    read: Callable[[], bytes]
    signature: Callable[[], str | None]  # a CloudTrail digest's (S3 metadata, or DIGEST.signature)

    @property
    def is_digest(self) -> bool:
        return DIGEST_MARK in self.name


def _sidecar(path: Path) -> Callable[[], str | None]:
    """The signature saved beside a digest copied from S3 (``DIGEST.signature``)."""

    def read() -> str | None:
        try:
            return path.with_name(path.name + ".signature").read_text().strip() or None
        except FileNotFoundError:
            return None

    return read


def _local(path: Path) -> list[Delivery]:
    if path.is_dir():
        found = sorted(
            p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES)
        )
        return [Delivery(str(p), p.read_bytes, _sidecar(p)) for p in found]
    if path.is_file():
        return [Delivery(str(path), path.read_bytes, _sidecar(path))]
    raise ConfigError(f"{path}: no such file or folder")


def _bucket(url: str, client: Any = None) -> list[Delivery]:
    """Every object under ``s3://BUCKET/PREFIX``."""
    import boto3  # noqa: PLC0415 - only an S3 import needs it
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ConfigError(f"{url}: an S3 source is s3://BUCKET/PREFIX")
    s3 = client or boto3.client("s3")
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"{url}: cannot list the bucket: {exc}") from None

    def reader(key: str) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except (BotoCoreError, ClientError) as exc:
                raise ConfigError(f"s3://{bucket}/{key}: cannot read: {exc}") from None
            return body

        return read

    def signature(key: str) -> Callable[[], str | None]:
        def read() -> str | None:
            try:
                found: str | None = s3.head_object(Bucket=bucket, Key=key)["Metadata"].get(
                    "signature"
                )
            except (BotoCoreError, ClientError) as exc:
                raise ConfigError(f"s3://{bucket}/{key}: cannot read: {exc}") from None
            return found

        return read

    return [
        Delivery(f"s3://{bucket}/{key}", reader(key), signature(key))
        for key in sorted(keys)
        if not key.endswith("/")
    ]


def deliveries(sources: Sequence[str], s3_client: Any = None) -> list[Delivery]:
    """Every file the sources name, each once, checked to exist before any is read."""
    found: dict[str, Delivery] = {}
    for source in sources:
        listed = _bucket(source, s3_client) if source.startswith("s3://") else _local(Path(source))
        for delivery in listed:
            found.setdefault(delivery.name, delivery)
    return list(found.values())
