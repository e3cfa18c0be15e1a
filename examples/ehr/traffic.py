"""A month of staff activity in the hospital, with four planted incidents.

The benign month follows rules a detection engine can rely on: staff log in
at the start of their own shifts from the hospital's network or its VPN
(both in the US), open only their own unit's patients and at most 30 of them
in a shift, clerks export at most 20 records at a time, and administrators
grant only non-privileged roles. The incidents break exactly one of those
patterns each (see :data:`Incident`). The same seed gives the same month.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ehr.hospital import TIMEZONE, UNITS, Chart, Person

LOCAL = ZoneInfo(TIMEZONE)
FIRST_DAY = date(2026, 10, 1)


@dataclass(frozen=True, order=True)
class Step:
    """One request: at ``when`` (UTC), ``actor`` does ``verb`` (see ehr.demo.perform)."""

    when: datetime
    actor: str = field(compare=False)
    verb: str = field(compare=False)
    args: dict[str, Any] = field(default_factory=dict, compare=False)
    ip: str = field(default="198.51.100.10", compare=False)


@dataclass(frozen=True)
class Incident:
    """A planted incident: what happened, who did it, and when (UTC)."""

    name: str
    actor: str
    story: str
    start: datetime
    end: datetime


def _at(day: date, clock: str, minutes: float = 0) -> datetime:
    """Local wall-clock time on ``day`` (plus minutes) in UTC."""
    hours, mins = (int(part) for part in clock.split(":"))
    local = datetime.combine(day, time(hours, mins), LOCAL) + timedelta(minutes=minutes)
    return local.astimezone(UTC)


def _shift_minutes(person: Person) -> int:
    start = int(person.shift_start[:2]) * 60 + int(person.shift_start[3:])
    end = int(person.shift_end[:2]) * 60 + int(person.shift_end[3:])
    return (end - start) % (24 * 60)  # night shifts cross midnight


def _works(person: Person, day: date) -> bool:
    """Nurses: three or four twelve-hour shifts a week; everyone else: weekdays."""
    if person.roles[0] == "nurse":
        offset = int(person.id.rsplit("-", 1)[1])
        return (day.toordinal() + offset) % 7 in (0, 2, 4) or (day.toordinal() + offset) % 14 == 6
    return day.weekday() < 5


class Month:
    """The month's steps, in time order, and the incidents planted in them."""

    def __init__(
        self, people: list[Person], charts: list[Chart], days: int = 30, seed: int = 2026
    ) -> None:
        self.people = {p.id: p for p in people}
        self.by_unit = {u: [c.id for c in charts if c.unit == u] for u in UNITS}
        self.days = days
        self.rng = random.Random(seed)
        self.incidents: list[Incident] = []
        planted = self._incidents() + self._chores()
        busy = {(step.actor, step.when.astimezone(LOCAL).date()) for step in planted}
        steps = [s for p in people for d in range(days) for s in self._shift(p, d, busy)]
        self.steps = sorted(steps + planted)

    def day(self, fraction: float, *, weekday: bool = False) -> date:
        """The day ``fraction`` of the way through the month (the next weekday if asked)."""
        day = FIRST_DAY + timedelta(days=min(self.days - 1, int(self.days * fraction)))
        while weekday and day.weekday() >= 5:
            day += timedelta(days=1)
        return day

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    # -- benign work ---------------------------------------------------------

    def _shift(self, person: Person, n: int, busy: set[tuple[str, date]]) -> list[Step]:
        """One person's ordinary shift on day ``n``, unless planted steps fill that day."""
        day = FIRST_DAY + timedelta(days=n)
        if not _works(person, day) or (person.id, day) in busy:
            return []
        rng = self.rng
        length = _shift_minutes(person)
        ip = (
            f"198.51.100.{rng.randint(10, 250)}"
            if rng.random() < 0.9
            else f"192.0.2.{rng.randint(10, 250)}"
        )
        login = _at(day, person.shift_start, rng.uniform(-20, 10))
        steps = []
        if rng.random() < 0.03:  # a mistyped password first
            steps.append(
                Step(login - timedelta(seconds=30), person.id, "login", {"wrong": True}, ip)
            )
        steps.append(Step(login, person.id, "login", {}, ip))
        role = person.roles[0]
        moments = sorted(rng.uniform(5, length - 10) for _ in range(rng.randint(6, 18)))
        if role in ("nurse", "physician"):
            working_set = rng.sample(self.by_unit[person.unit], 12)
            at = [login + timedelta(minutes=minutes) for minutes in moments]
            steps += [self._clinical(person, when, working_set, ip) for when in at]
        elif role == "clerk":
            for minutes in moments[: rng.randint(1, 3)]:
                args = {
                    "unit": rng.choice(UNITS),
                    "limit": rng.randint(5, 20),
                    "destination": "referral-fax",
                }
                steps.append(
                    Step(login + timedelta(minutes=minutes), person.id, "export", args, ip)
                )
        elif role == "admin":
            steps.append(
                Step(login + timedelta(minutes=moments[0]), person.id, "list_staff", {}, ip)
            )
        steps.append(Step(login + timedelta(minutes=length - 5), person.id, "logout", {}, ip))
        return steps

    def _clinical(self, person: Person, when: datetime, working_set: list[str], ip: str) -> Step:
        rng = self.rng
        roll = rng.random()
        patient = rng.choice(working_set)
        if roll < 0.55:
            return Step(when, person.id, "read", {"patient": patient}, ip)
        if roll < 0.65:
            return Step(when, person.id, "list", {"unit": person.unit}, ip)
        if roll < 0.85:
            return Step(when, person.id, "note", {"patient": patient}, ip)
        if roll < 0.97 or person.roles[0] != "physician":
            return Step(when, person.id, "read", {"patient": patient}, ip)
        return Step(when, person.id, "diagnose", {"patient": patient}, ip)

    def _chores(self) -> list[Step]:
        """a-1 makes a day nurse charge nurse for two weeks: a routine, non-privileged change."""
        admin, ip = "a-1", "198.51.100.201"
        steps = []
        for fraction, verb in ((0.15, "grant"), (0.6, "revoke")):
            day = self.day(fraction, weekday=True)
            steps += [
                Step(_at(day, "08:05"), admin, "login", {}, ip),
                Step(
                    _at(day, "10:15"), admin, verb, {"staff": "n-4A-1", "role": "charge-nurse"}, ip
                ),
                Step(_at(day, "16:55"), admin, "logout", {}, ip),
            ]
        return steps

    # -- the incidents ---------------------------------------------------------

    def _plant(self, name: str, actor: str, story: str, steps: list[Step]) -> list[Step]:
        self.incidents.append(Incident(name, actor, story, steps[0].when, steps[-1].when))
        return steps

    def _incidents(self) -> list[Step]:
        rng = random.Random(99)
        steps: list[Step] = []
        # 1. a day nurse on 3B opens ICU records she has no reason to see
        day = self.day(0.30)
        nurse, ip = "n-3B-2", "198.51.100.31"
        icu = rng.sample(self.by_unit["ICU"], 6)
        steps += self._plant(
            "outside-unit",
            nurse,
            "a 3B nurse opens six ICU patients' records during her shift",
            [Step(_at(day, "07:02"), nurse, "login", {}, ip)]
            + [
                Step(_at(day, "10:00", 6 * i), nurse, "read", {"patient": p}, ip)
                for i, p in enumerate(icu)
            ]
            + [Step(_at(day, "18:50"), nurse, "logout", {}, ip)],
        )
        # 2. a physician opens 80 different records in one shift
        day = self.day(0.47)
        doctor, ip = "p-4A-2", "198.51.100.47"
        charts = rng.sample(self.by_unit["4A"], 80)
        steps += self._plant(
            "many-records",
            doctor,
            "a 4A physician opens 80 different patients' records in one shift",
            [Step(_at(day, "08:01"), doctor, "login", {}, ip)]
            + [
                Step(_at(day, "09:00", 6 * i), doctor, "read", {"patient": p}, ip)
                for i, p in enumerate(charts)
            ]
            + [Step(_at(day, "17:55"), doctor, "logout", {}, ip)],
        )
        # 3. an administrator grants herself the export role, then exports everything
        day = self.day(0.67, weekday=True)
        admin, ip = "a-2", "198.51.100.200"
        steps += self._plant(
            "escalation-then-export",
            admin,
            "an administrator grants herself records-export, then exports 500 records",
            [
                Step(_at(day, "14:02"), admin, "login", {}, ip),
                Step(
                    _at(day, "14:10"),
                    admin,
                    "grant",
                    {"staff": admin, "role": "records-export"},
                    ip,
                ),
                Step(
                    _at(day, "14:35"),
                    admin,
                    "export",
                    {"limit": 500, "destination": "usb://E:"},
                    ip,
                ),
                Step(_at(day, "14:40"), admin, "logout", {}, ip),
            ],
        )
        # 4. a day nurse logs in at 02:40 from a country the hospital never sees
        day = self.day(0.77)
        nurse, ip = "n-ICU-2", "203.0.113.77"
        own = rng.sample(self.by_unit["ICU"], 3)
        steps += self._plant(
            "after-hours-new-country",
            nurse,
            "an ICU day nurse logs in at 02:40 from 203.0.113.77 (RO)",
            [Step(_at(day, "02:40"), nurse, "login", {}, ip)]
            + [
                Step(_at(day, "02:45", 3 * i), nurse, "read", {"patient": p}, ip)
                for i, p in enumerate(own)
            ]
            + [Step(_at(day, "03:00"), nurse, "logout", {}, ip)],
        )
        return steps
