"""Change tickets from the files teams already export: Jira and ServiceNow CSV, JSON, or a
generic CSV with ``id,status,approver,approved_at,change_ref``.

Columns are found by name (case and spacing ignored) among each field's known names; a
file missing a required field is refused with the names that would have been accepted.
The delimiter is sniffed (comma, semicolon, tab or bar).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from trailseal.errors import ConfigError

MAX_TICKET_FILE = 256 * 1024 * 1024

# Each field, and the column names that carry it in Jira, ServiceNow and the generic form.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "ticket", "key", "issue key", "number", "ticket id", "change id"),
    "status": ("approval", "status", "state", "approval status"),
    "approver": (
        "approver",
        "approved by",
        "approved_by",
        "approvers",
        "custom field (approver)",
        "custom field (approvers)",
    ),
    "approved_at": (
        "approved_at",
        "approved at",
        "approved",
        "approved time",
        "approval date",
        "approval_set",
        "custom field (approved)",
        "custom field (approval date)",
        "resolved",
    ),
    "change_ref": (
        "change_ref",
        "change reference",
        "linked change",
        "correlation_id",
        "custom field (change reference)",
    ),
}
REQUIRED = ("id", "status")
APPROVED = ("approved", "done", "closed", "implemented", "resolved", "complete", "completed")
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d/%b/%y %I:%M %p", "%Y-%m-%d")


@dataclass(frozen=True)
class Ticket:
    id: str
    status: str
    approver: str | None
    approved_at: str | None  # RFC 3339 UTC
    change_ref: str | None
    line: int

    @property
    def approved(self) -> bool:
        return self.status.strip().lower() in APPROVED


def _key(name: str) -> str:
    return " ".join(name.strip().lower().replace("\ufeff", "").split())


def _columns(names: list[str], where: str) -> dict[str, str]:
    """For each field, the column that carries it (first known name found)."""
    present = {_key(name): name for name in names}
    chosen: dict[str, str] = {}
    for field_name, aliases in ALIASES.items():
        for alias in aliases:
            if alias in present:
                chosen[field_name] = present[alias]
                break
    missing = [name for name in REQUIRED if name not in chosen]
    if missing:
        wanted = "; ".join(f"{name}: one of {', '.join(ALIASES[name])}" for name in missing)
        raise ConfigError(
            f"{where}: no column for {', '.join(missing)} (found {', '.join(names) or 'none'}); "
            f"expected {wanted}"
        )
    return chosen


def parse_time(text: str, where: str) -> str:
    """A ticket's approval time as RFC 3339 UTC; a time without a zone is taken as UTC."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        for form in _DATE_FORMATS:
            try:
                moment = datetime.strptime(value, form)  # noqa: DTZ007 - taken as UTC below
                break
            except ValueError:
                continue
        else:
            raise ConfigError(
                f"{where}: {value!r} is not a date and time (use RFC 3339, e.g. "
                "2026-10-05T14:00:00Z)"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ticket(row: Mapping[str, Any], columns: dict[str, str], where: str, line: int) -> Ticket:
    def value(field_name: str) -> str | None:
        column = columns.get(field_name)
        found = row.get(column) if column else None
        if isinstance(found, list):
            found = ", ".join(str(item) for item in found)
        text = None if found is None else str(found).strip()
        return text or None

    ident = value("id")
    if ident is None:
        raise ConfigError(f"{where}:{line}: the ticket has no id")
    approved = value("approved_at")
    return Ticket(
        ident,
        value("status") or "",
        value("approver"),
        parse_time(approved, f"{where}:{line}") if approved else None,
        value("change_ref"),
        line,
    )


def _csv(text: str, where: str) -> list[Ticket]:
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:65536], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    try:
        columns = _columns(list(reader.fieldnames or []), where)
        return [_ticket(row, columns, where, n) for n, row in enumerate(reader, start=2)]
    except csv.Error as exc:
        raise ConfigError(f"{where}: not a CSV file: {exc}") from None


def _json(text: str, where: str) -> list[Ticket]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON: {exc}") from None
    if isinstance(data, Mapping):
        data = next(
            (data[k] for k in ("tickets", "issues", "records", "result") if k in data), None
        )
    if not isinstance(data, list) or not all(isinstance(row, Mapping) for row in data):
        raise ConfigError(f"{where}: expected a JSON array of ticket objects")
    if not data:
        return []
    names = sorted({str(name) for row in data for name in row})
    columns = _columns(names, where)
    return [_ticket(row, columns, where, n) for n, row in enumerate(data, start=1)]


def read_ticket_file(path: Path) -> str:
    """A ticket file's text (UTF-8, at most :data:`MAX_TICKET_FILE`)."""
    where = str(path)
    try:
        if path.stat().st_size > MAX_TICKET_FILE:
            raise ConfigError(f"{where}: larger than {MAX_TICKET_FILE // 2**20} MiB")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None


def parse_tickets(text: str, where: str = "tickets") -> dict[str, Ticket]:
    """Tickets by id from CSV or JSON text (refused with the reason if unusable)."""
    if len(text) > MAX_TICKET_FILE:
        raise ConfigError(f"{where}: larger than {MAX_TICKET_FILE // 2**20} MiB")
    if not text.strip():
        raise ConfigError(f"{where}: the file is empty")
    stripped = text.lstrip()
    tickets = _json(text, where) if stripped[:1] in "[{" else _csv(text, where)
    found: dict[str, Ticket] = {}
    for ticket in tickets:
        found.setdefault(ticket.id, ticket)
    return found
