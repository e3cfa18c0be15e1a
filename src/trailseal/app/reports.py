"""Reports and evidence bundles, for the principal that asks.

A report reads through a source scoped to the caller (its tenant only, with the role
table applied), and producing one is itself an entry (``report.produce``: who asked for
which report with which parameters). A bundle holds the rendered report, every entry it
cites with its inclusion proof against the latest checkpoint, and a manifest signed
with the log's key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from trailseal.access import GRANTS, Permission, PrincipalStore, entry_tenant
from trailseal.app.caller import Caller
from trailseal.app.entries import Entries
from trailseal.app.recorder import Recorder
from trailseal.checkpoints import Checkpoint
from trailseal.errors import ConfigError, NotFoundError, StorageError
from trailseal.ledger import EntryView, Ledger, SearchFilter
from trailseal.reports import (
    FORMATS,
    REPORTS,
    BundleParts,
    DocumentCheck,
    Environment,
    Producer,
    Report,
    build,
    check_document,
    render,
)
from trailseal.reports.model import zone
from trailseal.reports.render import write_whole
from trailseal.reports.schedule import Schedule, ScheduleConfig, load_schedules
from trailseal.storage import describe

if TYPE_CHECKING:
    from trailseal.detect.context import Shift
    from trailseal.detect.store import Alert, DetectionStore

Progress = Callable[[int], object]
_EVERYTHING = 2**62
_PRIVATE_PARAMS = ("tickets",)  # file contents: recorded by name and hash, not whole


@dataclass
class _Scoped:
    """What one report may read: the caller's entries, alerts and context."""

    reports: Reports
    caller: Caller

    def find(self, query: SearchFilter, *, details: bool = True) -> Iterator[EntryView]:
        scoped = self.reports.entries.scoped(self.caller, replace(query, limit=_EVERYTHING))
        return self.reports.ledger.find(scoped, details=details)

    def size(self) -> int:
        return self.reports.ledger.size()

    def roster(self) -> Mapping[str, Shift]:
        from trailseal.detect.config import load_config  # noqa: PLC0415 - detection's files
        from trailseal.detect.context import load_roster  # noqa: PLC0415

        config = load_config(self.reports.ledger.settings.data_dir)
        return load_roster(config.roster) if config.roster else {}

    def alerts(self) -> list[Alert]:
        try:
            store = self.reports.detection()
        except StorageError:
            return []  # detection never ran here: no alerts
        try:
            return [a for a in store.alerts() if self.caller.sees(a.tenant)]
        finally:
            store.close()

    def environment(self) -> Environment:
        return self.reports.environment()


