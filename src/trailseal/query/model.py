"""A parsed search query: a tree of typed conditions, ready to match or to compile.

Every value is checked and normalised when the query is parsed (times to fixed-width
UTC, relative times resolved, addresses to networks), so matching an entry never
fails and two doors given the same text get the same tree.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """How a qualifier's values are written and compared."""

    TEXT = "text"  # exact, a list, or a prefix ending in *
    RESOURCE = "resource"  # TYPE or TYPE/ID (either may end in *)
    OUTCOME = "outcome"  # success, failure or denied
    NUMBER = "number"  # an integer, a range a..b or a comparison
    ADDRESS = "address"  # an IP address or a CIDR network
    TIME = "time"  # RFC 3339, a date or month, a relative time; ranges and comparisons


# Each qualifier, the event field it reads, and how its values are written. The order is
# the order the error for an unknown qualifier lists them in.
QUALIFIERS: dict[str, tuple[Kind, str]] = {
    "actor": (Kind.TEXT, "actor.id"),
    "role": (Kind.TEXT, "actor.roles (any of them)"),
    "session": (Kind.TEXT, "actor.session_id"),
    "tenant": (Kind.TEXT, "resource.tenant, else actor.tenant"),
    "unit": (Kind.TEXT, "actor.unit or resource.unit"),
    "action": (Kind.TEXT, "action (record.* for a prefix)"),
    "resource": (Kind.RESOURCE, "resource.type/resource.id"),
    "outcome": (Kind.OUTCOME, "outcome.result"),
    "status": (Kind.NUMBER, "outcome.status"),
    "ip": (Kind.ADDRESS, "source.ip (an address or a CIDR)"),
    "country": (Kind.TEXT, "source.geo.country"),
    "ticket": (Kind.TEXT, "context.ticket"),
    "index": (Kind.NUMBER, "the entry's index in the log"),
    "time": (Kind.TIME, "when it happened (the event's time)"),
    "received": (Kind.TIME, "when the log received it"),
}
PRESENCE_QUALIFIERS = ("has", "no")
# What has:/no: may test: every optional field a qualifier reads, and the detail.
PRESENCE_FIELDS = (
    "role",
    "session",
    "tenant",
    "unit",
    "resource",
    "outcome",
    "status",
    "ip",
    "country",
    "ticket",
    "detail",
    "impersonator",
)
# Free text matches these (case-insensitive, as a substring); never the detail.
TEXT_FIELDS = (
    "actor.id",
    "actor.name",
    "action",
    "resource.type",
    "resource.id",
    "source.host",
    "source.service",
    "request.path",
)
OUTCOMES = ("success", "failure", "denied")


@dataclass(frozen=True)
class Exact:
    text: str


@dataclass(frozen=True)
class Prefix:
    text: str


Text = Exact | Prefix


@dataclass(frozen=True)
class ResourceValue:
    """``resource:TYPE`` (id is None) or ``resource:TYPE/ID``."""

    type: Text
    id: Text | None


@dataclass(frozen=True)
class Between:
    """A half-open range ``[low, high)``; None is unbounded. Integers for numbers,
    fixed-width UTC text for times (which sorts as time does)."""

    low: int | str | None
    high: int | str | None


@dataclass(frozen=True)
class Network:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network


Value = Exact | Prefix | ResourceValue | Between | Network


@dataclass(frozen=True)
class Match:
    """``qualifier:value[,value…]``: the field equals (or is in) any of the values."""

    qualifier: str
    values: tuple[Value, ...]
    position: int = 0


@dataclass(frozen=True)
class Presence:
    """``has:field`` (present is True) or ``no:field``."""

    field: str
    present: bool
    position: int = 0


@dataclass(frozen=True)
class FreeText:
    """A bare word or quoted phrase: a case-insensitive substring of a non-detail field."""

    text: str
    position: int = 0


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class And:
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    nodes: tuple[Node, ...]


Node = Match | Presence | FreeText | Not | And | Or


@dataclass(frozen=True)
class Query:
    """A parsed query: its text and its tree (None: every entry)."""

    text: str
    root: Node | None

    def __str__(self) -> str:
        return self.text


def qualifier_values(root: Node | None, qualifier: str) -> list[Value]:
    """Every value given to ``qualifier`` anywhere in a query's tree (negated ones too)."""
    found: list[Value] = []
    stack: list[Node] = [] if root is None else [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Match) and node.qualifier == qualifier:
            found += node.values
        elif isinstance(node, Not):
            stack.append(node.node)
        elif isinstance(node, And | Or):
            stack += node.nodes
    return found


def both(*parts: Node | None) -> Node | None:
    """The conjunction of the given conditions (None ones left out)."""
    nodes = tuple(part for part in parts if part is not None)
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else And(nodes)
