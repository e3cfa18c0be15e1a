"""`trailseal verify` and `trailseal verify-export`. Exit 3 when verification fails."""

from __future__ import annotations

from pathlib import Path

import click

from trailseal.app import App
from trailseal.app.deployment import Deployment
from trailseal.checkpoints import Verifier
from trailseal.cli._common import chosen_log, data_option, host, key_option
from trailseal.cli._output import emit_mapping, info, output_options, progress_bar
from trailseal.config import DEFAULT_LOG
from trailseal.errors import ConfigError
from trailseal.ledger import verify_export


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None


def verifier_from(value: str | None) -> Verifier | None:
    """A verifier key given as text or as the path of a file holding it."""
    if value is None:
        return None
    path = Path(value)
    text = read_text(path, "verifier key") if path.is_file() else value
    return Verifier.from_string(text)


@click.command("verify")
@data_option
@key_option
@click.option(
    "--against",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A checkpoint kept outside the database; catches truncation and rewrites.",
)
@click.option(
    "--since",
    "since_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A checkpoint an earlier verification covered (save one with `trailseal checkpoint`): "
    "check only what was appended after it, and the consistency proof from it.",
)
@click.option(
    "--vkey", help="Trust this verifier key (text or file) instead of the log's own record."
)
@click.option(
    "--all-logs",
    is_flag=True,
    help="Verify every log of the deployment, each recorded in its own log.",
)
@output_options
def verify_command(
    data: str | None,
    key: str | None,
    against: Path | None,
    since_file: Path | None,
    vkey: str | None,
    all_logs: bool,
    fmt: str | None,
) -> None:
    """Recompute every hash and check every checkpoint; exit 3 on any damage.

    With --since, only what was appended after a checkpoint verified before (a nightly
    run keeps the checkpoint it ended on, and starts from it the next night). The
    result is recorded in the log (audit.verify)."""
    if all_logs:
        if against or since_file or vkey or chosen_log() != DEFAULT_LOG:
            raise click.UsageError("--all-logs verifies each log whole, against its own key")
        with Deployment.open(data, key_path=key) as deployment:
            reports = deployment.verify(host())
        for name, found in reports.items():
            info(f"OK: log {name}: {found.size} entries, {found.checkpoints} checkpoints verified")
        emit_mapping(
            {name: found.to_json() for name, found in reports.items()}, fmt, title="verification"
        )
        return
    with App.open(data, key_path=key) as app:
        note = read_text(against, "checkpoint") if against else None
        since = read_text(since_file, "checkpoint") if since_file else None
        with progress_bar("verifying", app.entries.size()) as bar:
            report = app.entries.verify(
                host(), note, verifier_from(vkey), progress=bar.set, since=since
            )
        covered = f" after entry {report.since_size - 1}" if report.since_size else ""
        info(f"OK: {report.size} entries{covered}, {report.checkpoints} checkpoints verified")
        emit_mapping(report.to_json(), fmt, title="verification")


@click.command("verify-export")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--checkpoint",
    "checkpoint_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The signed checkpoint file.",
)
@click.option("--vkey", required=True, help="The log's verifier key (text or file).")
@output_options
def verify_export_command(file: Path, checkpoint_file: Path, vkey: str, fmt: str | None) -> None:
    """Verify an export FILE against a checkpoint and verifier key, with no database."""
    verifier = verifier_from(vkey)
    assert verifier is not None
    note = read_text(checkpoint_file, "checkpoint")
    with file.open("rb") as lines:
        report = verify_export(lines, note, verifier)
    info(f"OK: {report.size} entries match the checkpoint at size {report.latest_checkpoint_size}")
    emit_mapping(report.to_json(), fmt, title="verification")
