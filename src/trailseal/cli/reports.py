"""trailseal report …, trailseal document verify, trailseal verify-bundle."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import click

from trailseal.app import App
from trailseal.checkpoints import Checkpoint
from trailseal.cli._common import data_option, host, key_option
from trailseal.cli._output import (
    emit_json,
    emit_mapping,
    emit_rows,
    info,
    output_options,
    progress_bar,
)
from trailseal.cli.verify import read_text, verifier_from
from trailseal.errors import ConfigError, VerificationError
from trailseal.reports import FORMATS, Report, verify_bundle
from trailseal.reports.bundle import read_consistency
from trailseal.reports.model import plain
from trailseal.reports.render import write_whole
from trailseal.reports.tickets import read_ticket_file

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    """The options every report takes: where the log is, and what to write where."""
    for option in reversed(
        [
            data_option,
            key_option,
            click.option(
                "--format",
                "fmt",
                type=click.Choice(FORMATS),
                default="json",
                show_default=True,
                help="html (self-contained, print-ready), pdf, csv or json.",
            ),
            click.option(
                "-o",
                "--out",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Write the report here [default: stdout].",
            ),
            click.option(
                "--bundle",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Also write the evidence bundle (zip): every format, the cited entries, "
                "their inclusion proofs, the checkpoint and a signed manifest.",
            ),
            click.option(
                "--timezone",
                "--tz",
                "timezone",
                default="UTC",
                show_default=True,
                help="Show times in this IANA zone (with the offset printed); data stays UTC.",
            ),
        ]
    ):
        func = option(func)
    return func


def _produce(
    name: str,
    params: dict[str, str | None],
    data: str | None,
    key: str | None,
    fmt: str,
    out: Path | None,
    bundle: Path | None,
    timezone: str,
) -> None:
    given = {k: v for k, v in params.items() if v is not None}
    if out is None and fmt == "pdf" and sys.stdout.isatty():
        raise click.UsageError("a PDF is not for a terminal: write it with -o FILE.pdf")
    with App.open(data, key_path=key) as app:
        with progress_bar("indexing for search", app.entries.unindexed()) as bar:
            report = app.reports.produce(host(), name, given, timezone=timezone, progress=bar.set)
        if bundle is not None:
            _write(bundle, app.reports.bundle(host(), report))
            info(f"evidence bundle: {bundle} ({len(report.cited):,} entries with proofs)")
        _write(out, app.reports.render(report, fmt))
    _say_summary(report)


def _write(path: Path | None, data: bytes) -> None:
    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    write_whole(path, data)


def _say_summary(report: Report) -> None:
    for note in report.notes:
        info(note)
    figures = ", ".join(f"{key}: {plain(value)}" for key, value in report.summary[:6])
    info(f"{report.title}: {figures}")


@click.group()
def report() -> None:
    """Compliance reports, each recorded in the log (report.produce) and role-checked.

    \b
      trailseal report record-history patient/MRN-3B-0011 --format html -o history.html
      trailseal report hipaa-access --period 2026-10 --format pdf -o oct.pdf --bundle oct.zip
      trailseal report actor-timeline a-2 --from 2026-10-21 --to 2026-10-22
      trailseal report document-trail document/SOP-12 --format html -o sop12.html
      trailseal report change-management --period 2026-10 --changes 'action:deploy.*' \\
          --tickets jira.csv
      trailseal report procedures --format html -o procedure.html
    """


@report.command("record-history")
@click.argument("resource")
@click.option("--from", "since", help="From this time (RFC 3339, date, month, now-7d).")
@click.option("--to", "until", help="Up to this time (a date or month includes all of it).")
@click.option("--show-lists", is_flag=True, help="List each list view instead of collapsing.")
@_common
def record_history(
    resource: str,
    since: str | None,
    until: str | None,
    show_lists: bool,
    **common: Any,
) -> None:
    """Every entry that touched RESOURCE (TYPE/ID, or an ID), in time order."""
    params = {"resource": resource, "from": since, "to": until}
    params["lists"] = "shown" if show_lists else None
    _produce("record-history", params, **common)


@report.command("hipaa-access")
@click.option("--period", required=True, help="A month (2026-10) or FROM..TO.")
@click.option("--phi", help="The query selecting PHI access [default: patient/note/record].")
@click.option("--hours", help="Business hours for staff the roster lacks [07:00-19:00].")
@_common
def hipaa_access(period: str, phi: str | None, hours: str | None, **common: Any) -> None:
    """PHI access in a period: by user, patient and unit; outside the unit; after hours;
    exports; after the roster's end date; alerts; totals."""
    _produce("hipaa-access", {"period": period, "phi": phi, "hours": hours}, **common)


