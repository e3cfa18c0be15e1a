"""A parsed query as SQL over the search index: the candidates a search must check.

The search index holds some of an entry's fields (actor, action, resource, outcome,
tenant, time and the index). A query is translated into a condition that every
matching entry meets: exact where the index holds the fields a term reads, and
"anything" where it does not (the entry itself decides those, in
:mod:`trailseal.ledger.matching`). Under NOT the roles swap: a term the index cannot
decide must not rule anything out, so each node carries both a condition no match
fails (``wide``) and one only matches meet (``tight``).

SQL uses ``?`` placeholders; a backend that wants ``%s`` replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass

from trailseal.query import (
    And,
    Between,
    Exact,
    Match,
    Node,
    Not,
    Or,
    Prefix,
    ResourceValue,
    Value,
)

# Text compares byte-wise (SQLite's default; PostgreSQL's columns are COLLATE "C"), so a
# prefix is the range [prefix, prefix + the highest code point).
_HIGHEST = "\U0010ffff"
_NOT_NULL = ("actor", "action", "time", "idx")


@dataclass(frozen=True)
class Sql:
    text: str
    params: tuple[object, ...] = ()


EVERYTHING = Sql("1 = 1")
NOTHING = Sql("1 = 0")


def _text(column: str, value: Exact | Prefix) -> Sql:
    guard = "" if column in _NOT_NULL else f"{column} IS NOT NULL AND "
    if isinstance(value, Exact):
        return Sql(f"({guard}{column} = ?)", (value.text,))
    return Sql(f"({guard}{column} >= ? AND {column} < ?)", (value.text, value.text + _HIGHEST))


def _between(column: str, value: Between) -> Sql:
    parts, params = [], []
    if value.low is not None:
        parts.append(f"{column} >= ?")
        params.append(value.low)
    if value.high is not None:
        parts.append(f"{column} < ?")
        params.append(value.high)
    if not parts:
        return EVERYTHING
    return Sql("(" + " AND ".join(parts) + ")", tuple(params))


def _join(word: str, parts: list[Sql]) -> Sql:
    if len(parts) == 1:
        return parts[0]
    return Sql(
        "(" + f" {word} ".join(part.text for part in parts) + ")",
        tuple(param for part in parts for param in part.params),
    )


_COLUMNS = {"actor": "actor", "action": "action", "outcome": "outcome", "tenant": "tenant"}


def _value(qualifier: str, value: Value) -> Sql | None:
    """The exact condition for one value, or None when the index cannot decide it."""
    if qualifier in _COLUMNS and isinstance(value, Exact | Prefix):
        return _text(_COLUMNS[qualifier], value)
    if qualifier == "resource" and isinstance(value, ResourceValue):
        parts = [_text("resource_type", value.type)]
        if value.id is not None:
            parts.append(_text("resource_id", value.id))
        return _join("AND", parts)
    if qualifier in ("time", "index") and isinstance(value, Between):
        return _between("time" if qualifier == "time" else "idx", value)
    return None


def _bounds(node: Node) -> tuple[Sql | None, Sql | None]:
    """(wide, tight): every match meets ``wide``; everything meeting ``tight`` matches
    as far as the index can tell. None for wide means no condition; for tight, none
    the index can vouch for."""
    if isinstance(node, Match):
        parts = [_value(node.qualifier, value) for value in node.values]
        if any(part is None for part in parts):
            return None, None
        exact = _join("OR", [part for part in parts if part is not None])
        return exact, exact
    if isinstance(node, Not):
        wide, tight = _bounds(node.node)
        return (
            None if tight is None else Sql(f"NOT {tight.text}", tight.params),
            None if wide is None else Sql(f"NOT {wide.text}", wide.params),
        )
    if isinstance(node, And):
        pairs = [_bounds(part) for part in node.nodes]
        wides = [wide for wide, _ in pairs if wide is not None]
        tights = [tight for _, tight in pairs if tight is not None]
        return (
            _join("AND", wides) if wides else None,
            _join("AND", tights) if len(tights) == len(pairs) else None,
        )
    if isinstance(node, Or):
        pairs = [_bounds(part) for part in node.nodes]
        wides = [wide for wide, _ in pairs if wide is not None]
        tights = [tight for _, tight in pairs if tight is not None]
        return (
            _join("OR", wides) if len(wides) == len(pairs) else None,
            _join("OR", tights) if tights else None,
        )
    return None, None  # presence and free text: the entry decides


def narrow(node: Node | None) -> Sql:
    """A condition over the search index that every entry matching ``node`` meets."""
    if node is None:
        return EVERYTHING
    wide, _ = _bounds(node)
    return wide or EVERYTHING


def exact(node: Node | None) -> Sql | None:
    """The condition over the search index that holds for exactly the entries matching
    ``node``, when the index alone decides it (every term reads indexed fields)."""
    if node is None:
        return EVERYTHING
    wide, tight = _bounds(node)
    return wide if wide is not None and wide == tight else None
