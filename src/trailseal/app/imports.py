"""Imports from other systems' audit trails: AWS CloudTrail (files or S3) and, through
:mod:`trailseal.app.terraform`, Terraform Cloud.

Each record appends through the one append pipeline, as the caller that imports (it
needs the writer's right), so the tenant rule and the duplicate check hold as for any
append. A record already in the log is counted, not appended again, so a run repeated
over the same files imports nothing twice. What cannot be imported is listed with its
file, position and reason; nothing good in the same file is lost for it.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from trailseal.access import Permission
from trailseal.app.caller import Caller
from trailseal.app.entries import Entries
from trailseal.app.recorder import Recorder
from trailseal.errors import ConfigError, EventError, TrailsealError
from trailseal.events import event_from_mapping
from trailseal.ingest.cloudtrail import Tenancy, event_time, to_event
from trailseal.ingest.digest import (
    Digest,
    DigestReport,
    PublicKeys,
    content_hash,
    load_public_keys,
    validate,
)
from trailseal.ingest.records import Record, decompress, records_of
from trailseal.ingest.sources import Delivery, deliveries
from trailseal.ingest.terraform import DEFAULT_URL, RETAINED_DAYS, pages
from trailseal.ingest.terraform import to_event as terraform_event
from trailseal.layout import DataLayout
from trailseal.ledger.bulk import worker_pool
from trailseal.ledger.entry import Prepared
from trailseal.reports.render import write_whole

__all__ = [
    "DEFAULT_URL",
    "ImportSummary",
    "Imports",
    "Refused",
    "Tenancy",
    "TerraformSource",
    "load_sources",
]

BATCH = 2_000  # events a check-and-commit
DIGEST_CHECKED = "trailseal.cloudtrail.validated"  # one per run that checked digests
DIGEST_FINDING = "trailseal.cloudtrail.finding"  # one per file found missing, altered, ...
ImportProgress = Callable[[int, int, int], object]  # files done, files, records read


@dataclass(frozen=True)
class Refused:
    """A record (FILE#N) or a whole file that was not imported, and why."""

    where: str
    reason: str


@dataclass
class ImportSummary:
    """What an import did."""

    files: int = 0
    records: int = 0
    imported: int = 0
    duplicates: int = 0
    refused: list[Refused] = field(default_factory=list)
    first_index: int | None = None
    size: int = 0
    digests: DigestReport | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "files": self.files,
            "records": self.records,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "refused": len(self.refused),
            "first_index": self.first_index,
            "size": self.size,
            "refusals": [{"where": r.where, "reason": r.reason} for r in self.refused],
        }
        if self.digests is not None:
            found["digests"] = self.digests.to_json()
        if self.notes:
            found["notes"] = self.notes
        return found


@dataclass(frozen=True)
class _Made:
    """What one record became: a prepared event and its text's SHA-256, or a refusal."""

    where: str
    text_hash: bytes
    prepared: Prepared | None
    refused: str | None


@dataclass(frozen=True)
class _File:
    """One delivery file read: its content's SHA-256 (what a digest names) and what each
    of its records became, or why the file could not be read at all."""

    name: str
    content_hash: str | None
    made: list[_Made]
    refused: str | None


def _made(record: Record, make: Callable[[Record], dict[str, Any]]) -> _Made:
    try:
        event = event_from_mapping(make(record))
    except EventError as exc:
        return _Made(record.where, b"", None, str(exc))
    return _Made(record.where, hashlib.sha256(record.text).digest(), Prepared.of(event), None)


def _cloudtrail_file(name: str, data: bytes, tenancy: Tenancy, hashed: bool) -> _File:
    """One CloudTrail delivery file, read and prepared (in a worker process for many);
    with ``hashed``, its content's SHA-256 too, for the digests to be checked against."""
    try:
        content = decompress(data, name)
        found = list(records_of(content, name))
    except ConfigError as exc:
        return _File(name, None, [], exc.diagnostics())

    def make(record: Record) -> dict[str, Any]:
        return to_event(record.value, record.text, tenancy)

    digest = content_hash(content) if hashed else None
    return _File(name, digest, [_made(r, make) for r in found], None)


