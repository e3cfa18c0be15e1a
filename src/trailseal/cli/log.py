"""Commands that write or read entries.

init, append, get, export, checkpoint, pubkey, erase and search.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import click

from trailseal.cli._common import data_option, key_option
from trailseal.cli._lines import bounded_lines
from trailseal.cli._output import (
    emit_json,
    emit_mapping,
    emit_rows,
    info,
    output_options,
    progress_bar,
)
from trailseal.errors import BatchError, EventError, LineProblem
from trailseal.ledger import Ledger, SearchFilter
from trailseal.ledger.search import normalize_time

CHUNK = 10_000


@click.command()
@data_option
@key_option
@click.option("--origin", help="The log's name in checkpoints [default: HOST/trailseal-RANDOM].")
def init(data: str | None, key: str | None, origin: str | None) -> None:
    """Create a log and its Ed25519 signing key (mode 0600); print the verifier key."""
    with Ledger.init(data, origin=origin, key_path=key) as ledger:
        info(f"created log {ledger.origin!r} in {ledger.settings.data_dir}")
        info(f"signing key: {ledger.settings.key_path} (keep it apart from the data if you can)")
        info("verifier key (give it to auditors; it checks every checkpoint):")
        click.echo(str(ledger.verifier))


def _read_lines(stream: BinaryIO, max_bytes: int) -> tuple[list[bytes], list[LineProblem]]:
    """Every line (an oversized one kept as a blank placeholder, so numbers hold)."""
    lines: list[bytes] = []
    problems: list[LineProblem] = []
    for number, line in enumerate(bounded_lines(stream, max_bytes), start=1):
        if isinstance(line, EventError):
            problems.append(LineProblem(number, line))
            line = b""  # noqa: PLW2901 - the placeholder keeps later line numbers right
        lines.append(line)
    return lines, problems


@click.command()
@click.argument("file", type=click.File("rb"), default="-")
@data_option
@key_option
@click.option("--skip-invalid", is_flag=True, help="Append the good lines and report the bad ones.")
@click.option("--max-event-bytes", type=click.IntRange(min=256), help="Largest event accepted.")
def append(
    file: BinaryIO,
    data: str | None,
    key: str | None,
    skip_invalid: bool,
    max_event_bytes: int | None,
) -> None:
    """Append JSON Lines events from FILE (or - for stdin).

    A file with bad lines is refused as a whole, listing every bad line; with
    --skip-invalid the good lines are appended and the bad ones reported.
    """
    with Ledger.open(data, key_path=key, max_event_bytes=max_event_bytes) as ledger:
        lines, problems = _read_lines(file, ledger.limits.max_bytes)
        with progress_bar("checking", len(lines)) as bar:
            events, found = ledger.check_lines(lines, progress=bar.set)
        problems = sorted(problems + found, key=lambda problem: problem.line)
        if problems and not skip_invalid:
            raise BatchError(problems)
        appended, first, size = 0, None, ledger.size()
        with progress_bar("appending", len(events)) as bar:
            for start in range(0, len(events), CHUNK):
                result = ledger.append_prepared(events[start : start + CHUNK])
                appended += result.appended
                first = result.first_index if first is None else first
                size = result.size
                bar.set(start + len(events[start : start + CHUNK]))
        report: dict[str, Any] = {"appended": appended, "first_index": first, "size": size}
        if len(events) > appended:
            report["duplicates"] = len(events) - appended
        if problems:
            report["skipped"] = [{"line": p.line, "error": str(p.error)} for p in problems]
            for problem in problems:
                info(f"skipped {problem}")
        emit_json(report)


@click.command()
@click.argument("index", type=click.IntRange(min=0))
@data_option
@output_options
def get(index: int, data: str | None, fmt: str | None) -> None:
    """Print the entry at INDEX with its leaf and chain hashes and its detail."""
    with Ledger.open(data) as ledger:
        emit_mapping(ledger.get(index).to_json(), fmt, title=f"entry {index}")


@click.command()
@data_option
@click.option("--from", "start", type=click.IntRange(min=0), default=0, help="First index.")
@click.option(
    "--to", "end", type=click.IntRange(min=0), default=None, help="Stop before this index."
)
@click.option(
    "-o", "--output", type=click.File("wb"), default="-", help="File to write [default: stdout]."
)
def export(data: str | None, start: int, end: int | None, output: BinaryIO) -> None:
    """Write entries as JSON Lines: {"entry", "detail", "salt"} per index."""
    with Ledger.open(data) as ledger:
        count = 0
        for line in ledger.export(start, end):
            output.write(line)
            count += 1
        output.flush()
        info(f"exported {count} entries")


@click.command()
@data_option
def checkpoint(data: str | None) -> None:
    """Print the latest signed checkpoint (a C2SP signed note)."""
    with Ledger.open(data) as ledger:
        click.echo(ledger.checkpoint(), nl=False)


@click.command()
@data_option
def pubkey(data: str | None) -> None:
    """Print the log's verifier key (name+hex8+base64)."""
    with Ledger.open(data) as ledger:
        click.echo(str(ledger.verifier))


