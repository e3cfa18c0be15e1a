"""Shared output for read commands: --json, --jsonl, --table (default on a terminal)."""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self, TypeVar

import click
import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from trailseal.reports.render import safe_cell

F = TypeVar("F", bound=Callable[..., Any])


def output_options(func: F) -> F:
    """Add --json / --jsonl / --csv / --table to a read command."""
    func = click.option(
        "--table", "fmt", flag_value="table", help="A readable table (default on a terminal)."
    )(func)
    func = click.option(
        "--csv", "fmt", flag_value="csv", help="CSV with a header row (formulas neutralised)."
    )(func)
    func = click.option("--jsonl", "fmt", flag_value="jsonl", help="One JSON object a line.")(func)
    return click.option(
        "--json", "fmt", flag_value="json", help="JSON (default when not a terminal)."
    )(func)


def resolve(fmt: str | None) -> str:
    if fmt:
        return fmt
    return "table" if sys.stdout.isatty() else "json"


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, no_color="NO_COLOR" in os.environ, highlight=False)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def cell(value: Any) -> Text:
    """A table cell shown as it is: no Rich markup read into it, and control characters
    (a terminal escape kept in an old entry, say) written out rather than sent raw."""
    text = "" if value is None else str(value)
    return Text(_CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text))


def emit_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def emit_rows(
    rows: Sequence[dict[str, Any]],
    fmt: str | None,
    columns: Iterable[tuple[str, Callable[[dict[str, Any]], Any]]],
) -> None:
    """Print a list of objects in the chosen format."""
    chosen = resolve(fmt)
    if chosen == "json":
        emit_json(list(rows))
    elif chosen == "jsonl":
        out = sys.stdout.buffer
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
        out.flush()
    elif chosen == "csv":
        cols = list(columns)
        emit_csv([name for name, _ in cols], ([get(row) for _, get in cols] for row in rows))
    else:
        cols = list(columns)
        table = Table(*(name for name, _ in cols))
        for row in rows:
            table.add_row(*(cell(get(row)) for _, get in cols))
        console().print(table)


def emit_csv(header: list[str], rows: Iterable[list[Any]]) -> None:
    """CSV on stdout; a cell a spreadsheet would run as a formula gets a leading '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [safe_cell(value if isinstance(value, str) else _plain(value)) for value in row]
        )
    sys.stdout.write(out.getvalue())
    sys.stdout.flush()


def _plain(value: Any) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int | float) else orjson.dumps(value).decode()


def emit_mapping(value: dict[str, Any], fmt: str | None, title: str | None = None) -> None:
    """Print one object as JSON, CSV (field,value) or a two-column table."""
    chosen = resolve(fmt)
    if chosen == "csv":
        emit_csv(["field", "value"], ([key, item] for key, item in value.items()))
        return
    if chosen != "table":
        emit_json(value)
        return
    table = Table("field", "value", title=title)
    for key, item in value.items():
        text = item if isinstance(item, str) else orjson.dumps(item).decode()
        table.add_row(cell(key), cell(text))
    console().print(table)


class _Bar:
    """A Rich progress bar on stderr, or nothing when stderr is not a terminal."""

    def __init__(self, label: str, total: int) -> None:
        self._progress = (
            Progress(console=console(stderr=True), transient=True)
            if sys.stderr.isatty() and total > 10_000
            else None
        )
        self._task = self._progress.add_task(label, total=total) if self._progress else None

    def set(self, done: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done)

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def progress_bar(label: str, total: int) -> _Bar:
    """Progress on long work, shown only when stderr is a terminal."""
    return _Bar(label, total)


def info(message: str) -> None:
    click.echo(message, err=True)
