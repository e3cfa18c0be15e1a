"""`trailseal logs`: the logs of a deployment, their routing, and the deployment
checkpoint that pins them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from trailseal.app import App
from trailseal.app.deployment import Deployment, Routes
from trailseal.checkpoints import DeploymentCheckpoint
from trailseal.cli._common import deployment_option, host, key_option
from trailseal.cli._output import emit_mapping, emit_rows, info, output_options
from trailseal.cli.verify import read_text, verifier_from


@click.group("logs")
def logs() -> None:
    """The deployment's logs: create one, list them, sign a checkpoint of them all.

    The data directory holds the default log; each further log (created here) has its
    own origin, signing key, tree and checkpoints, and the tenants routed to it. Every
    command takes --log NAME to act on one log."""


@logs.command("create")
@click.argument("name")
@deployment_option
@key_option
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    metavar="TENANT",
    help="Route this tenant's events to the new log (repeatable; a pattern with * matches "
    "many, e.g. 'clinic-*').",
)
@click.option("--origin", help="The log's name in checkpoints [default: DEFAULT-ORIGIN/NAME].")
def create(
    name: str, data: str | None, key: str | None, tenants: tuple[str, ...], origin: str | None
) -> None:
    """Create the log NAME in the deployment (with its own Ed25519 signing key); print its
    verifier key. `serve` must be restarted to route to it."""
    with Deployment.open(data) as deployment:
        Routes.of({**_routed(deployment), name: tenants})  # a tenant another log has: refused
    with App.init(data, origin=origin, key_path=key, log=name, tenants=tenants) as app:
        settings = app.ledger.settings
        info(f"created log {name!r} ({app.ledger.origin}) in {settings.data_dir}")
        if tenants:
            info(f"routed to it: {', '.join(tenants)}")
        info("verifier key (give it to auditors; it checks this log's checkpoints):")
        click.echo(str(app.verifier))


def _routed(deployment: Deployment) -> dict[str, tuple[str, ...]]:
    return {app.log: app.ledger.settings.tenants for app in deployment.apps()}


_COLUMNS = (
    ("name", lambda row: row["name"]),
    ("origin", lambda row: row["origin"]),
    ("size", lambda row: row["size"]),
    ("tenants", lambda row: ", ".join(row["tenants"])),
)


@logs.command("list")
@deployment_option
@output_options
def list_logs(data: str | None, fmt: str | None) -> None:
    """Each log: its name, origin, size and the tenants routed to it."""
    with Deployment.open(data) as deployment:
        rows = [found.to_json() for found in deployment.describe(host())]
    emit_rows(rows, fmt, _COLUMNS)


@logs.command("route")
@click.argument("tenant")
@deployment_option
def route(tenant: str, data: str | None) -> None:
    """Print the log TENANT's events go to."""
    with Deployment.open(data) as deployment:
        click.echo(deployment.routes.route(tenant))


@logs.command("checkpoint")
@deployment_option
@key_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write."
)
def checkpoint(data: str | None, key: str | None, output: Path | None) -> None:
    """Sign a deployment checkpoint: every log's latest size, root and verifier key, in
    one note signed with the default log's key (for an auditor or a witness)."""
    with Deployment.open(data, key_path=key) as deployment:
        note = deployment.checkpoint(host())
    if output is None:
        click.echo(note, nl=False)
    else:
        output.write_text(note, encoding="utf-8")
        info(f"wrote {output}")


@logs.command("verify-checkpoint")
@click.argument("note_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@deployment_option
@click.option(
    "--vkey",
    help="The deployment's verifier key (its default log's; text or file): check the "
    "signature alone, with no data directory.",
)
@output_options
def verify_checkpoint(note_file: Path, data: str | None, vkey: str | None, fmt: str | None) -> None:
    """Check a deployment checkpoint: its signature and, against the deployment's logs
    (unless --vkey), each listed key and each root at its size. Exit 3 if it fails."""
    note = read_text(note_file, "deployment checkpoint")
    verifier = verifier_from(vkey)
    if verifier is not None:
        found = DeploymentCheckpoint.open(note, verifier)
    else:
        with Deployment.open(data) as deployment:
            found = deployment.check_checkpoint(note)
    report: dict[str, Any] = {
        "origin": found.origin,
        "time": found.time,
        "logs": {head.name: head.size for head in found.logs},
        "checked_against_logs": verifier is None,
    }
    info(f"OK: deployment checkpoint of {len(found.logs)} logs, signed by {found.origin}")
    emit_mapping(report, fmt, title="deployment checkpoint")
