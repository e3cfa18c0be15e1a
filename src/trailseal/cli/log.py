"""Commands that write or read entries.

init, append, get, export, checkpoint, pubkey, erase and search.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import click

from trailseal.app import App, search_filter
from trailseal.app.deployment import Deployment
from trailseal.cli._common import chosen_log, data_option, deployment_dir, host, key_option
from trailseal.cli._lines import bounded_lines
from trailseal.cli._output import (
    emit_json,
    emit_mapping,
    emit_rows,
    info,
    output_options,
    progress_bar,
)
from trailseal.config import DEFAULT_LOG, log_names
from trailseal.errors import BatchError, EventError, LineProblem
from trailseal.ledger import SearchFilter


@click.command()
@data_option
@key_option
@click.option("--origin", help="The log's name in checkpoints [default: HOST/trailseal-RANDOM].")
def init(data: str | None, key: str | None, origin: str | None) -> None:
    """Create a log and its Ed25519 signing key (mode 0600); print the verifier key."""
    with App.init(data, origin=origin, key_path=key) as app:
        settings = app.ledger.settings
        info(f"created log {app.ledger.origin!r} in {settings.data_dir}")
        info(f"signing key: {settings.key_path} (keep it apart from the data if you can)")
        info("verifier key (give it to auditors; it checks every checkpoint):")
        click.echo(str(app.verifier))


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
    name = chosen_log()
    root = deployment_dir(data)
    if len(log_names(root)) > 1:
        _append_routed(file, root, name, key, max_event_bytes, skip_invalid=skip_invalid)
        return
    with App.open(data, key_path=key, max_event_bytes=max_event_bytes) as app:
        lines, unread = _read_lines(file, app.ledger.limits.max_bytes)
        with progress_bar("checking", len(lines)) as bar:
            batch = app.entries.check(host(), lines, progress=bar.set)
        batch = replace(batch, problems=sorted(unread + batch.problems, key=_line))
        if batch.problems and not skip_invalid:
            raise BatchError(batch.problems)
        with progress_bar("appending", len(batch.prepared)) as bar:
            outcome = app.entries.commit(batch, partial=True, progress=bar.set)
        report: dict[str, Any] = {
            "appended": outcome.appended,
            "first_index": outcome.first_index,
            "size": outcome.size,
        }
        if outcome.duplicates:
            report["duplicates"] = outcome.duplicates
        _skipped(report, outcome.problems)
        emit_json(report)


def _skipped(report: dict[str, Any], problems: list[LineProblem]) -> None:
    if problems:
        report["skipped"] = [{"line": p.line, "error": str(p.error)} for p in problems]
        for problem in problems:
            info(f"skipped {problem}")


def _append_routed(
    file: BinaryIO,
    root: Path,
    name: str,
    key: str | None,
    max_event_bytes: int | None,
    *,
    skip_invalid: bool,
) -> None:
    """Append to a deployment of several logs: each event to the log its tenant is routed
    to; with --log NAME, only events routed to NAME (the others refused)."""
    with Deployment.open(
        root, key_path=key, max_event_bytes=max_event_bytes, key_of=name
    ) as deployment:
        lines, unread = _read_lines(file, deployment.app(name).ledger.limits.max_bytes)
        with progress_bar("checking", len(lines)) as bar:
            only = None if name == DEFAULT_LOG else name
            batch = deployment.check(host(), lines, progress=bar.set, only=only)
        problems = sorted(unread + batch.problems, key=_line)
        if problems and not skip_invalid:
            raise BatchError(problems)
        outcome = deployment.commit(batch, partial=True)
        report: dict[str, Any] = {
            "appended": outcome.appended,
            "logs": {
                log: {
                    "appended": part.appended,
                    "first_index": part.first_index,
                    "size": part.size,
                }
                for log, part in outcome.logs.items()
            },
        }
        if outcome.duplicates:
            report["duplicates"] = outcome.duplicates
        _skipped(report, problems)
        emit_json(report)


def _line(problem: LineProblem) -> int:
    return problem.line


@click.command()
@click.argument("index", type=click.IntRange(min=0))
@data_option
@output_options
@key_option
def get(index: int, data: str | None, key: str | None, fmt: str | None) -> None:
    """Print the entry at INDEX with its leaf and chain hashes and its detail.

    The read is recorded in the log (audit.read), as every read is."""
    with App.open(data, key_path=key) as app:
        emit_mapping(app.entries.get(host(), index).to_json(), fmt, title=f"entry {index}")


@click.command()
@data_option
@click.option("--from", "start", type=click.IntRange(min=0), default=0, help="First index.")
@click.option(
    "--to", "end", type=click.IntRange(min=0), default=None, help="Stop before this index."
)
@click.option(
    "-o", "--output", type=click.File("wb"), default="-", help="File to write [default: stdout]."
)
@click.option(
    "--bundle",
    is_flag=True,
    help="Write an evidence bundle (zip) instead: the selected entries, one inclusion proof "
    "each and a signed manifest; it verifies on its own (trailseal verify-bundle).",
)
@click.option("--query", "query", help="With --bundle: only the entries this query selects.")
@key_option
def export(
    data: str | None,
    key: str | None,
    start: int,
    end: int | None,
    output: BinaryIO,
    bundle: bool,
    query: str | None,
) -> None:
    """Write entries as JSON Lines: {"entry", "detail", "salt"} per index.

    The export is recorded in the log (audit.export) before the first line is written.
    A plain export verifies (verify-export) only from entry 0; a part of the log (a
    query's entries) goes as a --bundle, which proves each entry it holds."""
    if bundle:
        with App.open(data, key_path=key) as app:
            output.write(app.reports.export_bundle(host(), query))
            output.flush()
        return
    if query:
        raise click.UsageError("--query selects the entries of a --bundle")
    with App.open(data, key_path=key) as app:
        count = 0
        for line in app.entries.export(host(), start, end):
            output.write(line)
            count += 1
        output.flush()
        info(f"exported {count} entries")


@click.command()
@data_option
def checkpoint(data: str | None) -> None:
    """Print the latest signed checkpoint (a C2SP signed note)."""
    with App.open(data) as app:
        click.echo(app.entries.checkpoint(host()), nl=False)


@click.command()
@data_option
def pubkey(data: str | None) -> None:
    """Print the log's verifier key (name+hex8+base64)."""
    with App.open(data) as app:
        click.echo(str(app.verifier))


@click.command()
@click.argument("index", type=click.IntRange(min=0))
@click.option("--reason", required=True, help="Why (retention, right to erasure, ...); recorded.")
@data_option
@key_option
def erase(index: int, reason: str, data: str | None, key: str | None) -> None:
    """Erase the detail of entry INDEX; every hash still verifies.

    The erasure is itself appended to the log as a detail.erase entry whose actor
    is host:$USER.
    """
    with App.open(data, key_path=key) as app:
        record = app.entries.erase(host(), index, reason)
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


def _search_all(
    data: str | None, key: str | None, wanted: SearchFilter, count_by: str | None, fmt: str | None
) -> None:
    with Deployment.open(data, key_path=key) as deployment:
        if count_by:
            rows = deployment.count_by(host(), wanted, count_by).to_json()["counts"]
            emit_rows(rows, fmt, _COUNT_COLUMNS)
            return
        found = deployment.search(host(), wanted)
    emit_rows([{"log": log, **_row(view)} for log, view in found], fmt, _LOG_COLUMNS)


_LOG_COLUMNS = (("log", lambda r: r["log"]), *_COLUMNS)


_COUNT_COLUMNS = (("value", lambda r: r["value"]), ("count", lambda r: r["count"]))


@click.command()
@click.argument("query", required=False, default="")
@data_option
@key_option
@click.option("--actor", help="Shorthand for actor:ID.")
@click.option("--action", help="Shorthand for action:NAME (record.* for a prefix).")
@click.option("--resource-type", help="Shorthand for resource:TYPE.")
@click.option("--resource-id", help="resource.id")
@click.option("--outcome", type=click.Choice(["success", "failure", "denied"]))
@click.option("--tenant", help="Shorthand for tenant:NAME.")
@click.option("--since", help="Event time >= this (RFC 3339 or YYYY-MM-DD).")
@click.option("--until", help="Event time < this (RFC 3339 or YYYY-MM-DD).")
@click.option(
    "--order",
    type=click.Choice(["oldest", "newest"]),
    default="oldest",
    show_default=True,
    help="Oldest (lowest index) or newest first.",
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option(
    "--count-by",
    "count_by",
    metavar="FIELD",
    help="Count the matches by a field (actor, action, resource, unit, day, ...) instead.",
)
@click.option(
    "--all-logs", is_flag=True, help="Search every log of the deployment (a log column is added)."
)
@output_options
def search(
    query: str,
    data: str | None,
    key: str | None,
    actor: str | None,
    action: str | None,
    resource_type: str | None,
    resource_id: str | None,
    outcome: str | None,
    tenant: str | None,
    since: str | None,
    until: str | None,
    order: str,
    limit: int,
    count_by: str | None,
    all_logs: bool,
    fmt: str | None,
) -> None:
    """Find entries with the search language (reads included), e.g.

    \b
      trailseal search 'actor:u-1042 action:record.* time:>=now-7d'
      trailseal search 'resource:patient/p-88123 -action:record.list'
      trailseal search 'action:iam.* OR (action:record.export outcome:success)'
      trailseal search 'time:2026-10' --count-by actor

    Qualifiers: actor role session tenant unit action resource outcome status ip
    country ticket index time received, has:FIELD and no:FIELD; see docs/search.md.
    The flags are shorthands that must hold too. The search is recorded in the log
    (audit.read), as every read is."""
    wanted = search_filter(
        q=query or None,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        tenant=tenant,
        since=since,
        until=until,
        limit=limit,
        newest_first=order == "newest",
        names=("--since", "--until"),
    )
    if all_logs:
        if chosen_log() != DEFAULT_LOG:
            raise click.UsageError("--all-logs searches every log; leave out --log")
        _search_all(data, key, wanted, count_by, fmt)
        return
    with App.open(data, key_path=key) as app:
        with progress_bar("indexing for search", app.entries.unindexed()) as bar:
            if count_by:
                counts = app.entries.count_by(host(), wanted, count_by, progress=bar.set)
            else:
                views = app.entries.search(host(), wanted, progress=bar.set)
        if count_by:
            rows = counts.to_json()["counts"]
            emit_rows(rows, fmt, _COUNT_COLUMNS)
        else:
            emit_rows([_row(view) for view in views], fmt, _COLUMNS)
