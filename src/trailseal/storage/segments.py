"""The cold tier: immutable Parquet segments (zstd) of sealed entries, in a folder or in
S3-compatible object storage under Object Lock.

A segment holds, for each entry it seals, the entry's exact bytes (which still hash to
the leaf the hot store keeps) beside plain columns a query engine reads directly
(DuckDB, Athena, Trino, Spark): ``idx``, ``event_id``, ``received_at``, ``time``,
``actor``, ``action``, ``resource_type``, ``resource_id``, ``outcome``, ``tenant``,
``leaf_hash``. Rows are in index order in small row groups, so reading a few entries
reads a few groups, found by their ``idx`` statistics.

Where segments live is a *location*: a folder path, or ``s3://bucket/prefix``. The
object storage is reached with boto3's own configuration (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ...). Every segment is written once under a name that includes
its SHA-256, never overwritten, and never deleted before the retain-until date its
manifest gives: trailseal keeps that rule itself, whatever the storage would allow.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from trailseal.errors import ConfigError, StorageError

COLUMNS = (
    "idx",
    "event_id",
    "received_at",
    "time",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "tenant",
    "leaf_hash",
    "entry",
)
SCHEMA = pa.schema(
    [
        ("idx", pa.int64()),
        ("event_id", pa.string()),
        ("received_at", pa.string()),
        ("time", pa.string()),
        ("actor", pa.string()),
        ("action", pa.string()),
        ("resource_type", pa.string()),
        ("resource_id", pa.string()),
        ("outcome", pa.string()),
        ("tenant", pa.string()),
        ("leaf_hash", pa.binary(32)),
        ("entry", pa.binary()),
    ]
)
ROW_GROUP = 4096  # a few entries read decompress a few megabytes at most
SUFFIX, MANIFEST_SUFFIX = ".parquet", ".manifest.json"
_OPEN_FILES = 64  # parsed footers kept per process


class ColdStorageError(StorageError):
    """The cold tier's storage refused, is unreachable, or holds a damaged segment."""


def write_segment(columns: Mapping[str, Sequence[object]]) -> bytes:
    """One Parquet segment (zstd) of the given columns (every one of :data:`COLUMNS`),
    rows in index order."""
    table = pa.table({name: columns[name] for name in COLUMNS}, schema=SCHEMA)
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=9,
        row_group_size=ROW_GROUP,
        write_statistics=True,
        use_dictionary=[n for n in COLUMNS if n not in ("entry", "leaf_hash", "event_id")],
    )
    return sink.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def segment_name(first: int, last: int, digest: str) -> str:
    """A segment's name: its index range and the start of its SHA-256 (never reused)."""
    return f"{first:012d}-{last:012d}-{digest[:16]}"