@dataclass
class _Pending:
    """Events prepared and not yet appended, each with where its record was."""

    prepared: list[Prepared] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    seen: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # this run's ids


@dataclass
class Imports:
    """Imports of other systems' audit trails into the log."""

    entries: Entries
    recorder: Recorder
    layout: DataLayout
    _last_runs: dict[str, float] = field(default_factory=dict)  # serve's, by organisation

    def cloudtrail(  # noqa: PLR0913 - what to read, whose it is, how to check it, and who hears
        self,
        caller: Caller,
        sources: Sequence[str],
        *,
        tenancy: Tenancy | None = None,
        public_keys: tuple[bytes, str] | None = None,
        s3_client: Any = None,
        progress: ImportProgress | None = None,
    ) -> ImportSummary:
        """Import CloudTrail delivery files (paths, folders or ``s3://BUCKET/PREFIX``).

        With ``public_keys`` (the bytes and name of a saved ``aws cloudtrail
        list-public-keys`` answer) the digest files among the sources are checked, and
        the result recorded as entries of the log's own."""
        self.recorder.authorize(caller, Permission.APPEND)
        keys = load_public_keys(*public_keys) if public_keys else None
        found = deliveries(sources, s3_client)
        digests = [d for d in found if d.is_digest]
        logs = [d for d in found if not d.is_digest]
        summary = ImportSummary(files=len(logs))
        hashes: dict[str, str] = {}
        pending = _Pending()
        files = _files(logs, tenancy or Tenancy(), summary, hashed=bool(digests and keys))
        for done, read in enumerate(files, start=1):
            if read.content_hash is not None:
                hashes[read.name] = read.content_hash
            for made in read.made:
                summary.records += 1
                self._add(made, pending, summary)
                if len(pending.prepared) >= BATCH:
                    self._commit(caller, pending, summary)
            if progress is not None:
                progress(done, len(logs), summary.records)
        self._commit(caller, pending, summary)
        summary.size = self.entries.size()
        if digests and keys is None:
            summary.notes.append(
                f"{len(digests)} digest files found and not checked: give the public keys "
                "(`aws cloudtrail list-public-keys` saved to a file) to check them"
            )
        elif digests and keys is not None:
            summary.digests = self._validate(caller, digests, hashes, keys, sources)
        elif keys is not None:
            summary.notes.append("public keys given, but no digest files among the sources")
        return summary

    def sources(self) -> list[TerraformSource]:
        """The organisations DATA/imports.yaml names for `serve` to import."""
        return load_sources(self.layout.imports_config)

    def run_due(
        self, caller: Caller
    ) -> list[tuple[TerraformSource, ImportSummary | TrailsealError]]:
        """Import each configured organisation whose interval has passed (for `serve`);
        one that fails (an unreachable API, a refused token) is given with its error and
        tried again at its next interval, and the others go on."""
        done: list[tuple[TerraformSource, ImportSummary | TrailsealError]] = []
        for source in self.sources():
            last = self._last_runs.get(source.org)
            if last is not None and time.monotonic() - last < source.every:
                continue
            self._last_runs[source.org] = time.monotonic()
            try:
                done.append((source, self.terraform(caller, source)))
            except TrailsealError as exc:
                done.append((source, exc))
        return done

    @staticmethod
    def _add(made: _Made, pending: _Pending, summary: ImportSummary) -> None:
        """Add a record's prepared event to those pending, unless it was refused or this
        run already has it (the same text: a duplicate; other text: refused)."""
        if made.prepared is None:
            summary.refused.append(Refused(made.where, made.refused or "refused"))
            return
        event_id = made.prepared.event_id
        earlier = pending.seen.get(event_id)
        if earlier is not None:
            if earlier[1] == made.text_hash:
                summary.duplicates += 1
            else:
                summary.refused.append(
                    Refused(made.where, f"id {event_id!r} is also {earlier[0]}, with other content")
                )
            return
        pending.seen[event_id] = (made.where, made.text_hash)
        pending.prepared.append(made.prepared)
        pending.where.append(made.where)

    def _commit(self, caller: Caller, pending: _Pending, summary: ImportSummary) -> None:
        if not pending.prepared:
            return
        numbers = list(range(1, len(pending.prepared) + 1))
        batch = self.entries.check_prepared(caller, pending.prepared, numbers)
        outcome = self.entries.commit(batch, partial=True)
        summary.imported += outcome.appended
        summary.duplicates += outcome.duplicates
        if summary.first_index is None and outcome.appended:
            summary.first_index = outcome.first_index
        for problem in outcome.problems:
            error = problem.error
            reason = error.message if isinstance(error, EventError) else str(error)
            summary.refused.append(Refused(pending.where[problem.line - 1], reason))
        pending.prepared.clear()
        pending.where.clear()

    def _validate(
        self,
        caller: Caller,
        digests: Sequence[Delivery],
        hashes: dict[str, str],
        keys: PublicKeys,
        sources: Sequence[str],
    ) -> DigestReport:
        given = []
        for delivery in digests:
            try:
                given.append(Digest(delivery.name, delivery.read(), delivery.signature()))
            except (OSError, ConfigError):
                given.append(Digest(delivery.name, b"", None))  # found unreadable
        report = validate(given, hashes, keys)
        for finding in report.findings:
            self.recorder.record(
                DIGEST_FINDING,
                caller,
                resource={"type": f"cloudtrail.{finding.kind}", "id": finding.name[:256]},
                result="failure",
                reason=f"{finding.problem}: {finding.reason}",
                labels={"problem": finding.problem},
            )
        self.recorder.record(
            DIGEST_CHECKED,
            caller,
            resource={"type": "cloudtrail.digests", "count": report.digests},
            result="success" if report.ok else "failure",
            reason=(
                f"{report.digests_valid}/{report.digests} digest files and "
                f"{report.logs_valid}/{report.logs} log files valid"
            ),
            labels={"sources": " ".join(sources)[:256], "findings": len(report.findings)},
        )
        return report

    def terraform(  # noqa: PLR0913 - the source, where its cursor is, and what stands in for the network
        self,
        caller: Caller,
        source: TerraformSource,
        *,
        now: datetime | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], object] = time.sleep,
        progress: ImportProgress | None = None,
    ) -> ImportSummary:
        """Import an organisation's audit trail from where the last import ended (the
        cursor), page by page; the cursor moves only once every page is in the log."""
        self.recorder.authorize(caller, Permission.APPEND)
        token = source.token()
        cursor = self.layout.import_cursor("terraform", source.org)
        now = now or datetime.now(UTC)
        last = _read_cursor(cursor)
        summary = ImportSummary()
        if last is not None and now - last > timedelta(days=RETAINED_DAYS):
            summary.notes.append(
                f"behind the API's {RETAINED_DAYS}-day window: the last import ended at "
                f"{last.isoformat()}; events from then until "
                f"{(now - timedelta(days=RETAINED_DAYS)).isoformat()} may no longer be available"
            )
        # A second back, so events of the same moment as the last are asked for again (and
        # found already in the log) rather than missed.
        since = _since(last - timedelta(seconds=1)) if last is not None else None
        newest = last
        pending = _Pending()

        def make(record: Record) -> dict[str, Any]:
            return terraform_event(record.value, record.text, source.org)

        own = client is None
        http = client or httpx.Client(
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/vnd.api+json",
            },
            timeout=30,
        )
        try:
            for page in pages(http, source.url, since, sleep):
                summary.files += 1
                for record in page.records:
                    summary.records += 1
                    self._add(_made(record, make), pending, summary)
                    moment = _record_time(record)
                    if moment is not None and (newest is None or moment > newest):
                        newest = moment
                self._commit(caller, pending, summary)
                if progress is not None:
                    progress(page.number, page.total_pages or page.number, summary.records)
        finally:
            if own:
                http.close()
        summary.size = self.entries.size()
        if newest is not None and newest != last:
            _write_cursor(cursor, newest, source.org)
        return summary


