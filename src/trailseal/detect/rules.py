"""Rule packs: Sigma rules and Sigma correlation rules, read from YAML files.

Each YAML document is parsed by pysigma (the reference implementation of the
Sigma specification) and its condition compiled by :mod:`trailseal.detect.matcher`.
Loading never stops at the first problem: every problem in the pack is
collected with its file and line, and the rules that are sound are loaded all
the same, so one bad rule never silences the good ones.

trailseal reads two optional attributes of its own, under ``trailseal:``:
``group-by`` (the fields whose values make one alert's group; default
``actor.id``) and ``dedup`` (how long alerts of one rule and group are merged;
default ``1h``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.conditions import SigmaCondition
from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from trailseal.detect import logsources
from trailseal.detect.matcher import (
    Predicate,
    UnsupportedRule,
    action_gate,
    compile_condition,
    fields_of,
)

LEVELS = ("informational", "low", "medium", "high", "critical")
CORRELATION_TYPES = ("event_count", "value_count", "temporal", "temporal_ordered")
BUILTIN = Path(__file__).parent / "builtin"
_DURATION = re.compile(r"^(\d+)([smhd])\Z")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a rule pack."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    level: str
    predicate: Predicate = field(repr=False)
    parts: tuple[tuple[str, Predicate], ...] = field(repr=False)  # each selection, for "why"
    gate: Predicate | None = field(repr=False)  # what action must be (see matcher.action_gate)
    fields: frozenset[str]  # every field the rule reads
    group_by: tuple[str, ...]
    dedup_seconds: int
    path: str
    line: int
    author: str | None = None  # shown with its matches, as the Detection Rule License asks
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Correlation:
    name: str
    title: str
    level: str
    kind: str  # one of CORRELATION_TYPES
    rules: tuple[str, ...]
    group_by: tuple[str, ...]
    timespan: int  # seconds
    op: str  # gt, gte, lt, lte, eq
    count: int
    field: str | None  # value_count counts distinct values of this field
    generate: bool  # whether the rules it refers to raise alerts of their own
    dedup_seconds: int
    path: str
    line: int


@dataclass
class RulePack:
    rules: dict[str, Rule] = field(default_factory=dict)
    correlations: dict[str, Correlation] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def fields(self) -> set[str]:
        """Every field some rule reads, groups by or counts."""
        found: set[str] = set()
        for rule in self.rules.values():
            found |= rule.fields | set(rule.group_by)
        for c in self.correlations.values():
            found |= set(c.group_by) | ({c.field} if c.field else set())
        return found

    def alerting_rules(self) -> set[str]:
        """Rules that raise alerts themselves: all but those referred to only by
        correlations that say ``generate: false``."""
        quiet = {r for c in self.correlations.values() if not c.generate for r in c.rules}
        loud = {r for c in self.correlations.values() if c.generate for r in c.rules}
        return {name for name in self.rules if name not in quiet or name in loud}


def duration(text: object, where: str) -> int:
    """``15m`` as seconds."""
    found = _DURATION.match(str(text))
    if not found:
        raise ValueError(f"{where}: {text!r} is not a duration like 30s, 15m, 1h or 2d")
    return int(found.group(1)) * _SECONDS[found.group(2)]


def load(paths: Iterable[Path]) -> RulePack:
    """Every rule in the YAML files under ``paths`` (files or folders)."""
    pack = RulePack()
    paths = list(paths)
    for path in paths:  # a folder named wrong must not load no rules without a word
        if not path.exists():
            pack.problems.append(Problem(str(path), 0, "no such file or folder of rules"))
    files = sorted(
        f
        for p in paths
        if p.exists()
        for f in ([p] if p.is_file() else [*p.rglob("*.yml"), *p.rglob("*.yaml")])
    )
    documents: list[tuple[str, int, dict[str, Any], list[str]]] = []
    for file in files:
        documents += _documents(file, pack.problems)
    correlations = []
    for name, line, data, lines in documents:
        document = _Document(pack, name, line, data, lines)
        correlation = document.parse()
        if correlation is not None:
            correlations.append((document, correlation))
    for document, correlation in correlations:  # after every rule they may refer to
        document.add_correlation(correlation)
    return pack


# Sigma allows a dot or a pipe in a selection's name; pySigma's condition grammar does
# not. Such names are spelled with these stand-ins in both the detection and the
# condition (wildcards in `1 of sel.*` included), and shown as written.
_STAND_INS = ((".", "__dot__"), ("|", "__pipe__"))
_TOKEN = re.compile(r"[^\s()]+")


def _plain(name: str) -> str:
    for char, stand_in in _STAND_INS:
        name = name.replace(char, stand_in)
    return name


def _own_name(name: str) -> str:
    for char, stand_in in _STAND_INS:
        name = name.replace(stand_in, char)
    return name


def _plain_names(data: dict[str, Any]) -> dict[str, Any]:
    """The rule with its selections' dots and pipes spelled as pySigma can parse."""
    detection = data.get("detection")
    if not isinstance(detection, dict) or not any(
        isinstance(key, str) and key != "condition" and _plain(key) != key for key in detection
    ):
        return data

    def condition(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        return _TOKEN.sub(lambda m: m[0] if m[0] == "|" else _plain(m[0]), text)

    renamed: dict[str, Any] = {}
    for key, value in detection.items():
        if key == "condition":
            conditions = value if isinstance(value, list) else [value]
            found = [condition(c) for c in conditions]
            renamed[key] = found if isinstance(value, list) else found[0]
        else:
            renamed[_plain(key) if isinstance(key, str) else key] = value
    return {**data, "detection": renamed}


def _documents(
    path: Path, problems: list[Problem]
) -> list[tuple[str, int, dict[str, Any], list[str]]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, 1, f"cannot read: {exc}"))
        return []
    lines = text.splitlines()
    found = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            line = node.start_mark.line + 1 if node is not None else 1
            if not isinstance(data, dict):
                problems.append(Problem(name, line, "a rule is a YAML mapping"))
                continue
            found.append((name, line, data, lines))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(
            Problem(name, mark.line + 1 if mark else 1, f"bad YAML: {exc}".split("\n")[0])
        )
    finally:
        loader.dispose()
    return found


