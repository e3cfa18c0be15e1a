"""Times in queries: RFC 3339 instants, dates, months and years (as the span they name),
and relative times (``now-24h``, ``now/d``, ``now-1d/d``), all in UTC.

A value names a span ``[start, end)``: an instant is one microsecond long, a date a
whole UTC day. Ranges and comparisons are built from spans the way GitHub's search
reads them: ``>2026-10-05`` is after that whole day, ``2026-10-01..2026-10-31`` covers
both end days.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_YEAR = re.compile(r"\d{4}\Z")
_MONTH = re.compile(r"(\d{4})-(\d{2})\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_RELATIVE = re.compile(r"now((?:[+-]\d{1,9}[smhdw])*)(?:/([smhdwM]))?\Z")
_STEP = re.compile(r"([+-])(\d{1,9})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MICROSECOND = timedelta(microseconds=1)


def fixed(moment: datetime) -> str:
    """A time as the fixed-width UTC text the log stores and compares."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def _round_down(moment: datetime, unit: str) -> datetime:
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())  # weeks start on Monday (ISO 8601)
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    return moment.replace(year=moment.year + year, month=month + 1)


def _relative(found: re.Match[str], now: datetime) -> datetime:
    moment = now.astimezone(UTC)
    for sign, amount, unit in _STEP.findall(found.group(1)):
        step = timedelta(**{_UNITS[unit]: int(amount)})
        moment = moment + step if sign == "+" else moment - step
    return _round_down(moment, found.group(2)) if found.group(2) else moment


def span(text: str, now: datetime) -> tuple[datetime, datetime]:
    """The span a time value names, or ValueError saying what would be accepted."""
    relative = _RELATIVE.match(text)
    if relative:
        moment = _relative(relative, now)
        return moment, moment + MICROSECOND
    if _YEAR.match(text):
        start = datetime(int(text), 1, 1, tzinfo=UTC)
        return start, start.replace(year=start.year + 1) if start.year < 9999 else start
    month = _MONTH.match(text)
    if month:
        year, number = int(month.group(1)), int(month.group(2))
        if not 1 <= number <= 12:
            raise ValueError(f"{text!r} has no month {number}")
        start = datetime(year, number, 1, tzinfo=UTC)
        return start, _add_months(start, 1) if (year, number) != (9999, 12) else start
    if _DATE.match(text):
        try:
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"{text!r} is not a date") from None
        return start, start + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use RFC 3339 (2026-10-05T14:00:00Z), a date "
            "(2026-10-05), a month (2026-10), a year, or now-24h, now/d"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z for UTC")
    return moment.astimezone(UTC), moment.astimezone(UTC) + MICROSECOND


def month_span(period: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as the month's first instant and the next month's (UTC)."""
    found = _MONTH.match(period)
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ValueError(f"{period!r} is not a month; write it as YYYY-MM")
    year, month = int(found.group(1)), int(found.group(2))
    days = calendar.monthrange(year, month)[1]
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, start + timedelta(days=days)