@dataclass
class Reports:
    """Compliance reports over the log, as principals may produce them."""

    ledger: Ledger
    recorder: Recorder
    entries: Entries
    principal_store: PrincipalStore
    detection: Callable[[], DetectionStore]

    def produce(
        self,
        caller: Caller,
        name: str,
        params: Mapping[str, str],
        *,
        timezone: str = "UTC",
        progress: Progress | None = None,
    ) -> Report:
        """Build report ``name`` for ``caller`` (its tenant's entries only); recorded."""
        self.recorder.authorize(caller, Permission.REPORT)
        builder = REPORTS.get(name)
        if builder is None:
            raise NotFoundError(f"no report {name!r}; the reports are {', '.join(REPORTS)}")
        zone(timezone)
        self.ledger.catch_up(progress)
        who = Producer(caller.id, timezone, self.ledger.origin)
        report = builder(_Scoped(self, caller), params, who)
        self.recorder.record(
            "report.produce",
            caller,
            resource={"type": "report", "id": name, "count": len(report.cited)},
            labels=_labels(params, timezone),
        )
        return report

    def render(self, report: Report, fmt: str) -> bytes:
        if fmt not in FORMATS:
            raise ConfigError(f"no format {fmt!r}; the formats are {', '.join(FORMATS)}")
        return render(report, fmt)

    def bundle(
        self,
        caller: Caller,
        report: Report,
        formats: tuple[str, ...] = FORMATS,
        permission: Permission = Permission.REPORT,
    ) -> bytes:
        """The report as an evidence bundle: its files, every entry it cites (with its
        detail unless erased) and one inclusion proof each, against the latest checkpoint,
        under a manifest signed with the log's key."""
        self.recorder.authorize(caller, permission)
        note = self.ledger.checkpoint()
        checkpoint = Checkpoint.parse_text(note.split("\n\n", 1)[0] + "\n")
        lines, kept = [], set()
        for line in self.ledger.export_at([i for i in report.cited if i < checkpoint.size]):
            entry = orjson.loads(line)["entry"]
            if caller.sees(entry_tenant(entry["event"])):
                lines.append(line)
                kept.add(int(entry["index"]))
        report.cited = kept  # what the bundle can prove is what it says it cites
        files = {f"report.{fmt}": self.render(report, fmt) for fmt in formats}
        proofs = {i: self.ledger.prove_inclusion(i, checkpoint.size).proof for i in sorted(kept)}
        parts = BundleParts(
            origin=self.ledger.origin,
            report=report.name,
            produced=f"{report.produced_at} {report.produced_by}",
            checkpoint=note,
            verifier=str(self.ledger.verifier),
            entries=lines,
            proofs=proofs,
            files=files,
        )
        return build(parts, self.ledger.sign_statement)

    def export_bundle(
        self, caller: Caller, query: str | None = None, progress: Progress | None = None
    ) -> bytes:
        """The entries a query selects (the caller's tenant's only) as an evidence bundle:
        an export that verifies on its own, entry by entry. Recorded as audit.export."""
        self.recorder.authorize(caller, Permission.EXPORT)
        self.ledger.catch_up(progress)
        who = Producer(caller.id, "UTC", self.ledger.origin)
        params = {"query": query} if query else {}
        report = REPORTS["entries"](_Scoped(self, caller), params, who)
        self.recorder.record(
            "audit.export",
            caller,
            resource={"type": "log", "count": len(report.cited)},
            labels={"bundle": "yes", **({"query": query[:256]} if query else {})},
        )
        return self.bundle(caller, report, formats=("json", "csv"), permission=Permission.EXPORT)

    def check_document(
        self, caller: Caller, document: str, digest: str, version: str | None = None
    ) -> DocumentCheck:
        """Whether a file (by its SHA-256) is a recorded, approved version of a document."""
        self.recorder.authorize(caller, Permission.REPORT)
        self.ledger.catch_up()
        found = check_document(_Scoped(self, caller), document, digest, version)
        self.recorder.record(
            "report.document-verify",
            caller,
            resource={"type": "document", "id": document[:256]},
            result="success" if found.approved else "failure",
            labels={"sha256": digest, **({"version": version} if version else {})},
        )
        return found

    def schedules(self) -> ScheduleConfig:
        return load_schedules(self.ledger.settings.layout.report_schedules, tuple(REPORTS))

    def run_schedules(self, now: datetime | None = None) -> list[ScheduledRun]:
        """Produce every scheduled report that is due, write its files, announce it
        through the alert sinks, and remember when it ran (``DATA/reports.state.json``).
        The scheduler acts as ``host:scheduler``; each report it produces is an entry."""
        config = self.schedules()
        if not config.schedules:
            return []
        moment = now or datetime.now(UTC)
        state_file = self.ledger.settings.layout.report_schedule_state
        state = _read_state(state_file)
        runs = []
        for schedule in config.schedules:
            last = state.get(schedule.name)
            if last is None:  # a new schedule starts now: no run for times before it
                state[schedule.name] = moment.isoformat()
                continue
            due = schedule.due(datetime.fromisoformat(last), moment)
            if due is None:
                continue
            runs.append(self._run(schedule, config.folder, moment))
            state[schedule.name] = moment.isoformat()
            write_whole(state_file, orjson.dumps(state, option=orjson.OPT_INDENT_2))
        write_whole(state_file, orjson.dumps(state, option=orjson.OPT_INDENT_2))
        return runs

    def _run(self, schedule: Schedule, folder: Path, moment: datetime) -> ScheduledRun:
        caller = Caller.host("scheduler")
        params = schedule.resolved(moment)
        report = self.produce(
            caller,
            schedule.report,
            params | {"schedule": schedule.name},
            timezone=schedule.timezone,
        )
        target = folder / schedule.name
        target.mkdir(parents=True, exist_ok=True)
        stem = f"{moment.astimezone(UTC):%Y%m%dT%H%MZ}-{schedule.report}"
        files = []
        for fmt in schedule.formats:
            path = target / f"{stem}.{fmt}"
            write_whole(path, self.render(report, fmt))
            files.append(str(path))
        if schedule.bundle:
            path = target / f"{stem}.zip"
            write_whole(path, self.bundle(caller, report))
            files.append(str(path))
        return ScheduledRun(
            schedule.name, schedule.report, files, self._announce(schedule, report, files)
        )

    def _announce(self, schedule: Schedule, report: Report, files: list[str]) -> list[str]:
        """Tell the alert sinks (best effort: a sink that fails is named, not retried)."""
        from trailseal.detect.config import load_config  # noqa: PLC0415 - detection's sinks

        message = {
            "id": f"report-{schedule.name}-{report.produced_at}",
            "rule": "report.scheduled",
            "title": f"{report.title} is ready",
            "severity": "informational",
            "schedule": schedule.name,
            "report": report.name,
            "parameters": report.parameters,
            "summary": {key: str(getattr(v, "utc", v)) for key, v in report.summary},
            "files": files,
            "produced_at": report.produced_at,
        }
        failed = []
        for n, sink in enumerate(load_config(self.ledger.settings.data_dir).sinks):
            try:
                sink.send(n, message)
            except Exception:  # noqa: BLE001 - any sink's failure is reported the same way
                failed.append(sink.name)
        return failed

    def environment(self) -> Environment:
        """The live configuration, for the procedures report."""
        from trailseal.detect.config import load_config  # noqa: PLC0415 - detection's files
        from trailseal.detect.rules import load  # noqa: PLC0415

        settings = self.ledger.settings
        config = load_config(settings.data_dir)
        pack = load(config.rules)
        rules = [(r.name, r.level, r.title) for r in pack.rules.values()]
        rules += [
            (c.name, str(getattr(c, "level", "")), str(getattr(c, "title", "")))
            for c in pack.correlations.values()
        ]
        verifier = str(self.ledger.verifier)
        latest = self.ledger.reader.latest_checkpoint()
        namespaces: dict[str, int] = {}
        for action, count in self.ledger.action_counts():
            key = action.split(".", 1)[0] + ".*"
            namespaces[key] = namespaces.get(key, 0) + count
        return Environment(
            origin=self.ledger.origin,
            store=describe(settings.store),
            data_dir=str(settings.data_dir),
            verifier_key=verifier,
            key_fingerprint=hashlib.sha256(verifier.encode()).hexdigest(),
            key_path=str(settings.key_path),
            last_signed_path=f"{settings.key_path}.last",
            checkpoints=len(self.ledger.reader.checkpoints()),
            latest_checkpoint=None if latest is None else f"size {latest[0]:,}",
            grants={str(p): sorted(str(r) for r in roles) for p, roles in GRANTS.items()},
            principals=[
                (p.name, str(p.role), p.tenant, "revoked" if p.revoked_at else "active")
                for p in self.principal_store.list()
            ],
            captured=sorted(namespaces.items(), key=lambda item: (-item[1], item[0])),
            rules=sorted(rules),
            sinks=[(sink.name, type(sink).__name__) for sink in config.sinks],
            context=[
                (kind, str(path))
                for kind, path in (
                    ("roster", config.roster),
                    ("geography", config.geography),
                    ("ownership", config.ownership),
                )
                if path
            ],
            max_lag=f"{config.max_lag} s",
            schedules=[(s.name, s.report, s.cron) for s in self.schedules().schedules],
        )


@dataclass(frozen=True)
class ScheduledRun:
    """One scheduled report produced: where its files went, and sinks that failed."""

    schedule: str
    report: str
    files: list[str]
    failed_sinks: list[str]


def _labels(params: Mapping[str, str], timezone: str) -> dict[str, str | int]:
    """The parameters as the log records them (a ticket file by its name and hash)."""
    labels: dict[str, str | int] = {"timezone": timezone}
    for key, value in params.items():
        if key in _PRIVATE_PARAMS:
            labels[key] = f"sha256:{hashlib.sha256(value.encode()).hexdigest()}"
        else:
            labels[key] = value[:256]
    return labels


def _read_state(path: Path) -> dict[str, str]:
    try:
        found = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the schedules' state: {exc}") from None
    if not isinstance(found, dict):
        raise ConfigError(f"{path}: the schedules' state is not a JSON object")
    for name, when in found.items():
        try:
            datetime.fromisoformat(str(when))
        except ValueError:
            raise ConfigError(f"{path}: {name!r} last ran at {when!r}, which is no time") from None
    return {str(k): str(v) for k, v in found.items()}
