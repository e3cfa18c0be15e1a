"""A report as data: sections of rows, the parameters that produced it, and the entries it
cites. Renderers (HTML, PDF, CSV, JSON) and evidence bundles read only this.

Times in a report are :class:`Moment` values (UTC); each renderer shows them in the
report's time zone with the offset printed, and the JSON keeps UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trailseal.errors import ConfigError
from trailseal.ledger import EntryView, SearchFilter

if TYPE_CHECKING:
    from trailseal.detect.context import Shift
    from trailseal.detect.store import Alert
    from trailseal.reports.procedures import Environment


@dataclass(frozen=True)
class Moment:
    """A time in a report: RFC 3339 UTC, shown in the report's zone."""

    utc: str

    def local(self, zone: ZoneInfo) -> str:
        """``2026-10-05 09:00:00 -05:00``: the wall time and its offset, never a bare time."""
        try:
            moment = datetime.fromisoformat(self.utc)
        except ValueError:
            return self.utc
        shown = moment.astimezone(zone)
        offset = shown.strftime("%z")
        return f"{shown:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


Cell = str | int | Moment | None


@dataclass(frozen=True)
class Column:
    key: str
    label: str


@dataclass
class Section:
    """One table of a report. ``cites`` holds, per row, the entry indexes it rests on."""

    key: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Cell]] = field(default_factory=list)
    note: str | None = None
    empty: str = "none"  # what the table says when it has no rows

    def add(self, row: dict[str, Cell]) -> None:
        self.rows.append(row)


@dataclass
class Report:
    """A produced report. ``cited`` lists every entry index any row rests on."""

    name: str
    title: str
    parameters: dict[str, str]
    produced_at: str
    produced_by: str
    timezone: str
    origin: str
    log_size: int
    summary: list[tuple[str, Cell]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    cited: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def cite(self, *views: EntryView | int) -> None:
        for view in views:
            self.cited.add(view if isinstance(view, int) else view.index)

    def to_json(self) -> dict[str, Any]:
        """The report as data: times in UTC, every cited index."""
        return {
            "report": self.name,
            "title": self.title,
            "parameters": self.parameters,
            "produced_at": self.produced_at,
            "produced_by": self.produced_by,
            "timezone": self.timezone,
            "origin": self.origin,
            "log_size": self.log_size,
            "summary": {key: plain(value) for key, value in self.summary},
            "sections": [
                {
                    "key": section.key,
                    "title": section.title,
                    "columns": [column.key for column in section.columns],
                    "rows": [
                        {key: plain(value) for key, value in row.items()} for row in section.rows
                    ],
                    **({"note": section.note} if section.note else {}),
                }
                for section in self.sections
            ],
            "notes": self.notes,
            "cited": sorted(self.cited),
        }


def plain(value: Cell) -> str | int | None:
    return value.utc if isinstance(value, Moment) else value


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}; use an IANA name such as America/Chicago or UTC"
        ) from None


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Source(Protocol):
    """What a report reads, already scoped to the principal that asked (its tenant only)."""

    def find(self, query: SearchFilter, *, details: bool = True) -> Iterator[EntryView]:
        """Every matching entry in index order (no limit); details when asked."""
        ...

    def size(self) -> int: ...

    def roster(self) -> Mapping[str, Shift]:
        """The staff roster detection is configured with (empty without one)."""
        ...

    def alerts(self) -> list[Alert]:
        """The alerts the principal may see."""
        ...

    def environment(self) -> Environment:
        """The live configuration (for the procedures report)."""
        ...


@dataclass(frozen=True)
class Producer:
    """Who asks, and where and how to show it."""

    produced_by: str
    timezone: str = "UTC"
    origin: str = ""


Builder = Callable[[Source, Mapping[str, str], Producer], Report]