@click.command()
@click.argument("index", type=click.IntRange(min=0))
@click.option("--reason", required=True, help="Why (retention, right to erasure, ...); recorded.")
@click.option("--actor", help="Who asked for it [default: local:$USER].")
@data_option
@key_option
def erase(index: int, reason: str, actor: str | None, data: str | None, key: str | None) -> None:
    """Erase the detail of entry INDEX; every hash still verifies.

    The erasure is itself appended to the log as a detail.erase entry.
    """
    with Ledger.open(data, key_path=key) as ledger:
        record = ledger.erase(index, reason, actor)
        emit_json({"erased": index, "record_index": record})


def _row(view: Any) -> dict[str, Any]:
    return {"index": view.index, **view.to_json()}


_COLUMNS = (
    ("index", lambda r: r["index"]),
    ("time", lambda r: r["entry"]["event"]["time"]),
    ("actor", lambda r: r["entry"]["event"]["actor"]["id"]),
    ("action", lambda r: r["entry"]["event"]["action"]),
    (
        "resource",
        lambda r: "/".join(
            str(r["entry"]["event"].get("resource", {}).get(k, "")) for k in ("type", "id")
        ).strip("/"),
    ),
    ("outcome", lambda r: r["entry"]["event"].get("outcome", {}).get("result")),
)


@click.command()
@data_option
@click.option("--actor", help="actor.id")
@click.option("--action", help="Exact action, or a prefix ending in * (record.*).")
@click.option("--resource-type", help="resource.type")
@click.option("--resource-id", help="resource.id")
@click.option("--outcome", type=click.Choice(["success", "failure", "denied"]))
@click.option("--tenant", help="resource.tenant, else actor.tenant")
@click.option("--since", help="Event time >= this (RFC 3339 or YYYY-MM-DD).")
@click.option("--until", help="Event time < this (RFC 3339 or YYYY-MM-DD).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@output_options
def search(
    data: str | None,
    actor: str | None,
    action: str | None,
    resource_type: str | None,
    resource_id: str | None,
    outcome: str | None,
    tenant: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    fmt: str | None,
) -> None:
    """Find entries by actor, action, resource, outcome, tenant and time (reads included)."""
    query = SearchFilter(
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        tenant=tenant,
        since=normalize_time(since, "--since") if since else None,
        until=normalize_time(until, "--until") if until else None,
        limit=limit,
    )
    with Ledger.open(data) as ledger:
        with progress_bar("indexing for search", ledger.unindexed()) as bar:
            views = ledger.search(query, progress=bar.set)
        emit_rows([_row(view) for view in views], fmt, _COLUMNS)


COMMANDS = (init, append, get, export, checkpoint, pubkey, erase, search)