def _files(
    logs: Sequence[Delivery], tenancy: Tenancy, summary: ImportSummary, *, hashed: bool
) -> Iterator[_File]:
    """Each delivery file read and prepared, in order: in worker processes (a few files
    ahead) when there are several and more than one core, so mapping overlaps appending.
    A file that cannot be read is refused whole, named."""
    pool = worker_pool() if len(logs) > 1 else None
    ahead: deque[Future[_File]] = deque()
    try:
        for delivery in logs:
            try:
                data = delivery.read()
            except (OSError, ConfigError) as exc:
                reason = exc.diagnostics() if isinstance(exc, TrailsealError) else str(exc)
                ahead.append(_done(_File(delivery.name, None, [], reason)))
            else:
                if pool is None:
                    ahead.append(_done(_cloudtrail_file(delivery.name, data, tenancy, hashed)))
                else:
                    ahead.append(
                        pool.submit(_cloudtrail_file, delivery.name, data, tenancy, hashed)
                    )
            while len(ahead) > 4 or (ahead and pool is None):
                yield _result(ahead.popleft(), summary)
        while ahead:
            yield _result(ahead.popleft(), summary)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _done(found: _File) -> Future[_File]:
    future: Future[_File] = Future()
    future.set_result(found)
    return future


def _result(future: Future[_File], summary: ImportSummary) -> _File:
    found = future.result()
    if found.refused is not None:
        summary.refused.append(Refused(found.name, found.refused))
    return found


