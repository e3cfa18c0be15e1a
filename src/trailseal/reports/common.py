"""What several reports share: how a person, a source and a change are shown, and the
periods a report covers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from trailseal.errors import ConfigError, QueryError
from trailseal.ledger import EntryView
from trailseal.ledger.search import fixed_width
from trailseal.query import Query, fixed, month_span, parse, span
from trailseal.reports.model import Moment, Producer, Report, Source, now_utc

MAX_CELL = 2000  # characters of a before/after value shown in a cell


def event(view: EntryView) -> Mapping[str, Any]:
    found: Mapping[str, Any] = view.entry["event"]
    return found


def part(found: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = found.get(name)
    return value if isinstance(value, dict) else {}  # decoded JSON: dicts, not any Mapping


def person(found: Mapping[str, Any]) -> str:
    """``J. Rivera (u-1042)``, or the id alone."""
    actor = part(found, "actor")
    name, ident = actor.get("name"), actor.get("id", "")
    return f"{name} ({ident})" if name else str(ident)


def roles(found: Mapping[str, Any]) -> str:
    return ", ".join(str(role) for role in part(found, "actor").get("roles") or [])


def where_from(found: Mapping[str, Any]) -> str:
    source = part(found, "source")
    pieces = [source.get("ip"), source.get("host"), source.get("service")]
    return " ".join(str(piece) for piece in pieces if piece)


def resource_label(found: Mapping[str, Any]) -> str:
    resource = part(found, "resource")
    if not resource:
        return ""
    return "/".join(str(resource[k]) for k in ("type", "id") if resource.get(k))


def outcome(found: Mapping[str, Any]) -> str:
    result = part(found, "outcome")
    text = str(result.get("result") or "")
    if result.get("status") is not None:
        text += f" {result['status']}"
    return text.strip()


def shown(value: Any) -> str | None:
    """A before/after value as compact JSON (text as itself), cut to :data:`MAX_CELL`."""
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= MAX_CELL else text[:MAX_CELL] + "…"


def change(view: EntryView) -> tuple[str | None, str | None]:
    """The entry's before and after, from its detail (or why they cannot be shown)."""
    if view.erased is not None:
        return f"(erased: {view.erased})", f"(erased: {view.erased})"
    detail = view.detail
    if isinstance(detail, Mapping):
        return shown(detail.get("before")), shown(detail.get("after"))
    if detail is not None:
        return None, shown(detail)
    return None, None


def moment(found: Mapping[str, Any]) -> Moment:
    return Moment(str(found.get("time", "")))


def by_time(views: Iterable[EntryView]) -> list[EntryView]:
    """In the order things happened (the event's time), then as the log received them."""
    return sorted(views, key=lambda view: (fixed_time(event(view)), view.index))


def fixed_time(found: Mapping[str, Any]) -> str:
    """An event's time as the fixed-width UTC text times compare as."""
    return fixed_width(str(found.get("time", "")))


def query_param(text: str, name: str) -> Query:
    """A report parameter in the search language; an error names the parameter."""
    try:
        return parse(text)
    except QueryError as exc:
        raise QueryError(exc.query, exc.position, f"{name}: {exc.message}", name) from None


def period(text: str, name: str = "period") -> tuple[str, str]:
    """A month (``2026-10``), a day, or ``FROM..TO`` (dates or RFC 3339) as UTC bounds
    ``[start, end)``."""
    try:
        if ".." in text:
            first, _, last = text.partition("..")
            now = datetime.now().astimezone()
            return fixed(span(first, now)[0]), fixed(span(last, now)[1])
        if len(text) == 7:
            start, end = month_span(text)
        else:
            start, end = span(text, datetime.now().astimezone())
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{name}: {exc}; write a month (2026-10) or FROM..TO") from None
    return fixed(start), fixed(end)


def bounds(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """Optional ``--from``/``--to`` (RFC 3339, a date, a month, now-7d) as UTC bounds; a
    date or month given as ``--to`` includes that whole day or month."""
    now = datetime.now().astimezone()
    try:
        start = fixed(span(since, now)[0]) if since else None
        end = fixed(span(until, now)[1]) if until else None
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"from/to: {exc}") from None
    if start and end and end <= start:
        raise ConfigError(f"--to ({until}) is not after --from ({since})")
    return start, end


def previous_month(today: datetime) -> str:
    first = today.replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def begin(
    name: str, title: str, parameters: Mapping[str, str | None], source: Source, who: Producer
) -> Report:
    return Report(
        name=name,
        title=title,
        parameters={key: value for key, value in parameters.items() if value},
        produced_at=now_utc(),
        produced_by=who.produced_by,
        timezone=who.timezone,
        origin=who.origin,
        log_size=source.size(),
    )
