"""Sigma conditions, as pysigma parses them, compiled into Python predicates over fields.

pysigma turns a rule's ``detection`` and ``condition`` into a tree of AND, OR,
NOT and ``field = value`` nodes, with the modifiers already applied to the
values (``contains`` becomes a string with wildcards, ``gte`` a comparison,
``re`` a regular expression, ``cidr`` a network). This module compiles that
tree once into closures, so evaluating a rule is a few function calls per
entry. Semantics follow the Sigma specification: strings match whole values,
case-insensitively unless ``cased``; ``*`` and ``?`` are wildcards; a value
matches a list field when it matches any element; a missing field matches
only ``null`` (and ``exists: false``).

Regular expressions are evaluated with RE2 (the engine pysigma uses), whose
running time is linear in the input: a rule cannot stall the engine. Patterns
that would backtrack catastrophically in other engines are refused at load
(see :func:`backtracking_hazard`) so a rule pack stays safe to share.
"""

from __future__ import annotations

import ipaddress
import re
import re._parser as sre_parse  # type: ignore[import-not-found]  # Python's own regex parser
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import re2
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from trailseal.detect.fields import Fields

Predicate = Callable[[Fields], bool]
Test = Callable[[Any], bool]


class UnsupportedRule(ValueError):  # noqa: N818 - reads as the problem it names
    """A rule uses something trailseal does not evaluate; the message says what."""


_MISSING = object()


def compile_condition(node: Any) -> Predicate:
    """The predicate for one parsed condition tree."""
    if isinstance(node, ConditionAND):
        return _all([compile_condition(arg) for arg in node.args])
    if isinstance(node, ConditionOR):
        return _any([compile_condition(arg) for arg in node.args])
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0])
        return lambda fields: not inner(fields)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_predicate(node.field, node.value)
    raise UnsupportedRule(
        f"{type(node).__name__} is not supported: every selection needs a field "
        "(keyword searches over whole events are not evaluated)"
    )


def fields_of(node: Any) -> set[str]:
    """Every field a condition reads (including those it compares with ``fieldref``)."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        found = {node.field}
        if isinstance(node.value, SigmaFieldReference):
            found.add(node.value.field)
        return found
    return set().union(*(fields_of(arg) for arg in getattr(node, "args", ()) or ()))


def action_gate(node: Any) -> Predicate | None:
    """The part of a condition that tests ``action`` and must hold for the whole to hold,
    or None. The engine uses it to skip, once per distinct action, every rule that
    cannot match: most entries then meet two or three rules instead of all of them."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if node.field != "action" or isinstance(node.value, SigmaFieldReference):
            return None  # a fieldref needs the other field, which the gate does not have
        return _field_predicate(node.field, node.value)
    if isinstance(node, ConditionAND):
        gates = [g for g in (action_gate(arg) for arg in node.args) if g is not None]
        return _all(gates) if gates else None
    if isinstance(node, ConditionOR):
        branches = [action_gate(arg) for arg in node.args]
        if branches and all(g is not None for g in branches):
            return _any([g for g in branches if g is not None])
    return None


