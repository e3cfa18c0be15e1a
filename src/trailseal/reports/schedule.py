"""Scheduled reports: ``DATA/reports.yaml`` names reports to produce on a cron schedule,
written to a folder and announced through the alert sinks.

    folder: reports                    # under DATA unless absolute
    schedules:
      - name: monthly-hipaa
        report: hipaa-access
        cron: "0 6 1 * *"              # minute hour day month weekday, in `timezone`
        timezone: America/Chicago
        params: {period: previous-month}
        formats: [html, pdf]           # default [html, json]
        bundle: true                   # also the evidence bundle

``period: previous-month`` (or ``previous-day``) is resolved when the schedule runs;
``from``/``to`` take relative times (``now-7d``). A schedule runs at most once for each
time its cron expression names; one that was missed while nothing ran is produced once
when the scheduler next looks, never once per missed time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from trailseal.errors import ConfigError
from trailseal.reports.model import zone
from trailseal.reports.render import FORMATS

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_KEYS = {"name", "report", "cron", "timezone", "params", "formats", "bundle"}


@dataclass(frozen=True)
class Schedule:
    name: str
    report: str
    cron: str
    timezone: str = "UTC"
    params: dict[str, str] = field(default_factory=dict)
    formats: tuple[str, ...] = ("html", "json")
    bundle: bool = False

    def due(self, last: datetime, now: datetime) -> datetime | None:
        """The latest time the cron names in ``(last, now]``, if any."""
        from croniter import croniter  # noqa: PLC0415 - only schedules need it

        # croniter's previous time is strictly before its start: start just after now.
        local_now = now.astimezone(zone(self.timezone)) + timedelta(seconds=1)
        found = croniter(self.cron, local_now).get_prev(datetime)
        return found if found > last else None

    def resolved(self, now: datetime) -> dict[str, str]:
        """The parameters for a run at ``now`` (``previous-month`` and the like filled)."""
        local = now.astimezone(zone(self.timezone))
        params = dict(self.params)
        if params.get("period") == "previous-month":
            params["period"] = (local.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        elif params.get("period") == "previous-day":
            params["period"] = (local - timedelta(days=1)).strftime("%Y-%m-%d")
        return params


@dataclass(frozen=True)
class ScheduleConfig:
    folder: Path
    schedules: list[Schedule]


def load_schedules(file: Path, names: tuple[str, ...]) -> ScheduleConfig:
    """The schedules file (``DATA/reports.yaml``); none configured when it does not exist."""
    data_dir = file.parent
    if not file.exists():
        return ScheduleConfig(data_dir / "reports", [])
    try:
        settings = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    if not isinstance(settings, dict) or set(settings) - {"folder", "schedules"}:
        raise ConfigError(f"{file}: expected the settings folder and schedules")
    folder = Path(str(settings.get("folder") or "reports"))
    schedules = [
        _schedule(spec, n, names, file) for n, spec in enumerate(settings.get("schedules") or [])
    ]
    if len({s.name for s in schedules}) != len(schedules):
        raise ConfigError(f"{file}: two schedules have the same name")
    return ScheduleConfig(folder if folder.is_absolute() else data_dir / folder, schedules)


def _schedule(spec: Any, n: int, names: tuple[str, ...], file: Path) -> Schedule:
    where = f"{file}: schedules[{n}]"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(spec) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown setting {min(unknown)!r}")
    name, report, cron = (str(spec.get(key) or "") for key in ("name", "report", "cron"))
    if not _NAME.match(name):
        raise ConfigError(f"{where}: name {name!r} must be 1-64 letters, digits, . _ -")
    if report not in names:
        raise ConfigError(f"{where}: no report {report!r}; the reports are {', '.join(names)}")
    from croniter import croniter  # noqa: PLC0415 - only schedules need it

    if not croniter.is_valid(cron):
        raise ConfigError(
            f"{where}: {cron!r} is not a cron expression (minute hour day month weekday)"
        )
    timezone = str(spec.get("timezone") or "UTC")
    zone(timezone)
    formats = tuple(spec.get("formats") or ("html", "json"))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError(f"{where}: no format {bad[0]!r}; the formats are {', '.join(FORMATS)}")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: params must be a mapping")
    return Schedule(
        name,
        report,
        cron,
        timezone,
        {str(k): str(v) for k, v in params.items()},
        formats,
        bool(spec.get("bundle", False)),
    )
