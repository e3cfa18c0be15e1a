"""`trailseal import`: other systems' audit trails into the log (CloudTrail, Terraform Cloud)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from trailseal.app import App, Tenancy
from trailseal.app.imports import DEFAULT_URL, TerraformSource
from trailseal.cli._common import data_option, host, key_option
from trailseal.cli._output import console, emit_json, info


@click.group("import")
def import_() -> None:
    """Import audit trails kept elsewhere: AWS CloudTrail, Terraform Cloud."""


class _Files:
    """Files read so far, on a terminal: a bar over the files, and the records read."""

    def __init__(self) -> None:
        import sys  # noqa: PLC0415 - only to ask whether stderr is a terminal

        self._progress = (
            Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("files, {task.fields[records]} records"),
                console=console(stderr=True),
                transient=True,
            )
            if sys.stderr.isatty()
            else None
        )
        self._task: Any = None

    def __call__(self, done: int, total: int, records: int) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("import", total=total, records=0)
        self._progress.update(self._task, completed=done, records=records)

    def stop(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.stop()


def _summarize(found: dict[str, Any]) -> None:
    """The summary for a person, on stderr (the JSON goes to stdout)."""
    info(
        f"{found['files']} files, {found['records']} records: {found['imported']} imported, "
        f"{found['duplicates']} already in the log, {found['refused']} refused"
    )
    for refusal in found["refusals"][:20]:
        info(f"  refused {refusal['where']}: {refusal['reason']}")
    if found["refused"] > 20:
        info(f"  ... and {found['refused'] - 20} more (see the JSON)")
    digests = found.get("digests")
    if digests is not None:
        info(
            f"digests: {digests['digests_valid']}/{digests['digests']} valid; log files "
            f"{digests['log_files_valid']}/{digests['log_files']} valid"
        )
        for finding in digests["findings"]:
            info(f"  {finding['problem']}: {finding['name']}: {finding['reason']}")
    for note in found.get("notes", []):
        info(f"note: {note}")


@import_.command("cloudtrail")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--public-keys",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The output of `aws cloudtrail list-public-keys`, saved to a file: check the "
    "digest files among the sources with it.",
)
@click.option("--tenant", help="The tenant every imported event belongs to.")
@click.option(
    "--tenant-from-account",
    is_flag=True,
    help="Each event's tenant is its record's AWS account (recipientAccountId).",
)
@data_option
@key_option
def cloudtrail(
    sources: tuple[str, ...],
    public_keys: Path | None,
    tenant: str | None,
    tenant_from_account: bool,
    data: str | None,
    key: str | None,
) -> None:
    """Import CloudTrail records from SOURCES: files or folders (read recursively) of
    delivery files as AWS writes them ({"Records": [...]}, gzip or plain), bare JSON
    arrays or JSON Lines, or s3://BUCKET/PREFIX.

    Each record becomes one event, the record kept whole in detail.cloudtrail. A record
    already in the log is counted, not imported twice. Prints a JSON summary (files,
    records, imported, duplicates, refused with reasons, digest findings); exits 1 when
    a record was refused or a digest check failed.
    """
    if tenant and tenant_from_account:
        raise click.UsageError("give --tenant or --tenant-from-account, not both")
    keys = (public_keys.read_bytes(), str(public_keys)) if public_keys else None
    progress = _Files()
    try:
        with App.open(data, key_path=key) as app:
            summary = app.imports.cloudtrail(
                host(),
                sources,
                tenancy=Tenancy(tenant, tenant_from_account),
                public_keys=keys,
                progress=progress,
            )
    finally:
        progress.stop()
    found = summary.to_json()
    _summarize(found)
    emit_json(found)
    if summary.refused or (summary.digests is not None and not summary.digests.ok):
        raise SystemExit(1)


@import_.command("terraform")
@click.option(
    "--org", required=True, help="The organisation (its name; the cursor is kept per name)."
)
@click.option(
    "--token-file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A file holding an organization token (the audit trail refuses user and team tokens).",
)
@click.option("--url", default=DEFAULT_URL, show_default=True, help="The API's address.")
@data_option
@key_option
def terraform(org: str, token_file: Path, url: str, data: str | None, key: str | None) -> None:
    """Import a Terraform Cloud (HCP Terraform) organisation's audit trail.

    Asks the audit-trail API for what came after the last import (a cursor kept in
    DATA/imports/), page by page; the API keeps 14 days, and a cursor older than that is
    warned about. Each event becomes one event (action terraform.TYPE.ACTION), kept
    whole in detail.terraform; one already in the log is counted, not imported twice.
    Prints a JSON summary. `serve` imports the organisations DATA/imports.yaml names,
    each on its interval.
    """
    progress = _Files()
    try:
        with App.open(data, key_path=key) as app:
            summary = app.imports.terraform(
                host(), TerraformSource(org, token_file, url), progress=progress
            )
    finally:
        progress.stop()
    found = summary.to_json()
    info(
        f"{found['files']} pages, {found['records']} events: {found['imported']} imported, "
        f"{found['duplicates']} already in the log, {found['refused']} refused"
    )
    for refusal in found["refusals"][:20]:
        info(f"  refused {refusal['where']}: {refusal['reason']}")
    for note in found.get("notes", []):
        info(f"warning: {note}")
    emit_json(found)
    if summary.refused:
        raise SystemExit(1)
