"""`trailseal export-to`: send the log's entries to a SIEM (Splunk, Elastic, syslog, a file)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import click

from trailseal.app import App
from trailseal.cli._common import data_option, host, key_option
from trailseal.cli._output import emit_json, emit_rows, info, output_options


class _ExportGroup(click.Group):
    """``export-to NAME`` runs the exporter for NAME; ``status``, ``dead`` and ``replay``
    are subcommands (a destination cannot take those names)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)


@click.group("export-to", cls=_ExportGroup)
def export_to() -> None:
    """Send entries to the destinations DATA/exports.yaml names, in order, at least once:
    `trailseal export-to NAME` follows the log to NAME until stopped (--once: until it
    has caught up). Every record carries trailseal.index, trailseal.leaf_hash and the
    log's origin, so it can be proved against the log."""


@export_to.command("run")
@click.argument("name")
@click.option("--once", is_flag=True, help="Send what the log holds now, then exit.")
@data_option
@key_option
def run(name: str, once: bool, data: str | None, key: str | None) -> None:
    """Follow the log to destination NAME (same as `export-to NAME`)."""
    with App.open(data, key_path=key) as app:
        exporter = app.exports.exporter(host(), name)

        def stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
            exporter.stop.set()

        previous = signal.signal(signal.SIGTERM, stop)
        info(f"exporting to {name} from entry {exporter.state.cursor + 1}; Ctrl-C stops")
        try:
            exporter.run(once=once)
        except KeyboardInterrupt:
            exporter.stop.set()
        finally:
            signal.signal(signal.SIGTERM, previous)
            exporter.destination.close()
        state = exporter.state
        info(
            f"{name}: cursor at {state.cursor}, {state.delivered:,} delivered, "
            f"{state.dead:,} dead letters"
            + (f"; last error: {state.last_error}" if state.last_error else "")
        )


@export_to.command("status")
@data_option
@key_option
@output_options
def status(data: str | None, key: str | None, fmt: str | None) -> None:
    """Each destination: cursor, lag (entries behind), delivered, dead letters, last error."""
    with App.open(data, key_path=key) as app:
        rows = app.exports.status(host())
    if not rows:
        info("no destinations (DATA/exports.yaml)")
    columns: list[tuple[str, Any]] = [
        (k, lambda r, k=k: r[k])
        for k in ("destination", "type", "cursor", "lag", "delivered", "dead", "last_error")
    ]
    emit_rows(rows, fmt, columns)


@export_to.command("dead")
@click.argument("name")
@data_option
@key_option
def dead(name: str, data: str | None, key: str | None) -> None:
    """NAME's dead letters: each entry it refused for good, with the receiver's reason."""
    with App.open(data, key_path=key) as app:
        emit_json(app.exports.dead(host(), name))


@export_to.command("replay")
@click.argument("name")
@data_option
@key_option
def replay(name: str, data: str | None, key: str | None) -> None:
    """Send NAME's dead letters again (once the cause is fixed); those refused again stay."""
    with App.open(data, key_path=key) as app:
        delivered, again = app.exports.replay(host(), name)
    emit_json({"delivered": delivered, "dead": again})
