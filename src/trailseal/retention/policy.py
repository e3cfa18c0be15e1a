"""Retention policies: how long entries stay hot, and how long they are kept at all.

``DATA/retention.yaml``::

    policies:
      - name: phi
        preset: hipaa              # 6 years
        match: "resource:patient"  # the search language: action, resource, tenant
      - name: cardholder
        preset: pci-dss            # 1 year, the last 3 months hot
        match: "tenant:payments"
      - name: approvals
        preset: part11             # until the document is retired, then `total` more
        total: 2 years
      - name: everything-else
        total: 12 months
        hot: 3 months

Periods run from when the log received an entry (a writer cannot shorten them by
back-dating ``time``). Where several policies match an entry, the longest total period
wins (then the longest hot period, then the first in the file); an entry no policy
matches is kept, hot. A preset's periods are the framework's minimum: a policy may keep
longer, never shorter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from croniter import croniter

from trailseal.errors import ConfigError, QueryError
from trailseal.query import And, Match, Node, Not, Or, parse

MATCHABLE = ("action", "resource", "tenant")  # what the search index decides alone
_PERIOD = re.compile(
    r"^\s*(?:(?P<n>[0-9]{1,4})\s*(?P<unit>days?|weeks?|months?|years?)|"
    r"P(?:(?P<y>[0-9]{1,4})Y)?(?:(?P<m>[0-9]{1,4})M)?(?:(?P<w>[0-9]{1,4})W)?(?:(?P<d>[0-9]{1,5})D)?)"
    r"\s*\Z",
    re.IGNORECASE,
)


@dataclass(frozen=True, order=True)
class Period:
    """A calendar period: years and months are calendar months, days are days."""

    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: object, where: str) -> Period:
        found = _PERIOD.match(str(text)) if isinstance(text, str | int) else None
        if found is None:
            raise ConfigError(
                f"{where}: {str(text)[:40]!r} is not a period; write e.g. '6 years', "
                "'3 months', '90 days' or ISO 8601 'P6Y'"
            )
        if found["n"] is not None:
            count, unit = int(found["n"]), found["unit"].lower().rstrip("s")
            months = {"year": 12, "month": 1}.get(unit, 0) * count
            days = {"week": 7, "day": 1}.get(unit, 0) * count
        else:
            months = 12 * int(found["y"] or 0) + int(found["m"] or 0)
            days = 7 * int(found["w"] or 0) + int(found["d"] or 0)
        period = cls(months, days)
        if period == cls():
            raise ConfigError(f"{where}: a period must be longer than zero")
        return period

    def before(self, moment: datetime) -> datetime:
        """``moment`` less this period (a month back from 31 March is 28 or 29 February)."""
        return self._shift(moment, -1)

    def after(self, moment: datetime) -> datetime:
        """``moment`` plus this period."""
        return self._shift(moment, 1)

    def _shift(self, moment: datetime, sign: int) -> datetime:
        year, month = divmod(moment.month - 1 + sign * self.months, 12)
        year += moment.year
        month += 1
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        last = (following - timedelta(days=1)).day
        shifted = moment.replace(year=year, month=month, day=min(moment.day, last))
        return shifted + timedelta(days=sign * self.days)

    def __str__(self) -> str:
        years, months = divmod(self.months, 12)
        parts = [
            f"{n} {unit}{'s' if n != 1 else ''}"
            for n, unit in ((years, "year"), (months, "month"), (self.days, "day"))
            if n
        ]
        return " ".join(parts)


@dataclass(frozen=True)
class Preset:
    total: Period
    hot: Period | None  # None: hot for the whole total
    per_document: bool = False


PRESETS = {
    "hipaa": Preset(Period(months=72), None),
    "pci-dss": Preset(Period(months=12), Period(months=3)),
    "soc2": Preset(Period(months=12), None),
    # Part 11: as long as the record itself, i.e. until document.retire, then `total`.
    "part11": Preset(Period(days=1), None, per_document=True),
}


@dataclass(frozen=True)
class Policy:
    name: str
    line: int  # in the policy file
    match: Node | None  # None: every entry
    match_text: str
    total: Period
    hot: Period | None  # None: hot until purged
    preset: str | None = None
    per_document: bool = False  # part11: total counts from the document's retirement


@dataclass(frozen=True)
class RetentionConfig:
    policies: tuple[Policy, ...]
    cold: str | None = None  # where segments go: a folder (relative: to DATA) or s3://B/P
    schedule: str | None = None  # when `serve` runs retention (cron); None: only by hand

    def ranked(self) -> list[Policy]:
        """The policies, the one that wins an entry first: longest total, then longest
        hot, then the first in the file (per-document policies outrank the others: a
        document's records last as long as it does)."""
        order = {policy.name: n for n, policy in enumerate(self.policies)}

        def length(period: Period) -> int:
            return period.months * 31 + period.days

        return sorted(
            self.policies,
            key=lambda p: (
                not p.per_document,
                -length(p.total),
                -length(p.hot or p.total),
                order[p.name],
            ),
        )


class _LineLoader(yaml.SafeLoader):
    """YAML that remembers each mapping's line (``__line__``, 1-based)."""


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    found: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    found["__line__"] = node.start_mark.line + 1
    return found


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_KEYS = {"name", "preset", "match", "total", "hot", "__line__"}


def _match(text: object, where: str) -> Node | None:
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ConfigError(f"{where}: match is a query in the search language, in quotes")
    try:
        root = parse(text).root
    except QueryError as exc:
        raise ConfigError(f"{where}: match: {exc.diagnostics()}") from None
    if root is None:
        return None
    _only_indexed(root, where)
    return root


def _only_indexed(node: Node, where: str) -> None:
    if isinstance(node, Match):
        if node.qualifier not in MATCHABLE:
            raise ConfigError(
                f"{where}: match may name {', '.join(q + ':' for q in MATCHABLE)} only, "
                f"not {node.qualifier}:"
            )
        return
    if isinstance(node, Not):
        _only_indexed(node.node, where)
        return
    if not isinstance(node, And | Or):
        raise ConfigError(f"{where}: match may name {', '.join(q + ':' for q in MATCHABLE)} only")
    for part in node.nodes:
        _only_indexed(part, where)


def _name(item: dict[str, Any], where: str, names: set[str]) -> str:
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        keys = ", ".join(sorted(_KEYS - {"__line__"}))
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; use {keys}")
    name = item.get("name")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z", name):
        raise ConfigError(f"{where}: a policy needs a name of letters, digits, '.', '_' or '-'")
    if name in names:
        raise ConfigError(f"{where}: a second policy named {name!r}")
    names.add(name)
    return name


def _preset(item: dict[str, Any], where: str) -> Preset | None:
    named = item.get("preset")
    if named is None:
        return None
    preset = PRESETS.get(str(named))
    if preset is None:
        raise ConfigError(
            f"{where}: unknown preset {str(named)[:40]!r}; the presets are {', '.join(PRESETS)}"
        )
    return preset


def _periods(
    item: dict[str, Any], where: str, preset: Preset | None
) -> tuple[Period, Period | None]:
    """(total, hot) from the policy's own periods and its preset's, checked."""
    named = item.get("preset")
    total = Period.parse(item["total"], where) if "total" in item else None
    per_document = preset is not None and preset.per_document
    if total is None:
        if preset is None or per_document:
            needs = "total: how long after document.retire" if per_document else "a total"
            raise ConfigError(f"{where}: a policy needs {needs} (or a preset)")
        total = preset.total
    elif preset is not None and not per_document and total < preset.total:
        raise ConfigError(
            f"{where}: total {total} is shorter than {named}'s {preset.total}; a policy may "
            "keep longer than its framework asks, never shorter"
        )
    hot = Period.parse(item["hot"], where) if "hot" in item else None
    if hot is None:
        hot = preset.hot if preset is not None else None
    elif preset is not None and preset.hot is not None and hot < preset.hot:
        raise ConfigError(f"{where}: hot {hot} is shorter than {named}'s {preset.hot}")
    if hot is not None and not per_document and hot > total:
        raise ConfigError(f"{where}: hot {hot} is longer than total {total}")
    return total, hot


def _policy(item: object, source: str, names: set[str]) -> Policy:
    if not isinstance(item, dict):
        raise ConfigError(f"{source}: a policy is a mapping with a name, and a preset or a total")
    line = int(item.get("__line__", 0))
    where = f"{source} line {line}"
    name = _name(item, where, names)
    preset = _preset(item, where)
    total, hot = _periods(item, where, preset)
    per_document = preset is not None and preset.per_document
    text = item.get("match")
    if text is None and per_document:
        text = "resource:document"
    return Policy(
        name=name,
        line=line,
        match=_match(text, where),
        match_text="" if text is None else str(text),
        total=total,
        hot=hot,
        preset=None if item.get("preset") is None else str(item["preset"]),
        per_document=per_document,
    )


def parse_config(text: str, source: str = "retention.yaml") -> RetentionConfig:
    """Parse and check a policy file; every error names the file and the line."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not YAML: {exc}") from None
    if document is None:
        return RetentionConfig(())
    if not isinstance(document, dict) or not isinstance(document.get("policies", []), list):
        raise ConfigError(f"{source}: expected a mapping with a list under 'policies'")
    unknown = sorted(set(document) - {"policies", "cold", "schedule", "__line__"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r}; the file holds policies, cold and schedule"
        )
    cold = _cold(document.get("cold"), f"{source} line {_line(text, 'cold')}")
    schedule = _schedule(document, f"{source} line {_line(text, 'schedule')}")
    names: set[str] = set()
    policies = tuple(_policy(item, source, names) for item in document.get("policies") or [])
    matches: dict[str, Policy] = {}
    for policy in policies:
        earlier = matches.get(policy.match_text.strip())
        if earlier is not None:
            raise ConfigError(
                f"{source} line {policy.line}: policy {policy.name!r} matches exactly what "
                f"{earlier.name!r} (line {earlier.line}) matches; merge them, or make one narrower"
            )
        matches[policy.match_text.strip()] = policy
    return RetentionConfig(policies, cold, schedule)


def _line(text: str, key: str) -> int:
    """The line a top-level key is on (1-based; 1 when it cannot be found)."""
    found = re.search(rf"^{key}\s*:", text, flags=re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def _cold(value: object, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 1024:
        raise ConfigError(f"{source}: 'cold' is a folder or s3://BUCKET/PREFIX, not {value!r}")
    if "://" in value and not value.startswith("s3://"):
        raise ConfigError(f"{source}: 'cold' {value!r} is neither a folder nor s3://BUCKET/PREFIX")
    return value.strip()


def _schedule(document: dict[str, Any], source: str) -> str | None:
    value = document.get("schedule")
    if value is None:
        return None
    if not isinstance(value, str) or not croniter.is_valid(value):
        raise ConfigError(
            f"{source}: 'schedule' is a cron expression such as '0 3 * * *' (03:00 UTC "
            f"daily), not {value!r}"
        )
    return value


def load_config(path: Path) -> RetentionConfig:
    """The policies in ``path``; none when it does not exist (everything is kept)."""
    if not path.is_file():
        return RetentionConfig(())
    return parse_config(path.read_text(), str(path.name))


def any_of(nodes: list[Node | None]) -> Node | None:
    """A query that matches what any of ``nodes`` matches (None among them: everything)."""
    if any(node is None for node in nodes):
        return None
    kept = [node for node in nodes if node is not None]
    return kept[0] if len(kept) == 1 else Or(tuple(kept))
