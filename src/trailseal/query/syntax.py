"""The search language: GitHub audit-log qualifiers, with OR, NOT and parentheses.

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*          whitespace between terms means AND
    unary   := "NOT" unary | "-" primary | primary
    primary := "(" or ")" | qualifier ":" values | word | "quoted phrase"
    values  := value ("," value)*             a list: any of them

Every error names the character it is about (:class:`~trailseal.errors.QueryError`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from trailseal.errors import QueryError
from trailseal.query.model import (
    OUTCOMES,
    PRESENCE_FIELDS,
    PRESENCE_QUALIFIERS,
    QUALIFIERS,
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
    Text,
    Value,
)
from trailseal.query.times import fixed, span

MAX_QUERY = 4096  # characters
MAX_TERMS = 256  # conditions in one query
MAX_DEPTH = 32  # nested parentheses and NOTs
_QUALIFIER = re.compile(r"[A-Za-z_]+\Z")
_NUMBER = re.compile(r"-?\d{1,18}\Z")
_KEYWORDS = ("OR", "AND", "NOT")


@dataclass(frozen=True)
class _Token:
    kind: str  # "(" ")" "-" "word"
    text: str  # a word as written (quotes and all)
    position: int


class _Parser:
    def __init__(self, text: str, now: datetime) -> None:
        self.text = text
        self.now = now
        self.tokens = self._tokenize()
        self.at = 0
        self.terms = 0

    def fail(self, position: int, message: str) -> QueryError:
        return QueryError(self.text, position, message)

    # -- tokens --------------------------------------------------------------

    def _tokenize(self) -> list[_Token]:
        text, tokens, i = self.text, [], 0
        while i < len(text):
            char = text[i]
            if char.isspace():
                i += 1
            elif char in "()":
                tokens.append(_Token(char, char, i))
                i += 1
            elif char == "-" and i + 1 < len(text) and text[i + 1] == "(":
                tokens.append(_Token("-", char, i))
                i += 1
            else:
                start = i
                while i < len(text) and not text[i].isspace() and text[i] not in "()":
                    if text[i] == '"':
                        i = self._closing_quote(i)
                    i += 1
                tokens.append(_Token("word", text[start:i], start))
        return tokens

    def _closing_quote(self, opening: int) -> int:
        i = opening + 1
        while i < len(self.text):
            if self.text[i] == "\\":
                i += 2
                continue
            if self.text[i] == '"':
                return i
            i += 1
        raise self.fail(opening, "this quote is never closed")

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text == word

    # -- grammar -------------------------------------------------------------

    def parse(self) -> Node | None:
        if not self.tokens:
            return None
        node = self._or(0)
        token = self.peek()
        if token is not None:  # only a ")" stops an or-expression early
            raise self.fail(token.position, "this ')' closes no '('")
        return node

    def _or(self, depth: int) -> Node:
        nodes = [self._and(depth)]
        while self._keyword("OR"):
            self.at += 1
            nodes.append(self._and(depth))
        return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))

    def _and(self, depth: int) -> Node:
        nodes = [self._unary(depth)]
        while (token := self.peek()) is not None and token.kind != ")" and token.text != "OR":
            if token.text == "AND":
                self.at += 1
            nodes.append(self._unary(depth))
        return nodes[0] if len(nodes) == 1 else And(tuple(nodes))

    def _unary(self, depth: int) -> Node:
        token = self.peek()
        if token is None:
            raise self.fail(len(self.text), "the query ends where a term was expected")
        if depth > MAX_DEPTH:
            raise self.fail(token.position, f"more than {MAX_DEPTH} nested groups or NOTs")
        if token.kind == "word" and token.text == "NOT":
            self.at += 1
            return Not(self._unary(depth + 1))
        if token.kind == "-":
            self.at += 1
            return Not(self._primary(depth + 1))
        if token.kind == "word" and token.text.startswith("-") and len(token.text) > 1:
            self.at += 1
            return Not(self._term(token.text[1:], token.position + 1))
        return self._primary(depth)

    def _primary(self, depth: int) -> Node:
        token = self.peek()
        if token is None:
            raise self.fail(len(self.text), "the query ends where a term was expected")
        if token.kind == "(":
            self.at += 1
            node = self._or(depth + 1)
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise self.fail(token.position, "this '(' is never closed")
            self.at += 1
            return node
        if token.kind == ")":
            raise self.fail(token.position, "a term was expected before this ')'")
        if token.text in _KEYWORDS:
            raise self.fail(token.position, f"{token.text} needs a term on each side")
        self.at += 1
        return self._term(token.text, token.position)

    # -- terms ---------------------------------------------------------------

    def _term(self, word: str, position: int) -> Node:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.fail(position, f"more than {MAX_TERMS} terms in one query")
        name, colon, raw = _split_qualifier(word)
        if not colon:
            return FreeText(self._unquote(word, position), position)
        if not _QUALIFIER.match(name):
            raise self.fail(position, f"{name!r} is not a qualifier; quote text that has a ':'")
        qualifier = name.lower()
        where = position + len(name) + 1
        if not raw:
            raise self.fail(where, f"{qualifier}: needs a value")
        if qualifier in PRESENCE_QUALIFIERS:
            field = raw.lower()
            if field not in PRESENCE_FIELDS:
                raise self.fail(
                    where, f"{qualifier}: tests one of {', '.join(PRESENCE_FIELDS)}, not {raw!r}"
                )
            return Presence(field, qualifier == "has", position)
        if qualifier not in QUALIFIERS:
            known = ", ".join([*QUALIFIERS, *PRESENCE_QUALIFIERS])
            raise self.fail(position, f"unknown qualifier {name!r}; the qualifiers are {known}")
        values = tuple(
            self._value(qualifier, piece, where + offset)
            for piece, offset in self._pieces(raw, where)
        )
        return Match(qualifier, values, position)

    def _pieces(self, raw: str, where: int) -> list[tuple[str, int]]:
        """A value list split at commas outside quotes, with each piece's offset."""
        pieces, start, i = [], 0, 0
        while i < len(raw):
            if raw[i] == '"':
                i = self._closing_quote(where + i) - where
            elif raw[i] == ",":
                pieces.append((raw[start:i], start))
                start = i + 1
            i += 1
        pieces.append((raw[start:], start))
        for piece, offset in pieces:
            if not piece:
                raise self.fail(where + offset, "an empty value in a list")
        return pieces

    def _unquote(self, text: str, position: int) -> str:
        if '"' not in text:
            return text
        if not (text.startswith('"') and text.endswith('"') and len(text) >= 2):
            raise self.fail(position, "quote a whole value, not part of one")
        inner = re.sub(r"\\(.)", r"\1", text[1:-1])
        if not inner:
            raise self.fail(position, "an empty quoted value")
        return inner

    def _text(self, piece: str, position: int) -> Text:
        """An exact value, or a prefix when it ends in an unquoted ``*``."""
        if piece.endswith("*") and not piece.startswith('"'):
            stem = piece[:-1]
            if "*" in stem:
                raise self.fail(position + stem.index("*"), "'*' may only end a value")
            return Prefix(stem)
        if "*" in piece and not piece.startswith('"'):
            raise self.fail(position + piece.index("*"), "'*' may only end a value")
        return Exact(self._unquote(piece, position))

    def _value(self, qualifier: str, piece: str, position: int) -> Value:
        kind = QUALIFIERS[qualifier][0]
        if kind is Kind.TEXT:
            return self._text(piece, position)
        if kind is Kind.OUTCOME:
            if piece not in OUTCOMES:
                raise self.fail(position, f"outcome: is one of {', '.join(OUTCOMES)}")
            return Exact(piece)
        if kind is Kind.RESOURCE:
            type_part, slash, id_part = piece.partition("/")
            if not type_part or (slash and not id_part):
                raise self.fail(position, "resource: is TYPE or TYPE/ID, e.g. patient/p-88123")
            resource_id = self._text(id_part, position + len(type_part) + 1) if slash else None
            return ResourceValue(self._text(type_part, position), resource_id)
        if kind is Kind.ADDRESS:
            try:
                return Network(ipaddress.ip_network(piece, strict=False))
            except ValueError:
                raise self.fail(
                    position, f"{piece!r} is not an IP address or a CIDR network (10.0.0.0/8)"
                ) from None
        return self._range(kind, piece, position)

    def _range(self, kind: Kind, piece: str, position: int) -> Between:
        """``a``, ``a..b`` (either may be ``*``), ``>a``, ``>=a``, ``<a``, ``<=a``."""
        for operator in (">=", "<=", ">", "<"):
            if piece.startswith(operator):
                low, high = self._span(kind, piece[len(operator) :], position + len(operator))
                if operator == ">=":
                    return Between(low, None)
                if operator == ">":
                    return Between(high, None)
                if operator == "<":
                    return Between(None, low)
                return Between(None, high)
        if ".." in piece:
            first, _, last = piece.partition("..")
            start = None if first == "*" else self._span(kind, first, position)[0]
            end = None if last == "*" else self._span(kind, last, position + len(first) + 2)[1]
            return Between(start, end)
        return Between(*self._span(kind, piece, position))

    def _span(self, kind: Kind, text: str, position: int) -> tuple[int | str, int | str]:
        if not text:
            raise self.fail(position, "a value is missing here")
        if kind is Kind.NUMBER:
            if not _NUMBER.match(text):
                raise self.fail(position, f"{text!r} is not a whole number")
            return int(text), int(text) + 1
        try:
            start, end = span(text, self.now)
            return fixed(start), fixed(end)
        except (ValueError, OverflowError) as exc:
            message = str(exc) if isinstance(exc, ValueError) else f"{text!r} is out of range"
            raise self.fail(position, message) from None


def _split_qualifier(word: str) -> tuple[str, bool, str]:
    """``name:value`` when a colon comes before any quote; else the word is free text."""
    colon = word.find(":")
    quote = word.find('"')
    if colon <= 0 or (0 <= quote < colon):
        return word, False, ""
    return word[:colon], True, word[colon + 1 :]


def parse(text: str, now: datetime | None = None) -> Query:
    """Parse a query (relative times against ``now``, default the current time)."""
    if len(text) > MAX_QUERY:
        raise QueryError(text[:200], MAX_QUERY, f"a query is at most {MAX_QUERY} characters")
    if any(ord(char) < 32 and char not in "\t\n\r" for char in text):
        position = next(i for i, c in enumerate(text) if ord(c) < 32 and c not in "\t\n\r")
        raise QueryError(text, position, "a control character in the query")
    return Query(text, _Parser(text, now or datetime.now(UTC)).parse())
