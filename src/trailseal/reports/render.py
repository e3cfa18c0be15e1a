"""A report in the four formats: self-contained HTML (print-ready, no network), PDF, CSV
and JSON. Times show in the report's zone with the offset printed; the JSON keeps UTC.

CSV is one table: a ``section`` column, then every section's columns; a cell that a
spreadsheet would read as a formula (starting ``=``, ``+``, ``-``, ``@``, tab or carriage
return) is written with a leading apostrophe (OWASP's CSV-injection advice).
"""

from __future__ import annotations

import csv
import io
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson

from trailseal.reports.model import Cell, Moment, Report

FORMATS = ("html", "pdf", "csv", "json")
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
PDF_ROWS = 2_000  # rows of one table in a PDF (a printed month of 10,000 pages helps nobody)
_CODE = {"sha256", "before", "after", "evidence", "entries", "value", "token", "session"}


def text_of(value: Cell, report: Report) -> str:
    if value is None:
        return ""
    if isinstance(value, Moment):
        return value.local(report.zone)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value)


def safe_cell(text: str) -> str:
    """A CSV cell no spreadsheet will run as a formula."""
    return "'" + text if text.startswith(_FORMULA) else text


def to_json(report: Report) -> bytes:
    return orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2)


def to_csv(report: Report) -> bytes:
    keys: list[str] = []
    for section in report.sections:
        keys += [column.key for column in section.columns if column.key not in keys]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", *keys])
    for section in report.sections:
        for row in section.rows:
            cells = []
            for key in keys:
                value = row.get(key)
                cells.append(
                    safe_cell(str(value) if isinstance(value, int) else text_of(value, report))
                )
            writer.writerow([section.key, *cells])
    return out.getvalue().encode("utf-8")


def to_html(report: Report) -> bytes:
    from jinja2 import Environment, select_autoescape  # noqa: PLC0415 - only HTML needs it

    environment = Environment(autoescape=select_autoescape(default=True))
    template = environment.from_string(
        files("trailseal.reports").joinpath("templates/report.html.j2").read_text("utf-8")
    )
    return template.render(
        report=report,
        produced=Moment(report.produced_at).local(report.zone),
        show=lambda value: text_of(value, report),
        code=_CODE,
    ).encode("utf-8")


def _latin(text: str) -> str:
    """PDF core fonts carry Latin-1 only: anything else is written as ``\\uXXXX`` (the
    HTML and JSON of the same report carry it exactly)."""
    return "".join(c if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text)


def to_pdf(report: Report) -> bytes:  # noqa: C901 - cover, summary, then each table
    from fpdf import FPDF  # noqa: PLC0415 - only PDF needs it
    from fpdf.fonts import FontFace  # noqa: PLC0415

    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_title(_latin(report.title))
    pdf.set_creator("trailseal")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 8, _latin(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    produced = Moment(report.produced_at).local(report.zone)
    lines = [
        f"Report: {report.name}",
        *[f"{key}: {value}" for key, value in report.parameters.items()],
        f"Produced: {produced} by {report.produced_by}",
        f"Times shown in {report.timezone}, each with its UTC offset",
        f"Log: {report.origin}, {report.log_size:,} entries; {len(report.cited):,} cited",
    ]
    for line in lines:
        pdf.multi_cell(0, 5, _latin(line), new_x="LMARGIN", new_y="NEXT")
    for note in report.notes:
        pdf.ln(2)
        pdf.set_font("Helvetica", "I", 9)
        pdf.multi_cell(0, 5, _latin(note), new_x="LMARGIN", new_y="NEXT")
    heading = FontFace(emphasis="BOLD", fill_color=(232, 232, 232))
    if report.summary:
        _section(pdf, "Summary")
        with pdf.table(
            col_widths=(2, 1), headings_style=heading, first_row_as_headings=False
        ) as table:
            for key, value in report.summary:
                row = table.row()
                row.cell(_latin(key))
                row.cell(_latin(text_of(value, report)))
    for section in report.sections:
        _section(pdf, section.title)
        if section.note:
            pdf.set_font("Helvetica", "I", 8)
            pdf.multi_cell(0, 4, _latin(section.note), new_x="LMARGIN", new_y="NEXT")
        if not section.rows:
            pdf.set_font("Helvetica", "I", 8)
            pdf.multi_cell(0, 5, _latin(section.empty), new_x="LMARGIN", new_y="NEXT")
            continue
        if len(section.rows) > PDF_ROWS:
            pdf.set_font("Helvetica", "I", 8)
            note = (
                f"The first {PDF_ROWS:,} of {len(section.rows):,} rows; the HTML, CSV and "
                "JSON of this report hold every row."
            )
            pdf.multi_cell(0, 4, note, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=7)
        with pdf.table(headings_style=heading, repeat_headings=1) as table:
            header = table.row()
            for column in section.columns:
                header.cell(_latin(column.label))
            for values in section.rows[:PDF_ROWS]:
                row = table.row()
                for column in section.columns:
                    row.cell(_latin(_cut(text_of(values.get(column.key), report))))
    out: Any = pdf.output()
    return bytes(out)


def _cut(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _section(pdf: Any, title: str) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 6, _latin(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)


def write_whole(path: Path, data: bytes) -> None:
    """Write a report file whole or not at all: a reader never finds half of one."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_bytes(data)
    temporary.replace(path)


RENDERERS = {"html": to_html, "pdf": to_pdf, "csv": to_csv, "json": to_json}


def render(report: Report, fmt: str) -> bytes:
    if fmt not in RENDERERS:
        raise ValueError(fmt)
    return RENDERERS[fmt](report)