def _all(parts: list[Predicate]) -> Predicate:
    """AND, unrolled for the common small cases (a generator costs more than the tests)."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda fields: a(fields) and b(fields)
    if len(parts) == 3:
        a, b, c = parts
        return lambda fields: a(fields) and b(fields) and c(fields)
    return lambda fields: all(part(fields) for part in parts)


def _any(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda fields: a(fields) or b(fields)
    return lambda fields: any(part(fields) for part in parts)


def _field_predicate(field: str, value: Any) -> Predicate:
    if isinstance(value, SigmaExists):
        wanted = value.exists
        return lambda fields: (fields.get(field, _MISSING) is not _MISSING) is wanted
    if isinstance(value, SigmaNull):
        return lambda fields: fields.get(field) is None
    if isinstance(value, SigmaFieldReference):
        return _field_reference(field, value)
    test = _value_test(value)

    def predicate(fields: Fields) -> bool:
        found = fields.get(field)
        if found is None or isinstance(found, dict):  # an object equals no value
            return False
        if isinstance(found, list):
            return any(test(item) for item in found if _scalar(item))
        return test(found)

    return predicate


def _scalar(found: Any) -> bool:
    return found is not None and not isinstance(found, dict | list)


def _field_reference(field: str, value: SigmaFieldReference) -> Predicate:
    """``field|fieldref: other``: the two fields' values compared as Sigma compares a
    value, case-insensitively for text; with ``startswith``/``endswith`` (both for
    ``contains``) the other field's value is a prefix, suffix or part of this one's."""
    other, start, end = value.field, value.starts_with, value.ends_with

    def predicate(fields: Fields) -> bool:
        found, wanted = fields.get(field), fields.get(other)
        if not _scalar(found) or not _scalar(wanted):
            return False
        if isinstance(found, str) or isinstance(wanted, str) or start or end:
            text, part = _text(found).casefold(), _text(wanted).casefold()
            if start and end:
                return part in text
            if start:
                return text.startswith(part)
            if end:
                return text.endswith(part)
            return text == part
        return bool(found == wanted and type(found) is type(wanted))

    return predicate


def _value_test(value: Any) -> Test:
    """The test one rule value makes of one field value (never None, never an object)."""
    for kind, build in _BUILDERS:
        if isinstance(value, kind):
            return build(value)
    raise UnsupportedRule(f"a {type(value).__name__} value is not supported")


def _boolean(value: SigmaBool) -> Test:
    """true matches a boolean true or the text "true", as the text rule value "true"
    matches a boolean true: Sigma compares the value, not its JSON type."""
    wanted, word = value.boolean, "true" if value.boolean else "false"
    return lambda found: found is wanted or (isinstance(found, str) and found.casefold() == word)


def _expansion(value: SigmaExpansion) -> Test:
    """``windash``, ``base64offset``: any of the variants pysigma expanded the value to."""
    tests = [_value_test(variant) for variant in value.values]
    return lambda found: any(test(found) for test in tests)


def _number_equal(value: SigmaNumber) -> Test:
    number = value.number
    return lambda found: _number(found) == number


def _cidr(value: SigmaCIDRExpression) -> Test:
    network = ipaddress.ip_network(value.cidr, strict=False)
    return lambda found: _in_network(found, network)


_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?\Z")


def _number(found: Any) -> float | None:
    """A number, or text that is exactly one written plainly (``"10"``, ``"-2.5"``; not
    ``"010"``, ``" 10"`` or ``"1e1"``, which a number rule value does not match)."""
    if isinstance(found, bool):
        return None
    if isinstance(found, int | float):
        return found
    if isinstance(found, str) and _NUMBER.match(found):
        return float(found) if "." in found else int(found)
    return None


_PARTS: dict[TimestampPart, Callable[[datetime], int]] = {
    TimestampPart.MINUTE: lambda moment: moment.minute,
    TimestampPart.HOUR: lambda moment: moment.hour,
    TimestampPart.DAY: lambda moment: moment.day,
    TimestampPart.WEEK: lambda moment: moment.isocalendar().week,
    TimestampPart.MONTH: lambda moment: moment.month,
    TimestampPart.YEAR: lambda moment: moment.year,
}


def _timestamp_part(value: SigmaTimestampPart) -> Test:
    """``|hour``, ``|minute``, ``|day``, ``|week``, ``|month``, ``|year``: that part of a
    timestamp (RFC 3339 text, in UTC when it names no zone) equals the number."""
    part, wanted = _PARTS[value.timestamp_part], value.number

    def test(found: Any) -> bool:
        if not isinstance(found, str):
            return False
        try:
            moment = datetime.fromisoformat(found)
        except ValueError:
            return False
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return part(moment) == wanted

    return test


def _comparison(value: SigmaCompareExpression) -> Test:
    limit = value.number.number
    ops: dict[str, Callable[[float, float], bool]] = {
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }
    op = ops[value.op.name]

    def test(found: Any) -> bool:
        number = _number(found)
        return number is not None and op(number, limit)

    return test


def _in_network(found: Any, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(str(found)) in network
    except ValueError:
        return False


def _regex(value: SigmaRegularExpression) -> Test:
    pattern = str(value.regexp)
    hazard = backtracking_hazard(pattern)
    if hazard:
        raise UnsupportedRule(hazard)
    flags = "".join(
        letter
        for flag, letter in (
            (SigmaRegularExpressionFlag.IGNORECASE, "i"),
            (SigmaRegularExpressionFlag.MULTILINE, "m"),
            (SigmaRegularExpressionFlag.DOTALL, "s"),
        )
        if flag in value.flags
    )
    try:
        compiled = re2.compile(f"(?{flags}){pattern}" if flags else pattern)
    except re2.error as exc:
        raise UnsupportedRule(f"regular expression {pattern!r} is invalid: {exc}") from None
    return lambda found: compiled.search(str(found)) is not None


def _string(value: SigmaString) -> Test:
    if value.contains_placeholder():
        names = ", ".join(sorted({f"%{p.name}%" for p in value.s if isinstance(p, Placeholder)}))
        raise UnsupportedRule(
            f"the |expand placeholder {names} has no list to expand to; trailseal does not "
            "resolve placeholders, and refuses the rule rather than evaluate it without them"
        )
    cased = isinstance(value, SigmaCasedString)
    parts = list(value.s)
    plain = [p for p in parts if isinstance(p, str)]
    fold: Callable[[str], str] = (lambda s: s) if cased else str.casefold
    wild = SpecialChars.WILDCARD_MULTI
    if all(isinstance(p, str) for p in parts):
        text = fold("".join(plain))
        return lambda found: fold(_text(found)) == text
    if len(parts) == 3 and parts[0] is wild and parts[2] is wild and isinstance(parts[1], str):
        needle = fold(parts[1])
        return lambda found: needle in fold(_text(found))
    if len(parts) == 2 and parts[1] is wild and isinstance(parts[0], str):
        prefix = fold(parts[0])
        return lambda found: fold(_text(found)).startswith(prefix)
    if len(parts) == 2 and parts[0] is wild and isinstance(parts[1], str):
        suffix = fold(parts[1])
        return lambda found: fold(_text(found)).endswith(suffix)
    return _wildcards(parts, cased=cased)


def _wildcards(parts: list[Any], *, cased: bool) -> Test:
    """Any other mix of ``*`` and ``?``, matched by RE2: its automaton runs in time
    linear in the value, where a backtracking engine takes time that grows with the
    value's length to the power of the number of ``*`` (one 18 KB value froze the
    engine for minutes)."""
    pieces = [
        ".*"
        if p is SpecialChars.WILDCARD_MULTI
        else "."
        if p is SpecialChars.WILDCARD_SINGLE
        else re2.escape(str(p))
        for p in parts
    ]
    compiled = re2.compile(("(?s)" if cased else "(?si)") + "".join(pieces))
    return lambda found: compiled.fullmatch(_text(found)) is not None


def _text(found: Any) -> str:
    if isinstance(found, bool):
        return "true" if found else "false"
    return found if isinstance(found, str) else str(found)


# -- patterns that backtrack ----------------------------------------------------------

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT}


def backtracking_hazard(pattern: str) -> str | None:
    """Why ``pattern`` would backtrack catastrophically in a backtracking engine (a
    quantified group that itself holds an unbounded quantifier, as in ``(a+)+``),
    or None. RE2 runs it in linear time anyway; the rule is refused so that it
    stays safe wherever else the pack is used."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None  # RE2 judges the syntax
    if _nested_unbounded(parsed, inside_repeat=False):
        return (
            f"regular expression {pattern!r} nests an unbounded quantifier inside another "
            "(as in (a+)+): it backtracks catastrophically in backtracking engines"
        )
    return None


def _nested_unbounded(items: Any, *, inside_repeat: bool) -> bool:
    for op, arg in items:
        if op in _REPEATS:
            _low, high, sub = arg
            unbounded = high == sre_parse.MAXREPEAT or high > 100
            found = (inside_repeat and unbounded) or _nested_unbounded(
                sub, inside_repeat=inside_repeat or unbounded
            )
        elif op is sre_parse.SUBPATTERN:
            found = _nested_unbounded(arg[-1], inside_repeat=inside_repeat)
        elif op is sre_parse.BRANCH:
            found = any(_nested_unbounded(b, inside_repeat=inside_repeat) for b in arg[1])
        else:
            found = False
        if found:
            return True
    return False


# Each kind of rule value pysigma makes, and how it is tested (the first that applies).
_BUILDERS: list[tuple[type, Callable[[Any], Test]]] = [
    (SigmaBool, _boolean),
    (SigmaExpansion, _expansion),
    (SigmaTimestampPart, _timestamp_part),
    (SigmaNumber, _number_equal),
    (SigmaCompareExpression, _comparison),
    (SigmaRegularExpression, _regex),
    (SigmaCIDRExpression, _cidr),
    (SigmaString, _string),
]