def _line_of(lines: list[str], start: int, message: str) -> int:
    """The line in this document that the message's quoted text comes from."""
    for token in re.findall(r"'([^']+)'", message):
        for number in range(start - 1, len(lines)):
            if number > start - 1 and lines[number].startswith("---"):
                break
            if token in lines[number]:
                return number + 1
    return start


def _trailseal_options(data: dict[str, Any], where: str) -> tuple[tuple[str, ...], int]:
    options = data.get("trailseal") or {}
    if not isinstance(options, dict):
        raise TypeError(f"{where}: 'trailseal' holds group-by and dedup")
    group = options.get("group-by", ["actor.id"])
    if not isinstance(group, list) or not all(isinstance(g, str) for g in group):
        raise TypeError(f"{where}: 'group-by' is a list of field names")
    return tuple(group), duration(options.get("dedup", "1h"), "dedup")


class _Document:
    """One YAML document of a rule file, and how to report a problem in it."""

    def __init__(
        self, pack: RulePack, path: str, line: int, data: dict[str, Any], lines: list[str]
    ) -> None:
        self.pack, self.path, self.line, self.data, self.lines = pack, path, line, data, lines

    def problem(self, message: str) -> None:
        line = _line_of(self.lines, self.line, message)
        self.pack.problems.append(Problem(self.path, line, message))

    def name_for(self, name: str | None, ident: object) -> str | None:
        found = name or (str(ident) if ident else None)
        if not found:
            self.problem(
                "a rule needs a name (or an id) so alerts and correlations can refer to it"
            )
        elif found in self.pack.rules or found in self.pack.correlations:
            self.problem(f"the name '{found}' is used twice")
            return None
        return found

    def parse(self) -> SigmaCorrelationRule | None:
        """Add a detection rule to the pack, or return a correlation to add once every
        rule is loaded."""
        kind = SigmaCorrelationRule if "correlation" in self.data else SigmaRule
        for key in ("id", "name", "title"):
            if key in self.data and not isinstance(self.data[key], str):
                self.problem(f"'{key}' is text (a rule's id a UUID), not {self.data[key]!r}")
                return None
        try:
            parsed = kind.from_dict(_plain_names(self.data), collect_errors=True)
        except (SigmaError, ValueError, TypeError, AttributeError) as exc:
            self.problem(str(exc))
            return None
        for error in parsed.errors:
            self.problem(str(error))
        if parsed.errors:
            return None
        if isinstance(parsed, SigmaCorrelationRule):
            return parsed
        try:
            logsources.apply(parsed)
        except SigmaError as exc:
            self.problem(str(exc))
            return None
        self.add_rule(parsed)
        return None

    def add_rule(self, rule: SigmaRule) -> None:
        name = self.name_for(rule.name, rule.id)
        if name is None:
            return
        try:
            parsed = [c.parsed for c in rule.detection.parsed_condition]
            conditions = [compile_condition(tree) for tree in parsed]
            gates = [action_gate(tree) for tree in parsed]
            parts = tuple(
                (_own_name(part), compile_condition(SigmaCondition(part, rule.detection).parsed))
                for part in rule.detection.detections
            )
            group_by, dedup = _trailseal_options(self.data, name)
        except (UnsupportedRule, ValueError, TypeError, SigmaError) as exc:
            self.problem(str(exc))
            return
        predicate: Predicate = (
            conditions[0] if len(conditions) == 1 else (lambda f: any(c(f) for c in conditions))
        )
        level = rule.level.name.lower() if rule.level else "medium"
        gate = gates[0] if len(gates) == 1 else None
        read = frozenset(set().union(*(fields_of(tree) for tree in parsed)))
        self.pack.rules[name] = Rule(
            name,
            rule.title,
            level,
            predicate,
            parts,
            gate,
            read,
            group_by,
            dedup,
            self.path,
            self.line,
            rule.author,
            tuple(str(r) for r in rule.references or ()),
        )

    def add_correlation(self, correlation: SigmaCorrelationRule) -> None:
        name = self.name_for(correlation.name, correlation.id)
        if name is None:
            return
        refs = tuple(str(r.reference) for r in correlation.rules or ())
        missing = [r for r in refs if r not in self.pack.rules]
        kind = correlation.type.name.lower()
        condition = correlation.condition
        if condition is not None and not isinstance(condition, SigmaCorrelationCondition):
            self.problem(
                f"correlation '{name}': only single conditions (gt, gte, ...) are supported"
            )
        elif missing:
            self.problem(
                f"correlation '{name}' refers to '{missing[0]}', which is not a loaded rule"
            )
        elif kind not in CORRELATION_TYPES:
            self.problem(f"correlation type '{kind}' is not supported")
        elif kind == "value_count" and not (condition and condition.fieldref):
            self.problem(f"value_count correlation '{name}' needs condition.field")
        elif correlation.timespan is None:
            self.problem(f"correlation '{name}' needs a timespan")
        else:
            try:
                _, dedup = _trailseal_options(self.data, name)
            except (ValueError, TypeError) as exc:
                self.problem(str(exc))
                return
            self.pack.correlations[name] = Correlation(
                name=name,
                title=correlation.title,
                level=correlation.level.name.lower() if correlation.level else "high",
                kind=kind,
                rules=refs,
                group_by=tuple(correlation.group_by or ()),
                timespan=int(correlation.timespan.seconds),
                op=condition.op.name.lower() if condition else "gte",
                count=int(condition.count) if condition else len(refs),
                field=str(condition.fieldref) if condition and condition.fieldref else None,
                generate=bool(correlation.generate),
                dedup_seconds=dedup,
                path=self.path,
                line=self.line,
            )
