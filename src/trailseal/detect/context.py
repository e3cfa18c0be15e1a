"""What the organisation knows that events do not say, added to each entry as ``enrich.*``.

- a **staff roster** (CSV ``user_id,unit,shift_start,shift_end,timezone``, local
  ``HH:MM``, shifts may cross midnight, and optionally ``end_date``, the last day a
  person is staff, ``YYYY-MM-DD``): the user's unit and shift; without
  one, the unit is the event's ``actor.unit`` and shifts are unknown (rules
  then count over a rolling window instead);
- **resource ownership** (CSV ``resource_type,resource_id,unit``), or else the
  event's own ``resource.unit``;
- **IP geography**: a MaxMind-format database (``.mmdb``, read with
  ``maxminddb``) or a CSV ``network,country``;
- **first-seen memory** per user (countries, networks, devices), kept in the
  engine's state so it survives restarts.

Files are re-read when they change on disk, without a restart.

Fields added: ``enrich.unit``, ``enrich.resource_unit``, ``enrich.shift`` (the
start of the shift the event falls in, or the last one before it),
``enrich.on_shift``, ``enrich.country``, ``enrich.new_country``,
``enrich.new_network``, ``enrich.new_device``. A field is absent when the
context cannot say (no roster entry, no address), so a rule that needs it
does not fire on a guess.
"""

from __future__ import annotations

import csv
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from time import monotonic
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trailseal.detect.fields import Fields
from trailseal.errors import ConfigError

RECHECK_SECONDS = 1.0  # how often a context file's modification time is looked at
SHIFT_GRACE = timedelta(minutes=60)  # an early login or a late note is still on shift
ROSTER_HEADER = ["user_id", "unit", "shift_start", "shift_end", "timezone"]
ROSTER_OPTIONAL = ["end_date"]  # the last day a person is staff (reports flag later access)


@dataclass(frozen=True)
class Shift:
    unit: str
    start: time
    end: time
    zone: ZoneInfo
    end_date: date | None = None

    def around(self, moment: datetime) -> tuple[datetime, bool]:
        """The start of the shift ``moment`` falls in (with grace) or the last before it,
        and whether it falls in one."""
        local = moment.astimezone(self.zone)
        latest: datetime | None = None
        for offset in (-1, 0, 1):
            day: date = local.date() + timedelta(days=offset)
            start = datetime.combine(day, self.start, self.zone)
            end = datetime.combine(day, self.end, self.zone)
            if end <= start:
                end += timedelta(days=1)  # a night shift
            if start - SHIFT_GRACE <= local < end + SHIFT_GRACE:
                return start.astimezone(UTC), True
            if start <= local:
                latest = start
        assert latest is not None  # yesterday's shift always started before now
        return latest.astimezone(UTC), False


def _read_csv(
    path: Path, header: list[str], optional: list[str] | None = None
) -> list[dict[str, str]]:
    """Rows of a context CSV whose header is ``header``, then any of ``optional`` in order."""
    extra = optional or []
    try:
        with path.open(newline="", encoding="utf-8") as source:
            reader = csv.DictReader(source)
            found = [h.strip() for h in reader.fieldnames or []]
            if (
                found[: len(header)] != header
                or found[len(header) :] != extra[: len(found) - len(header)]
            ):
                wanted = ",".join(header) + "".join(f"[,{name}]" for name in extra)
                raise ConfigError(f"{path}: the header must be {wanted}")
            reader.fieldnames = found
            return list(reader)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: not a CSV file: {exc}") from None


def load_roster(path: Path) -> dict[str, Shift]:
    roster = {}
    for line, row in enumerate(_read_csv(path, ROSTER_HEADER, ROSTER_OPTIONAL), start=2):
        try:
            zone = ZoneInfo((row["timezone"] or "").strip())
            start = time.fromisoformat((row["shift_start"] or "").strip())
            end = time.fromisoformat((row["shift_end"] or "").strip())
            last = (row.get("end_date") or "").strip()
            end_date = date.fromisoformat(last) if last else None
        except (ValueError, ZoneInfoNotFoundError, KeyError, AttributeError) as exc:
            raise ConfigError(f"{path}:{line}: {exc}") from None
        user, unit = (row["user_id"] or "").strip(), (row["unit"] or "").strip()
        if not user or not unit:
            raise ConfigError(f"{path}:{line}: user_id and unit are required")
        roster[user] = Shift(unit, start, end, zone, end_date)
    return roster


class Geography(Protocol):
    def country(self, address: str) -> str | None: ...


class CidrGeography:
    """Longest-prefix match over a CSV of ``network,country``."""

    def __init__(self, path: Path) -> None:
        self.by_length: dict[tuple[int, int], dict[int, str]] = {}
        for line, row in enumerate(_read_csv(path, ["network", "country"]), start=2):
            try:
                network = ipaddress.ip_network(row["network"].strip(), strict=False)
            except ValueError as exc:
                raise ConfigError(f"{path}:{line}: {exc}") from None
            key = (network.version, network.prefixlen)
            self.by_length.setdefault(key, {})[int(network.network_address)] = row[
                "country"
            ].strip()
        self.order = sorted(self.by_length, key=lambda k: -k[1])

    def country(self, address: str) -> str | None:
        value = _ipv4(address)
        if value is not None:
            version, bits = 4, 32
        else:
            ip = _address(address)
            if ip is None:
                return None
            value, version, bits = int(ip), ip.version, ip.max_prefixlen
        for family, length in self.order:
            if family == version:
                masked = value >> (bits - length) << (bits - length) if length else 0
                found = self.by_length[(version, length)].get(masked)
                if found:
                    return found
        return None