@report.command("actor-timeline")
@click.argument("actor")
@click.option("--from", "since", help="From this time (RFC 3339, date, month, now-7d).")
@click.option("--to", "until", help="Up to this time (a date or month includes all of it).")
@_common
def actor_timeline(actor: str, since: str | None, until: str | None, **common: Any) -> None:
    """Everything ACTOR did and what was done to their account, as one sequence."""
    _produce("actor-timeline", {"actor": actor, "from": since, "to": until}, **common)


@report.command("document-trail")
@click.argument("document")
@click.option("--from", "since", help="From this time.")
@click.option("--to", "until", help="Up to this time.")
@_common
def document_trail(document: str, since: str | None, until: str | None, **common: Any) -> None:
    """A document's Part 11 audit trail: views, edits, transitions, signatures, downloads."""
    _produce("document-trail", {"document": document, "from": since, "to": until}, **common)


@report.command("change-management")
@click.option("--period", required=True, help="A month (2026-10) or FROM..TO.")
@click.option("--changes", required=True, help="The query selecting the changes.")
@click.option(
    "--tickets",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Change tickets: Jira or ServiceNow CSV export, JSON, or id,status,approver,"
    "approved_at,change_ref.",
)
@_common
def change_management(period: str, changes: str, tickets: Path, **common: Any) -> None:
    """Every change the query selects, joined with its ticket; every exception listed."""
    params = {
        "period": period,
        "changes": changes,
        "tickets": read_ticket_file(tickets),
        "tickets_name": tickets.name,
    }
    _produce("change-management", params, **common)  # type: ignore[arg-type]


@report.command("procedures")
@_common
def procedures(**common: Any) -> None:
    """The written audit-logging procedure, generated from the live configuration."""
    _produce("procedures", {}, **common)


@click.group()
def document() -> None:
    """Documents under 21 CFR Part 11."""


@document.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--doc", "doc", required=True, help="The document (TYPE/ID, or an ID).")
@click.option("--version", "version", help="Only this version.")
@data_option
@key_option
@output_options
def document_verify(
    file: Path, doc: str, version: str | None, data: str | None, key: str | None, fmt: str | None
) -> None:
    """Is FILE the approved version of a document, and who signed it? Exit 3 if its
    SHA-256 matches no approved version (recorded as report.document-verify)."""
    digest = hashlib.sha256()
    with file.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    with App.open(data, key_path=key) as app:
        found = app.reports.check_document(host(), doc, digest.hexdigest(), version)
    emit_mapping(found.to_json(), fmt, title="document")
    if not found.matches:
        raise VerificationError(
            "unknown-version",
            f"{file} (SHA-256 {found.sha256}) is no recorded version of {doc}"
            + (f" {version}" if version else ""),
        )
    if not found.approved:
        raise VerificationError(
            "not-approved", f"{file} is a recorded version of {doc}, but no approval is recorded"
        )
    info(f"OK: {file} is an approved version of {doc}")


