"""The hospital's people and places: a seeded roster, patients and networks.

Everything is derived from a seed, so the same month can be replayed and the
detection work can count exactly which alerts it should raise.
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

TIMEZONE = "America/Chicago"
UNITS = ("3B", "4A", "ICU", "ER", "MAT")
ROLES = {  # role: privileged
    "nurse": False,
    "charge-nurse": False,
    "physician": False,
    "clerk": False,
    "records-export": True,
    "admin": True,
}
HOSPITAL_NETWORK = "198.51.100.0/24"  # the wards' workstations
VPN_NETWORK = "192.0.2.0/24"  # staff working from home, same country
FOREIGN_NETWORK = "203.0.113.0/24"  # never used by this hospital's staff
GEOGRAPHY = ((HOSPITAL_NETWORK, "US"), (VPN_NETWORK, "US"), (FOREIGN_NETWORK, "RO"))

_FIRST = (
    "Ana", "Ben", "Carla", "Dev", "Elif", "Femi", "Gia", "Hana", "Ivan", "Jun",
    "Kira", "Luis", "Mara", "Nils", "Omar", "Pia", "Raj", "Sara", "Tom", "Uma",
)  # fmt: skip
_LAST = (
    "Okafor", "Jones", "Novak", "Haddad", "Silva", "Kim", "Muller",
    "Rossi", "Tanaka", "Ivanova", "Brown", "Diaz", "Khan", "Larsen",
)  # fmt: skip
_DIAGNOSES = (
    "community-acquired pneumonia",
    "NSTEMI",
    "post-operative monitoring",
    "sepsis",
    "type 2 diabetes, decompensated",
    "COPD exacerbation",
    "pre-eclampsia",
    "hip fracture",
)


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    unit: str
    roles: tuple[str, ...]
    shift_start: str  # local HH:MM
    shift_end: str

    @property
    def password(self) -> str:
        return f"demo-{self.id}"  # a demo: never do this with real credentials


@dataclass(frozen=True)
class Chart:
    id: str
    name: str
    birth_date: date
    unit: str
    ssn: str
    diagnosis: str


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def staff(seed: int = 7) -> list[Person]:
    """Per unit: three day and three night nurses and two physicians; records clerks;
    IT administrators."""
    rng = random.Random(seed)

    def person(staff_id: str, unit: str, role: str, shift: tuple[str, str]) -> Person:
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        return Person(staff_id, name, unit, (role,), *shift)

    day, night, office = ("07:00", "19:00"), ("19:00", "07:00"), ("09:00", "17:00")
    people: list[Person] = []
    for unit in UNITS:
        shifts = [day, day, day, night, night, night]
        people += [person(f"n-{unit}-{n}", unit, "nurse", shifts[n - 1]) for n in range(1, 7)]
        people += [person(f"p-{unit}-{n}", unit, "physician", ("08:00", "18:00")) for n in (1, 2)]
    people += [person(f"c-{n}", "HIM", "clerk", office) for n in (1, 2, 3)]
    people += [person(f"a-{n}", "IT", "admin", ("08:00", "17:00")) for n in (1, 2)]
    return people


def patients(per_unit: int = 100, seed: int = 11) -> list[Chart]:
    rng = random.Random(seed)

    def chart(unit: str, n: int) -> Chart:
        born = date(rng.randint(1935, 2024), rng.randint(1, 12), rng.randint(1, 28))
        ssn = f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        return Chart(f"MRN-{unit}-{n:04d}", name, born, unit, ssn, rng.choice(_DIAGNOSES))

    return [chart(unit, n) for unit in UNITS for n in range(per_unit)]


def write_context(directory: Path, people: list[Person]) -> tuple[Path, Path]:
    """The files the hospital hands its auditors: the staff roster and IP geography."""
    directory.mkdir(parents=True, exist_ok=True)
    roster = directory / "roster.csv"
    with roster.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["user_id", "unit", "shift_start", "shift_end", "timezone"])
        for person in people:
            writer.writerow(
                [person.id, person.unit, person.shift_start, person.shift_end, TIMEZONE]
            )
    geo = directory / "geo.csv"
    with geo.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["network", "country"])
        writer.writerows(GEOGRAPHY)
    return roster, geo