class MaxMindGeography:
    """A MaxMind-format database (GeoLite2-Country or -City), through ``maxminddb``."""

    def __init__(self, path: Path) -> None:
        try:
            import maxminddb  # noqa: PLC0415 - only for users who have such a database
        except ImportError:
            raise ConfigError(
                f"{path}: reading .mmdb files needs maxminddb (pip install maxminddb)"
            ) from None
        try:
            self.reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise ConfigError(f"{path}: not a MaxMind database: {exc}") from None

    def country(self, address: str) -> str | None:
        try:
            found: Any = self.reader.get(address)
        except ValueError:
            return None
        if not isinstance(found, dict):
            return None
        country = found.get("country") or found.get("registered_country") or {}
        code = country.get("iso_code") if isinstance(country, dict) else None
        return str(code) if code else None


def load_geography(path: Path) -> Geography:
    return MaxMindGeography(path) if path.suffix == ".mmdb" else CidrGeography(path)


def load_ownership(path: Path) -> dict[tuple[str, str], str]:
    rows = _read_csv(path, ["resource_type", "resource_id", "unit"])
    return {(r["resource_type"].strip(), r["resource_id"].strip()): r["unit"].strip() for r in rows}


class Memory(Protocol):
    """First-seen memory: what each user has been seen with (kept by the engine)."""

    def seen(self, actor: str, kind: str) -> set[str]: ...

    def remember(self, actor: str, kind: str, value: str) -> None: ...


class TransientMemory:
    """First-seen memory held in this process only (`rules test`, tests): the engine's
    persisted memory lives in its database."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], set[str]] = {}

    def seen(self, actor: str, kind: str) -> set[str]:
        return self.values.setdefault((actor, kind), set())

    def remember(self, actor: str, kind: str, value: str) -> None:
        self.seen(actor, kind).add(value)


@dataclass
class _Watched:
    path: Path
    loader: Callable[[Path], Any]
    value: Any = None
    stamp: tuple[float, int] | None = None
    checked: float = 0.0

    def get(self) -> Any:
        """The file's contents, re-read when its modification time or size changed
        (looked at no more than once a second)."""
        now = monotonic()
        if self.stamp is not None and now - self.checked < RECHECK_SECONDS:
            return self.value
        self.checked = now
        try:
            info = self.path.stat()
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror}") from None
        stamp = (info.st_mtime, info.st_size)
        if stamp != self.stamp:
            self.value, self.stamp = self.loader(self.path), stamp
        return self.value


class Context:
    """The organisation's context; :meth:`enrich` adds ``enrich.*`` to an entry's fields."""

    def __init__(
        self,
        memory: Memory,
        *,
        roster: Path | None = None,
        geography: Path | None = None,
        ownership: Path | None = None,
    ) -> None:
        self.memory = memory
        self._roster = _Watched(roster, load_roster) if roster else None
        self._geo = _Watched(geography, load_geography) if geography else None
        self._owners = _Watched(ownership, load_ownership) if ownership else None
        self.check()

    def check(self) -> None:
        """Read every file now: ConfigError names the first that is unusable."""
        for watched in (self._roster, self._geo, self._owners):
            if watched is not None:
                watched.get()

    def enrich(self, fields: Fields) -> None:
        actor = fields.get("actor.id")
        roster: dict[str, Shift] = self._roster.get() if self._roster else {}
        shift = roster.get(actor) if isinstance(actor, str) else None
        unit = shift.unit if shift else fields.get("actor.unit")
        if unit:
            fields["enrich.unit"] = unit
        owner = self._resource_unit(fields)
        if owner:
            fields["enrich.resource_unit"] = owner
        moment = _moment(fields.get("time"))
        if shift and moment:
            start, on_shift = shift.around(moment)
            fields["enrich.shift"] = _minute(start)
            fields["enrich.on_shift"] = on_shift
        if isinstance(actor, str):
            self._first_seen(actor, fields)

    def _resource_unit(self, fields: Fields) -> str | None:
        if self._owners is not None:
            key = (str(fields.get("resource.type")), str(fields.get("resource.id")))
            owner = self._owners.get().get(key)
            if owner:
                return str(owner)
        found = fields.get("resource.unit")
        return str(found) if found else None

    def _first_seen(self, actor: str, fields: Fields) -> None:
        address = fields.get("source.ip")
        if isinstance(address, str):
            country = self._geo.get().country(address) if self._geo else None
            if country:
                fields["enrich.country"] = country
                self._note(actor, "country", country, fields)
            self._note(actor, "network", _network(address), fields)
        agent = fields.get("source.user_agent")
        if isinstance(agent, str):
            self._note(actor, "device", agent[:200], fields)

    def _note(self, actor: str, kind: str, value: str, fields: Fields) -> None:
        """``enrich.new_<kind>``: true when the user has history and not this value."""
        history = self.memory.seen(actor, kind)
        if value not in history:
            fields[f"enrich.new_{kind}"] = bool(history)
            self.memory.remember(actor, kind, value)
        else:
            fields[f"enrich.new_{kind}"] = False


@lru_cache(maxsize=65536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ipv4(text: str) -> int | None:
    """A dotted-quad address as an integer, ten times faster than ipaddress."""
    try:
        return int.from_bytes(socket.inet_aton(text), "big") if text.count(".") == 3 else None
    except OSError:
        return None


@lru_cache(maxsize=65536)
def _network(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address is in: a user's "network"."""
    if _ipv4(address) is not None:
        return address.rsplit(".", 1)[0] + ".0/24"
    ip = _address(address)
    if ip is None:
        return address
    return str(ipaddress.ip_network(f"{ip}/48", strict=False))


@lru_cache(maxsize=4096)
def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