@click.command("verify-bundle")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--vkey", required=True, help="The log's verifier key (text or file).")
@click.option(
    "--against",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A later checkpoint: check that the log is still consistent with the bundle's.",
)
@click.option(
    "--consistency",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The consistency proof to --against (trailseal prove consistency OLD NEW).",
)
@click.option(
    "--url",
    help="Fetch the log's latest checkpoint (unless --against is given) and the consistency "
    "proof to it from this trailseal service (an auditor's token: --token-file or "
    "TRAILSEAL_TOKEN). The checkpoint is trusted only once the verifier key checks it.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The API token for --url [default: $TRAILSEAL_TOKEN].",
)
@output_options
def verify_bundle_command(
    bundle: Path,
    vkey: str,
    against: Path | None,
    consistency: Path | None,
    url: str | None,
    token_file: Path | None,
    fmt: str | None,
) -> None:
    """Check an evidence bundle with no database: the signed manifest, every file, every
    entry and its inclusion proof; exit 3 on any damage. With --against (or --url), also
    that the log is still consistent with the bundle's checkpoint."""
    verifier = verifier_from(vkey)
    assert verifier is not None
    data = bundle.read_bytes()
    later = read_text(against, "checkpoint") if against else None
    proof = None
    if consistency is not None:
        proof = read_consistency(consistency.read_bytes())[2]
    elif url is not None:
        later, proof = _fetch_later(url, token_file, data, verifier, later)
    found = verify_bundle(data, verifier, against=later, consistency=proof)
    extra = f"; consistent with the log at {found.against:,}" if found.against else ""
    info(f"OK: {found.entries:,} entries and {found.files} files verified{extra}")
    if fmt == "json" or not sys.stdout.isatty():
        emit_json(found.to_json())
    else:
        emit_mapping(found.to_json(), fmt, title="bundle")


@report.command("schedules")
@data_option
@key_option
@click.option("--run", "run", is_flag=True, help="Produce every scheduled report that is due.")
@output_options
def schedules(data: str | None, key: str | None, run: bool, fmt: str | None) -> None:
    """The scheduled reports of DATA/reports.yaml (and, with --run, produce those due;
    `trailseal serve` runs them itself, checking every minute)."""
    with App.open(data, key_path=key) as app:
        config = app.reports.schedules()
        if run:
            for done in app.reports.run_schedules():
                failed = (
                    f"; sinks that failed: {', '.join(done.failed_sinks)}"
                    if done.failed_sinks
                    else ""
                )
                info(f"{done.schedule}: {done.report} -> {', '.join(done.files)}{failed}")
    rows = [
        {
            "name": s.name,
            "report": s.report,
            "cron": s.cron,
            "timezone": s.timezone,
            "params": s.params,
            "formats": list(s.formats),
            "bundle": s.bundle,
            "folder": str(config.folder / s.name),
        }
        for s in config.schedules
    ]
    emit_rows(rows, fmt, [(key, itemgetter(key)) for key in _SCHEDULE_COLUMNS])


def _fetch_later(
    url: str, token_file: Path | None, bundle: bytes, verifier: Any, later: str | None
) -> tuple[str, list[bytes]]:
    """A later checkpoint and the consistency proof to it, from a trailseal service."""
    import httpx  # noqa: PLC0415 - only --url talks to a service

    from trailseal.reports.bundle import bundle_checkpoint  # noqa: PLC0415

    token = (
        token_file.read_text(encoding="utf-8").strip()
        if token_file
        else os.environ.get("TRAILSEAL_TOKEN", "")
    )
    if not token:
        raise ConfigError("--url needs a token: --token-file FILE or TRAILSEAL_TOKEN")
    headers = {"Authorization": f"Bearer {token}"}
    old = bundle_checkpoint(bundle, verifier)
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60) as client:
            if later is None:
                answer = client.get("/v1/checkpoint")
                answer.raise_for_status()
                later = answer.text
            new = Checkpoint.open(later, verifier).size
            answer = client.get("/v1/proofs/consistency", params={"old": old, "new": new})
            answer.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise ConfigError(
            f"{url} answered {exc.response.status_code}: {exc.response.text[:300]}"
        ) from None
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach {url}: {exc}") from None
    return later, read_consistency(answer.content)[2]


_SCHEDULE_COLUMNS = ("name", "report", "cron", "timezone", "folder")
