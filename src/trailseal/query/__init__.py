"""The one search language of trailseal (``../docs/search.md``): parsed here into a
typed :class:`Query`, matched against entries by the ledger and compiled to SQL by the
stores. Pure: no I/O."""

from trailseal.query.model import (
    OUTCOMES,
    PRESENCE_FIELDS,
    QUALIFIERS,
    TEXT_FIELDS,
    And,
    Between,
    Exact,
    FreeText,
    Kind,
    Match,
    Network,
    Node,
    Not,
    Or,
    Prefix,
    Presence,
    Query,
    ResourceValue,
    Value,
    both,
    qualifier_values,
)
from trailseal.query.syntax import MAX_QUERY, parse
from trailseal.query.times import fixed, month_span, span

__all__ = [
    "MAX_QUERY",
    "OUTCOMES",
    "PRESENCE_FIELDS",
    "QUALIFIERS",
    "TEXT_FIELDS",
    "And",
    "Between",
    "Exact",
    "FreeText",
    "Kind",
    "Match",
    "Network",
    "Node",
    "Not",
    "Or",
    "Prefix",
    "Presence",
    "Query",
    "ResourceValue",
    "Value",
    "both",
    "fixed",
    "month_span",
    "parse",
    "qualifier_values",
    "span",
]
