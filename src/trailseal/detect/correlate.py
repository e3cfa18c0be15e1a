"""Sigma correlations over matched entries: event_count, value_count, temporal and
temporal_ordered, grouped by fields, within a timespan of event time.

The state is plain JSON (:meth:`Correlator.state`), saved with the engine's
cursor in one transaction, so a restart resumes exactly where it stopped:
nothing is counted twice and nothing is forgotten.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trailseal.detect.fields import Fields
from trailseal.detect.rules import Correlation

_OPS: dict[str, Callable[[int, int], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
}


@dataclass(frozen=True)
class Firing:
    """A correlation that held: its group and the entries that made it hold."""

    correlation: Correlation | None  # None: a single rule matched
    group: str
    evidence: list[int]
    first: str  # event times
    last: str
    tenant: str | None = None  # the evidence's: a correlation never joins two tenants


_SCOPE = "\x1f"  # between the tenant and the group in a correlation's state key


def scoped_key(fields: Fields, names: tuple[str, ...]) -> str:
    """The state key of an entry's group: its tenant first, so that entries of different
    tenants never count, pair or sequence together, whatever the rule groups by."""
    tenant = fields.get("tenant")
    return f"{tenant or ''}{_SCOPE}{group_key(fields, names)}"


def unscoped(key: str) -> tuple[str | None, str]:
    """(tenant, group) of a state key (state saved before tenants scoped it has none)."""
    if _SCOPE not in key:
        return None, key
    tenant, _, group = key.partition(_SCOPE)
    return tenant or None, group


def group_key(fields: Fields, names: tuple[str, ...]) -> str:
    return ",".join(f"{name}={fields.get(name)}" for name in names) if names else "*"


class Correlator:
    """One correlation's state, fed with entries that matched one of its rules."""

    def __init__(self, correlation: Correlation, state: dict[str, Any] | None = None) -> None:
        self.c = correlation
        self.groups: dict[str, Any] = dict(state or {})
        self.test: Callable[[int, int], bool] = _OPS.get(correlation.op, operator.ge)

    def state(self) -> dict[str, Any]:
        return self.groups

    def prune(self, seconds: float) -> None:
        """Forget groups with nothing within the timespan of ``seconds`` (event time):
        without this, the state of a long log would grow with every actor and shift."""
        stale = [k for k, g in self.groups.items() if seconds - _newest(g) > self.c.timespan]
        for key in stale:
            del self.groups[key]

    def feed(
        self, rule: str, fields: Fields, seconds: float, stamp: str, index: int
    ) -> Firing | None:
        """``rule`` matched the entry at ``index`` (event time ``seconds``)."""
        key = scoped_key(fields, self.c.group_by)
        kind = self.c.kind
        if kind == "event_count":
            return self._count(key, seconds, stamp, index)
        if kind == "value_count":
            return self._values(key, fields, seconds, stamp, index)
        if kind == "temporal":
            return self._temporal(key, rule, seconds, stamp, index)
        return self._ordered(key, rule, seconds, stamp, index)

    def _fire(self, key: str, hits: list[list[Any]]) -> Firing:
        self.groups.pop(key, None)  # start counting afresh after an alert
        hits.sort(key=lambda hit: hit[2])
        tenant, group = unscoped(key)
        return Firing(self.c, group, [h[2] for h in hits], hits[0][1], hits[-1][1], tenant)

    def _recent(self, hits: list[list[Any]], seconds: float) -> list[list[Any]]:
        return [h for h in hits if seconds - h[0] <= self.c.timespan]

    def _count(self, key: str, seconds: float, stamp: str, index: int) -> Firing | None:
        hits = [*self._recent(self.groups.get(key, []), seconds), [seconds, stamp, index]]
        self.groups[key] = hits
        return self._fire(key, hits) if self.test(len(hits), self.c.count) else None

    def _values(
        self, key: str, fields: Fields, seconds: float, stamp: str, index: int
    ) -> Firing | None:
        value = fields.get(self.c.field or "")
        if value is None:
            return None
        values: dict[str, list[Any]] = self.groups.get(key, {})
        values = {v: h for v, h in values.items() if seconds - h[0] <= self.c.timespan}
        values[str(value)] = [seconds, stamp, index]
        self.groups[key] = values
        if self.test(len(values), self.c.count):
            return self._fire(key, list(values.values()))
        return None

    def _temporal(
        self, key: str, rule: str, seconds: float, stamp: str, index: int
    ) -> Firing | None:
        latest: dict[str, list[Any]] = self.groups.get(key, {})
        latest = {r: h for r, h in latest.items() if seconds - h[0] <= self.c.timespan}
        latest[rule] = [seconds, stamp, index]
        self.groups[key] = latest
        if all(r in latest for r in self.c.rules):
            return self._fire(key, list(latest.values()))
        return None

    def _ordered(
        self, key: str, rule: str, seconds: float, stamp: str, index: int
    ) -> Firing | None:
        """chains[k] is the best chain that has reached step k: its start time and hits.
        Steps are tried from the last down, so one entry never fills two steps."""
        chains: list[Any] = self.groups.get(key) or [None] * len(self.c.rules)
        for step in range(len(self.c.rules) - 1, -1, -1):
            if self.c.rules[step] != rule:
                continue
            hit = [seconds, stamp, index]
            if step == 0:
                chains[0] = [seconds, [hit]]
                continue
            before = chains[step - 1]
            if before is not None and seconds - before[0] <= self.c.timespan:
                chains[step] = [before[0], [*before[1], hit]]
        self.groups[key] = chains
        done = chains[-1]
        if done is not None:
            return self._fire(key, list(done[1]))
        return None


def _newest(state: Any) -> float:
    """The latest event time among the hits ``[seconds, stamp, index]`` held in ``state``."""
    if isinstance(state, list) and len(state) == 3 and isinstance(state[0], int | float):
        return float(state[0])
    if isinstance(state, dict):
        return max((_newest(v) for v in state.values()), default=0.0)
    if isinstance(state, list):
        return max((_newest(v) for v in state if v is not None), default=0.0)
    return 0.0