# -- Terraform Cloud ------------------------------------------------------------------------


@dataclass(frozen=True)
class TerraformSource:
    """One organisation's audit trail, as DATA/imports.yaml names it for `serve`."""

    org: str
    token_file: Path
    url: str = DEFAULT_URL
    every: int = 300  # seconds between imports

    def token(self) -> str:
        try:
            token = self.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{self.token_file}: cannot read the token: {exc}") from None
        if not token or any(c.isspace() for c in token):
            raise ConfigError(f"{self.token_file}: holds no token (one line, no spaces)")
        return token


def load_sources(path: Path) -> list[TerraformSource]:
    """The Terraform Cloud organisations DATA/imports.yaml names (none without the file)::

    terraform:
      - org: acme
        token_file: /etc/trailseal/acme.token
        url: https://app.terraform.io   # the default
        every: 5m                        # the default
    """
    try:
        found = yaml.safe_load(path.read_text()) if path.exists() else None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]}") from None
    if found is None:
        return []
    if not isinstance(found, dict) or set(found) - {"terraform"}:
        raise ConfigError(f"{path}: the only key is terraform, a list of organisations")
    listed = found.get("terraform") or []
    if not isinstance(listed, list):
        raise ConfigError(f"{path}: terraform is a list of organisations")
    sources = []
    for number, item in enumerate(listed, start=1):
        where = f"{path}: terraform[{number}]"
        if not isinstance(item, dict) or set(item) - {"org", "token_file", "url", "every"}:
            raise ConfigError(f"{where}: has only org, token_file, url and every")
        if not isinstance(item.get("org"), str) or not isinstance(item.get("token_file"), str):
            raise ConfigError(f"{where}: org and token_file are required")
        try:
            every = _seconds(str(item.get("every", "5m")))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        token_file = Path(item["token_file"])
        if not token_file.is_absolute():
            token_file = path.parent / token_file
        sources.append(
            TerraformSource(item["org"], token_file, str(item.get("url", DEFAULT_URL)), every)
        )
    return sources


def _seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise ValueError(f"every: {text!r} is not an interval like 30s, 5m or 1h")
    return int(text[:-1]) * units[text[-1]]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _since(moment: datetime) -> str:
    """As the API asks: UTC, ISO 8601 with milliseconds."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _read_cursor(path: Path) -> datetime | None:
    try:
        return _moment(orjson.loads(path.read_bytes())["since"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: unreadable cursor ({exc}); delete it to import the last 14 days again "
            "(nothing is imported twice)"
        ) from None


def _write_cursor(path: Path, since: datetime, org: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"source": "terraform", "org": org, "since": since.isoformat()}
    write_whole(path, orjson.dumps(body, option=orjson.OPT_INDENT_2))


def _record_time(record: Record) -> datetime | None:
    stamp = record.value.get("timestamp") if isinstance(record.value, dict) else None
    try:
        return _moment(event_time(stamp))
    except EventError:
        return None