def read_rows(source: pq.ParquetFile, wanted: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
    """(entry bytes, leaf hash) of the ``wanted`` indexes this segment holds."""
    want = sorted(set(wanted))
    if not want:
        return {}
    meta = source.metadata
    groups = []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(0).statistics
        low, high = (stats.min, stats.max) if stats is not None else (None, None)
        if low is None or high is None or any(low <= index <= high for index in want):
            groups.append(group)
    if not groups:
        return {}
    try:
        table = source.read_row_groups(groups, columns=["idx", "leaf_hash", "entry"])
    except pa.ArrowException as exc:
        raise ColdStorageError(f"a segment cannot be read: {exc}") from None
    wanted_set = set(want)
    found: dict[int, tuple[bytes, bytes]] = {}
    for index, leaf, entry in zip(
        table.column(0).to_pylist(),
        table.column(1).to_pylist(),
        table.column(2).to_pylist(),
        strict=True,
    ):
        if index in wanted_set:
            found[int(index)] = (entry, leaf)
    return found


def read_indexes(data: bytes) -> list[int]:
    """The indexes a segment holds, in its order (only that column is decoded)."""
    try:
        source = pq.ParquetFile(io.BytesIO(data))
        if source.schema_arrow.names != list(COLUMNS):
            raise ColdStorageError(
                f"a segment has columns {source.schema_arrow.names}, not a trailseal one"
            )
        return [int(i) for i in source.read(columns=["idx"]).column(0).to_pylist()]
    except pa.ArrowException as exc:
        raise ColdStorageError(f"a segment is not readable Parquet: {exc}") from None


class SegmentStore(Protocol):
    """Where segments are kept. Names are :func:`segment_name`; each segment has its
    manifest beside it (``NAME.manifest.json``)."""

    location: str

    def put(self, name: str, data: bytes, manifest: bytes, retain_until: datetime) -> None: ...
    def get(self, name: str) -> bytes: ...
    def stat(self, name: str) -> tuple[int, str | None] | None:
        """(size in bytes, the SHA-256 the storage keeps beside it, if any); None: absent."""
        ...

    def manifest(self, name: str) -> bytes: ...
    def open(self, name: str, digest: str) -> pq.ParquetFile: ...
    def delete(self, name: str) -> None: ...
    def names(self) -> list[str]: ...


class _Footers:
    """Parsed Parquet footers, the most recently used kept."""

    def __init__(self) -> None:
        self._open: OrderedDict[str, pq.ParquetFile] = OrderedDict()

    def get(self, key: str, path: Path) -> pq.ParquetFile:
        found = self._open.get(key)
        if found is None:
            found = pq.ParquetFile(path)
            self._open[key] = found
            if len(self._open) > _OPEN_FILES:
                self._open.popitem(last=False)
        self._open.move_to_end(key)
        return found


class FolderSegments:
    """Segments as files in a folder, read-only once written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.location = str(folder)
        self._footers = _Footers()

    def _path(self, name: str, suffix: str = SUFFIX) -> Path:
        return self.folder / f"{name}{suffix}"

    def put(self, name: str, data: bytes, manifest: bytes, retain_until: datetime) -> None:
        del retain_until  # kept in the signed manifest; delete() is refused before it
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self._path(name)
            if not path.exists():
                _write_once(path, data)
            elif path.read_bytes() != data:
                raise ColdStorageError(
                    f"{path} exists with other content; a segment is never overwritten"
                )
            # The manifest beside it is a copy for readers; the hot store's is the one
            # trusted. A run killed before recording the segment wrote an earlier copy.
            shipped = self._path(name, MANIFEST_SUFFIX)
            if not shipped.exists() or shipped.read_bytes() != manifest:
                _write_once(shipped, manifest)
        except OSError as exc:
            raise ColdStorageError(f"cannot write segment {name} to {self.folder}: {exc}") from None

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise ColdStorageError(f"segment {name} is missing from {self.folder}") from None
        except OSError as exc:
            raise ColdStorageError(f"cannot read segment {name}: {exc}") from None

    def stat(self, name: str) -> tuple[int, str | None] | None:
        try:
            return self._path(name).stat().st_size, None
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ColdStorageError(f"cannot look up segment {name}: {exc}") from None

    def manifest(self, name: str) -> bytes:
        try:
            return self._path(name, MANIFEST_SUFFIX).read_bytes()
        except OSError as exc:
            raise ColdStorageError(f"cannot read the manifest of segment {name}: {exc}") from None

    def open(self, name: str, digest: str) -> pq.ParquetFile:
        del digest  # a local file is read in place; each entry is checked against its leaf
        path = self._path(name)
        try:
            return self._footers.get(name, path)
        except FileNotFoundError:
            raise ColdStorageError(f"segment {name} is missing from {self.folder}") from None
        except (OSError, pa.ArrowException) as exc:
            raise ColdStorageError(f"segment {name} cannot be read: {exc}") from None

    def delete(self, name: str) -> None:
        for path in (self._path(name), self._path(name, MANIFEST_SUFFIX)):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise ColdStorageError(f"cannot delete segment {name}: {exc}") from None

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name[: -len(SUFFIX)] for p in self.folder.glob(f"*{SUFFIX}"))


def _write_once(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` durably and atomically, then make it read-only."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).chmod(0o444)
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class S3Segments:
    """Segments as objects in an S3-compatible bucket with Object Lock (compliance mode):
    each put sets a retain-until date, and a retention already set is never shortened."""

    def __init__(self, bucket: str, prefix: str, cache: Path) -> None:
        import boto3  # noqa: PLC0415 - only when segments are kept in object storage
        from botocore.config import Config  # noqa: PLC0415

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client: Any = boto3.client(
            "s3",
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
            ),
        )
        self._cache = cache
        self._footers = _Footers()

    def _key(self, name: str, suffix: str = SUFFIX) -> str:
        return f"{self.prefix}/{name}{suffix}" if self.prefix else f"{name}{suffix}"

    def _call(self, doing: str, method: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            return getattr(self._client, method)(**arguments)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            said = f"{error.get('Code')} {error.get('Message', '')}".rstrip()
            raise ColdStorageError(f"{self.location} refused to {doing}: {said}") from None
        except BotoCoreError as exc:
            raise ColdStorageError(f"cannot reach {self.location} to {doing}: {exc}") from None

    def _retention(self, key: str) -> datetime | None:
        """The object's compliance-mode retain-until date (None: none set)."""
        found = self._exists(key) or {}
        until = found.get("ObjectLockRetainUntilDate")
        if found.get("ObjectLockMode") != "COMPLIANCE" or not isinstance(until, datetime):
            return None
        return until

    def _exists(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            return dict(self._client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise ColdStorageError(f"{self.location} refused to look up {key}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - botocore's connection errors share no base
            raise ColdStorageError(f"cannot reach {self.location}: {exc}") from None

    def put(self, name: str, data: bytes, manifest: bytes, retain_until: datetime) -> None:
        for key, content in ((self._key(name), data), (self._key(name, MANIFEST_SUFFIX), manifest)):
            digest = sha256_hex(content)
            existing = self._exists(key)
            if existing is not None and key.endswith(MANIFEST_SUFFIX):
                if existing.get("Metadata", {}).get("sha256") == digest:
                    continue  # a copy for readers: a new version replaces an earlier one
            elif existing is not None:
                if existing.get("Metadata", {}).get("sha256") != digest:
                    raise ColdStorageError(
                        f"{self.location}/{key} exists with other content; a segment is "
                        "never overwritten"
                    )
                until = self._retention(key)
                if until is not None and until >= retain_until:
                    continue  # stored already, and never shortened
            self._call(
                f"store {key}",
                "put_object",
                Bucket=self.bucket,
                Key=key,
                Body=content,
                Metadata={"sha256": digest},
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until.astimezone(UTC),
            )
            until = self._retention(key)
            if until is None or until < retain_until.replace(microsecond=0):
                raise ColdStorageError(
                    f"{self.location}/{key} was stored without compliance-mode retention until "
                    f"{retain_until.isoformat()} (it says {until}); is Object Lock enabled on "
                    "the bucket?"
                )

    def get(self, name: str) -> bytes:
        found = self._call(
            f"read segment {name}", "get_object", Bucket=self.bucket, Key=self._key(name)
        )
        return bytes(found["Body"].read())

    def stat(self, name: str) -> tuple[int, str | None] | None:
        found = self._exists(self._key(name))
        if found is None:
            return None
        return int(found.get("ContentLength", -1)), found.get("Metadata", {}).get("sha256")

    def manifest(self, name: str) -> bytes:
        found = self._call(
            f"read the manifest of {name}",
            "get_object",
            Bucket=self.bucket,
            Key=self._key(name, MANIFEST_SUFFIX),
        )
        return bytes(found["Body"].read())

    def open(self, name: str, digest: str) -> pq.ParquetFile:
        """The segment from the local cache (content-addressed by its SHA-256), fetched and
        checked against ``digest`` when not there yet."""
        path = self._cache / f"{digest}{SUFFIX}"
        if not path.exists():
            data = self.get(name)
            if sha256_hex(data) != digest:
                raise ColdStorageError(
                    f"segment {name} in {self.location} does not match its manifest's SHA-256; "
                    "run `trailseal verify`"
                )
            self._cache.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                _write_once(path, data)
        try:
            return self._footers.get(digest, path)
        except (OSError, pa.ArrowException) as exc:
            raise ColdStorageError(f"segment {name} cannot be read: {exc}") from None

    def delete(self, name: str) -> None:
        """Every version of the segment and its manifest (a plain delete on a versioned
        bucket would only hide them)."""
        for key in (self._key(name), self._key(name, MANIFEST_SUFFIX)):
            found = self._call(
                f"list versions of {key}", "list_object_versions", Bucket=self.bucket, Prefix=key
            )
            for version in [*found.get("Versions", []), *found.get("DeleteMarkers", [])]:
                if version.get("Key") != key:
                    continue
                self._call(
                    f"delete {key}",
                    "delete_object",
                    Bucket=self.bucket,
                    Key=key,
                    VersionId=version["VersionId"],
                )

    def names(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        prefix = f"{self.prefix}/" if self.prefix else ""
        while True:
            arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                arguments["ContinuationToken"] = token
            found = self._call("list segments", "list_objects_v2", **arguments)
            for item in found.get("Contents", []):
                key = str(item["Key"])[len(prefix) :]
                if key.endswith(SUFFIX) and "/" not in key:
                    names.append(key[: -len(SUFFIX)])
            if not found.get("IsTruncated"):
                return sorted(names)
            token = found.get("NextContinuationToken")


def cache_folder() -> Path:
    """Where segments fetched from object storage are kept (checked, by SHA-256)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trailseal" / "segments"


def open_segments(location: str) -> SegmentStore:
    """The segment store at ``location``: a folder, or ``s3://bucket/prefix``."""
    if location.startswith("s3://"):
        parts = urlsplit(location)
        if not parts.netloc:
            raise ConfigError(f"{location!r} names no bucket; write s3://BUCKET/PREFIX")
        return S3Segments(parts.netloc, parts.path, cache_folder())
    if "://" in location:
        raise ConfigError(f"{location!r} is not a folder or an s3:// location")
    return FolderSegments(Path(location))
