"""What retention would do at a moment: per policy, the entries it governs, which of them
are past their hot period (to be sealed into the cold tier) and which past their total
period (to be purged), and when the next ones will be.

Everything is counted on the search index, which holds each entry's action, resource and
tenant (all a policy may match on). Periods run from when the log received an entry,
and the log receives in index order, so "received before a moment" is "below an index"
found by bisecting the log: no entry is read one by one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from trailseal.ledger import Ledger, SearchFilter
from trailseal.ledger.search import fixed_width
from trailseal.query import Between, Exact, Match, Node, Not, ResourceValue, both
from trailseal.retention.holds import Hold
from trailseal.retention.policy import Policy, RetentionConfig, any_of

RETIRE = "document.retire"  # ends a document's life; part11 counts its total from here


@dataclass(frozen=True)
class PolicyPlan:
    """One policy at one moment."""

    policy: Policy
    governed: int  # entries this policy decides: the longest that matches them
    hot: int
    cold: int  # past the hot period: to be sealed into the cold tier
    purge: int  # past the total period: to be purged
    cold_before: str | None  # entries received before this are past hot (None: never)
    purge_before: str | None  # ... past total (None: per document, after its retirement)
    next_cold: str | None  # when the next governed hot entry passes its hot period
    retired: int = 0  # per-document policies: documents retired long enough to purge
    held: int = 0  # past their total period but kept by a legal hold
    in_cold: int = 0  # of ``cold``, those a run has sealed already

    def to_json(self) -> dict[str, object]:
        policy = self.policy
        return {
            "policy": policy.name,
            "preset": policy.preset,
            "match": policy.match_text,
            "total": str(policy.total) + (" after document.retire" if policy.per_document else ""),
            "hot": str(policy.hot) if policy.hot else "until purged",
            "governed": self.governed,
            "hot_entries": self.hot,
            "past_hot": self.cold,
            "in_cold": self.in_cold,
            "to_cold": max(0, self.cold - self.in_cold),
            "to_purge": self.purge,
            "cold_before": self.cold_before,
            "purge_before": self.purge_before,
            "next_cold": self.next_cold,
            "retired_documents": self.retired,
            "held": self.held,
        }


@dataclass(frozen=True)
class Plan:
    at: str  # the moment planned for (fixed-width UTC)
    size: int  # the log's size when planned
    policies: list[PolicyPlan]
    unmatched: int  # entries no policy matches: kept, hot

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "size": self.size,
            "policies": [found.to_json() for found in self.policies],
            "unmatched": self.unmatched,
        }


def utc(moment: datetime) -> str:
    """A moment as the log writes times: fixed-width RFC 3339 UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_moment(moment: str) -> datetime:
    """A time the log wrote (``received_at``), as an aware UTC datetime."""
    return datetime.strptime(fixed_width(moment), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class Counter:
    """Counts over one log, pinned to its size when planning began."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        ledger.catch_up()
        self.size = ledger.size()

    def count(self, node: Node | None, below: int | None = None) -> int:
        limit = self.size if below is None else min(below, self.size)
        query = SearchFilter(where=node, below_index=limit)
        return self.ledger.count_by(query, "action").total

    def below(self, moment: datetime) -> int:
        return min(self.ledger.first_received(utc(moment)), self.size)

    def first_received(self, node: Node | None, after: int) -> str | None:
        query = SearchFilter(where=node, after_index=after - 1, below_index=self.size, limit=1)
        found = next(self.ledger.find(query, details=False), None)
        return None if found is None else str(found.entry["received_at"])


_NOTHING = Match("index", (Between(-1, -1),))  # matches no entry (an empty index range)


@dataclass(frozen=True)
class _Holds:
    """What the active holds cover: never purged (``held``), and kept hot (``frozen``)."""

    held: Node | None
    frozen: Node | None

    def keep(self, node: Node | None, which: Node | None) -> Node | None:
        """``node`` less what ``which`` covers (None: every entry is covered)."""
        if which == _NOTHING:
            return node
        return _NOTHING if which is None else both(node, Not(which))


def governed(policy: Policy, outranking: list[Policy]) -> tuple[bool, Node | None]:
    """(whether it governs anything, the query of what it governs): what it matches and
    no policy ranked above it matches."""
    if not outranking:
        return True, policy.match
    above = any_of([other.match for other in outranking])
    if above is None:  # a policy above matches every entry
        return False, None
    return True, both(policy.match, Not(above))


def _cold(
    counter: Counter, policy: Policy, kept: Node | None, at: datetime, purged_below: int = 0
) -> tuple[int, str | None, str | None]:
    """(entries past the hot period and not purged, the moment before which entries are
    past it, when the next hot one passes it) among ``kept``; ``purged_below`` entries
    of those below the cutoff are purged already."""
    if policy.hot is None:
        return 0, None, None
    moment = policy.hot.before(at)
    edge = counter.below(moment)
    oldest_hot = counter.first_received(kept, edge)
    following = None if oldest_hot is None else utc(policy.hot.after(parse_moment(oldest_hot)))
    return counter.count(kept, edge) - purged_below, utc(moment), following


def _standard(
    counter: Counter, policy: Policy, node: Node | None, at: datetime, holds: _Holds
) -> PolicyPlan:
    governed = counter.count(node)
    purge_before = policy.total.before(at)
    below_total = counter.below(purge_before)
    past = counter.count(node, below_total)
    free = holds.keep(node, holds.held)
    purge = counter.count(free, below_total)
    movable = holds.keep(node, holds.frozen)
    cold, cold_before, next_cold = _cold(counter, policy, movable, at)
    if policy.hot is not None:  # what is purged is not moved: past both, it goes
        cold -= counter.count(holds.keep(movable, holds.held), below_total)
    return PolicyPlan(
        policy,
        governed,
        governed - cold - purge,
        cold,
        purge,
        cold_before,
        utc(purge_before),
        next_cold,
        held=past - purge,
    )


def retired_documents(
    counter: Counter, node: Node | None, policy: Policy, at: datetime
) -> list[Node]:
    """The documents governed by ``policy`` whose retirement is at least its total ago."""
    retire = both(node, Match("action", (Exact(RETIRE),)))
    query = SearchFilter(where=retire, below_index=counter.size, limit=2**62)
    expired: dict[tuple[str, str], Node] = {}
    for view in counter.ledger.find(query, details=False):
        resource = view.entry["event"].get("resource") or {}
        if not resource.get("id"):
            continue
        if policy.total.after(parse_moment(str(view.entry["received_at"]))) <= at:
            key = (str(resource.get("type")), str(resource["id"]))
            expired[key] = Match("resource", (ResourceValue(Exact(key[0]), Exact(key[1])),))
    return list(expired.values())


def _per_document(
    counter: Counter, policy: Policy, node: Node | None, at: datetime, holds: _Holds
) -> PolicyPlan:
    governed = counter.count(node)
    expired = retired_documents(counter, node, policy, at)
    gone = any_of(list(expired)) if expired else None
    past = counter.count(both(node, gone)) if expired else 0
    free = holds.keep(node, holds.held)
    purge = counter.count(both(free, gone)) if expired else 0
    movable = holds.keep(node, holds.frozen)
    cold, cold_before, next_cold = _cold(counter, policy, movable, at)
    if policy.hot is not None and expired:  # what is purged is not moved
        cold -= counter.count(
            both(holds.keep(movable, holds.held), gone), counter.below(policy.hot.before(at))
        )
    return PolicyPlan(
        policy,
        governed,
        governed - cold - purge,
        cold,
        purge,
        cold_before,
        None,
        next_cold,
        retired=len(expired),
        held=past - purge,
    )


def _sealed(ledger: Ledger) -> dict[str, int]:
    """Entries already in the cold tier, per the policy their segment was sealed under."""
    live = ledger.reader.cold_counts()
    found: dict[str, int] = {}
    for segment in ledger.reader.segments():
        if segment.id in live:
            name = str(json.loads(segment.manifest)["policy"])
            found[name] = found.get(name, 0) + live[segment.id]
    return found


def plan(ledger: Ledger, config: RetentionConfig, at: datetime, holds: Sequence[Hold] = ()) -> Plan:
    """What a retention run at ``at`` would move to cold and purge, per policy. What a
    hold covers is never purged (it stays where it is, counted as held), and a hold that
    stops the move to cold keeps what it covers hot."""
    counter = Counter(ledger)
    ranked = config.ranked()
    frozen = [hold.node for hold in holds if hold.stops_cold]
    covered = _Holds(
        any_of([hold.node for hold in holds]) if holds else _NOTHING,
        any_of(frozen) if frozen else _NOTHING,
    )
    found = []
    for n, policy in enumerate(ranked):
        governs, node = governed(policy, ranked[:n])
        if not governs:
            found.append(PolicyPlan(policy, 0, 0, 0, 0, None, None, None))
            continue
        decide = _per_document if policy.per_document else _standard
        found.append(decide(counter, policy, node, at, covered))
    matched = any_of([policy.match for policy in config.policies]) if config.policies else None
    unmatched = counter.size if not config.policies else 0
    if config.policies and matched is not None:
        unmatched = counter.count(Not(matched))
    order = {policy.name: n for n, policy in enumerate(config.policies)}
    found.sort(key=lambda item: order[item.policy.name])
    sealed = _sealed(ledger)
    found = [replace(item, in_cold=sealed.get(item.policy.name, 0)) for item in found]
    return Plan(utc(at), counter.size, found, unmatched)
