"""Imports from other systems' audit trails: AWS CloudTrail (files or S3) and, through
:mod:`trailseal.app.terraform`, Terraform Cloud.

Each record appends through the one append pipeline, as the caller that imports (it
needs the writer's right), so the tenant rule and the duplicate check hold as for any
append. A record already in the log is counted, not appended again, so a run repeated
over the same files imports nothing twice. What cannot be imported is listed with its
file, position and reason; nothing good in the same file is lost for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from trailseal.access import Permission
from trailseal.app.caller import Caller
from trailseal.app.entries import Entries
from trailseal.app.recorder import Recorder
from trailseal.errors import ConfigError, EventError, TrailsealError
from trailseal.events import Event, event_from_mapping
from trailseal.ingest.cloudtrail import Tenancy, to_event
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


@dataclass
class _Pending:
    """Events built and not yet appended, each with where its record was."""

    events: list[Event] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    seen: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # this run's ids


@dataclass
class Imports:
    """Imports of other systems' audit trails into the log."""

    entries: Entries
    recorder: Recorder

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
        for done, records in enumerate(self._read(logs, summary, hashes), start=1):
            for record in records:
                summary.records += 1
                self._build(record, tenancy or Tenancy(), pending, summary)
                if len(pending.events) >= BATCH:
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

    def _read(
        self, logs: Sequence[Delivery], summary: ImportSummary, hashes: dict[str, str]
    ) -> Iterator[list[Record]]:
        """Each log file's records; a file that cannot be read is refused whole, named."""
        for delivery in logs:
            try:
                content = decompress(delivery.read(), delivery.name)
                hashes[delivery.name] = content_hash(content)
                found = list(records_of(content, delivery.name))
            except (OSError, ConfigError) as exc:
                reason = exc.diagnostics() if isinstance(exc, TrailsealError) else str(exc)
                summary.refused.append(Refused(delivery.name, reason))
                found = []
            yield found

    @staticmethod
    def _build(record: Record, tenancy: Tenancy, pending: _Pending, summary: ImportSummary) -> None:
        try:
            raw = to_event(record.value, record.text, tenancy)
            event = event_from_mapping(raw)
        except EventError as exc:
            summary.refused.append(Refused(record.where, str(exc)))
            return
        earlier = pending.seen.get(event.id)
        if earlier is not None:
            if earlier[1] == record.text:
                summary.duplicates += 1
            else:
                summary.refused.append(
                    Refused(
                        record.where,
                        f"eventID {event.id!r} is also {earlier[0]}, with other content",
                    )
                )
            return
        pending.seen[event.id] = (record.where, record.text)
        pending.events.append(event)
        pending.where.append(record.where)

    def _commit(self, caller: Caller, pending: _Pending, summary: ImportSummary) -> None:
        if not pending.events:
            return
        numbers = list(range(1, len(pending.events) + 1))
        batch = self.entries.check_events(caller, pending.events, numbers)
        outcome = self.entries.commit(batch, partial=True)
        summary.imported += outcome.appended
        summary.duplicates += outcome.duplicates
        if summary.first_index is None and outcome.appended:
            summary.first_index = outcome.first_index
        for problem in outcome.problems:
            error = problem.error
            reason = error.message if isinstance(error, EventError) else str(error)
            summary.refused.append(Refused(pending.where[problem.line - 1], reason))
        pending.events.clear()
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
