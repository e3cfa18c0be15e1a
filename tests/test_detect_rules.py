"""Sigma rules: every modifier and condition form evaluated natively, and rule packs whose
problems are all reported with file and line while the good rules still load."""

from __future__ import annotations

import base64
import re
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudtrail_files import shared
from conftest import run_cli
from trailseal.detect.matcher import backtracking_hazard
from trailseal.detect.rules import BUILTIN, load


def _rule(detection: str, name: str = "r") -> str:
    body = textwrap.indent(textwrap.dedent(detection).strip(), "  ")
    return f"title: {name}\nname: {name}\nlogsource: {{product: trailseal}}\ndetection:\n{body}\n"


def _predicate(tmp_path: Path, detection: str):
    (tmp_path / "r.yml").write_text(_rule(detection))
    pack = load([tmp_path])
    assert not pack.problems, pack.problems
    return pack.rules["r"].predicate


CASES = [
    # each: a detection, the fields of one entry, whether the rule matches them
    ("sel: {action: record.read}\ncondition: sel", {"action": "RECORD.READ"}, True),
    ("sel: {action|cased: record.read}\ncondition: sel", {"action": "RECORD.READ"}, False),
    ("sel: {action|contains: cord}\ncondition: sel", {"action": "record.read"}, True),
    ("sel: {action|startswith: iam.}\ncondition: sel", {"action": "iam.role.assign"}, True),
    ("sel: {action|endswith: .read}\ncondition: sel", {"action": "record.readx"}, False),
    ("sel: {action: 'rec*d.?ead'}\ncondition: sel", {"action": "record.read"}, True),
    ("sel: {action|re: '^iam\\.(role|key)'}\ncondition: sel", {"action": "iam.key.x"}, True),
    ("sel: {source.ip|cidr: 10.0.0.0/8}\ncondition: sel", {"source.ip": "10.2.3.4"}, True),
    ("sel: {source.ip|cidr: 10.0.0.0/8}\ncondition: sel", {"source.ip": "not an ip"}, False),
    (
        "sel: {actor.roles|contains|all: [ad, min]}\ncondition: sel",
        {"actor.roles": ["admin"]},
        True,
    ),
    ("sel: {actor.roles: auditor}\ncondition: sel", {"actor.roles": ["nurse", "auditor"]}, True),
    ("sel: {resource.count|gt: 100}\ncondition: sel", {"resource.count": 101}, True),
    ("sel: {resource.count|gte: 100}\ncondition: sel", {"resource.count": 99}, False),
    ("sel: {resource.count|lt: 5}\ncondition: sel", {"resource.count": "4"}, True),
    ("sel: {resource.count|lte: 5}\ncondition: sel", {"resource.count": True}, False),
    ("sel: {outcome.status|exists: true}\ncondition: sel", {"outcome.status": 403}, True),
    ("sel: {outcome.status|exists: false}\ncondition: sel", {}, True),
    ("sel: {resource.unit: null}\ncondition: sel", {}, True),
    ("sel: {a|fieldref: b}\ncondition: sel", {"a": "3B", "b": "3B"}, True),
    ("sel: {a|fieldref: b}\ncondition: sel", {"a": "3B"}, False),
    ("one: {a: 1}\ntwo: {b: 2}\ncondition: 1 of them", {"b": 2}, True),
    ("one: {a: 1}\ntwo: {b: 2}\ncondition: all of them", {"b": 2}, False),
    ("sel_a: {a: 1}\nsel_b: {b: 2}\ncondition: all of sel_*", {"a": 1, "b": 2}, True),
    (
        "a: {x: 1}\nb: {y: 2}\nc: {z: 3}\ncondition: a and (b or c) and not c",
        {"x": 1, "y": 2},
        True,
    ),
    (
        "a: {x: 1}\nb: {y: 2}\nc: {z: 3}\ncondition: a and (b or c) and not c",
        {"x": 1, "z": 3},
        False,
    ),
    ("sel: {x: [a, b]}\ncondition: sel", {"x": "B"}, True),
]


@pytest.mark.parametrize(("detection", "fields", "expected"), CASES)
def test_modifiers_and_conditions(
    tmp_path: Path, detection: str, fields: dict, expected: bool
) -> None:
    assert _predicate(tmp_path, detection)(fields) is expected


@given(text=st.text(max_size=30), needle=st.text(alphabet="abcXYZ.-_ ", min_size=1, max_size=5))
def test_string_modifiers_agree_with_python(
    tmp_path_factory: pytest.TempPathFactory, text: str, needle: str
) -> None:
    """Sigma's contains/startswith/endswith are Python's, case-folded."""
    folder = tmp_path_factory.mktemp("prop")
    quoted = needle.replace("'", "''")
    for modifier, python in (
        ("contains", lambda t, n: n in t),
        ("startswith", str.startswith),
        ("endswith", str.endswith),
    ):
        (folder / "r.yml").write_text(_rule(f"sel: {{x|{modifier}: '{quoted}'}}\ncondition: sel"))
        predicate = load([folder]).rules["r"].predicate
        assert predicate({"x": text}) is python(text.casefold(), needle.casefold())


_PIECE = st.one_of(st.text(alphabet="aAb.", min_size=1, max_size=3), st.sampled_from("*?"))


def _wildcard_predicate(folder: Path, pattern: str):
    quoted = pattern.replace("'", "''")
    (folder / "r.yml").write_text(_rule(f"sel: {{x: '{quoted}'}}\ncondition: sel"))
    pack = load([folder])
    assert not pack.problems, pack.problems
    return pack.rules["r"].predicate


def _reference(pattern: str, value: str) -> bool:
    """Sigma's wildcard semantics, spelled with Python's regex (fine on short values)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(body, value, re.DOTALL | re.IGNORECASE) is not None


@given(pieces=st.lists(_PIECE, min_size=1, max_size=6), value=st.text("aAb.\n", max_size=12))
def test_wildcard_values_match_as_sigma_says(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[str], value: str
) -> None:
    pattern = "".join(pieces)
    predicate = _wildcard_predicate(tmp_path_factory.mktemp("wild"), pattern)
    assert predicate({"x": value}) is _reference(pattern, value)


def _seconds(predicate, fields: dict, length: int) -> float:
    """The fastest of three timings of one match, each averaged over enough calls
    to be measurable."""
    calls = max(1, 20_000 // length)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            predicate(fields)
        best = min(best, (time.perf_counter() - started) / calls)
    return best


@settings(max_examples=25, deadline=None)
@given(
    literals=st.lists(st.text(alphabet="ab", min_size=1, max_size=3), min_size=2, max_size=5),
    filler=st.text(alphabet="ab", min_size=1, max_size=3),
)
def test_no_wildcard_pattern_takes_more_than_linear_time(
    tmp_path_factory: pytest.TempPathFactory, literals: list[str], filler: str
) -> None:
    """Several ``*`` between literals, against a value made of those literals that
    never matches (the input that makes a backtracking matcher try every split):
    multiplying the value's length by 8 multiplies the time by about 8 for a linear
    matcher and by 64 or more for a backtracking one. The bound, 24, sits between."""
    pattern = "*" + "*".join(literals) + "*c"
    predicate = _wildcard_predicate(tmp_path_factory.mktemp("linear"), pattern)
    previous = None
    for length in (48, 384, 3072, 24_576):
        fields = {"x": (filler * length)[:length]}
        took = _seconds(predicate, fields, length)
        assert took < 1.0, f"{pattern!r} took {took:.2f} s on {length} characters"
        if previous is not None:
            assert took < 24 * previous + 1e-5, (
                f"{pattern!r}: {length} characters took {took / previous:.0f}x the time "
                f"of {length // 8}"
            )
        previous = took


def test_catastrophic_patterns_are_recognised() -> None:
    assert backtracking_hazard("(a+)+$")
    assert backtracking_hazard("(x|y*)*z")
    assert backtracking_hazard("^(\\w+\\s?)*$")
    assert backtracking_hazard("^iam\\.(role|key)\\.[a-z]+$") is None
    assert backtracking_hazard("(ab){2,5}c+") is None


BAD_PACK = {
    "good.yml": _rule("sel: {action: user.login}\ncondition: sel", "good_one"),
    "yaml.yml": "title: broken\nname: x\ndetection: [unclosed\n",
    "modifier.yml": _rule("sel:\n  action|sometimes: x\ncondition: sel", "bad_modifier"),
    "regex.yml": _rule("sel:\n  action|re: '(unclosed'\ncondition: sel", "bad_regex"),
    "redos.yml": _rule("sel:\n  actor.id|re: '^(a+)+$'\ncondition: sel", "redos"),
    "corr.yml": textwrap.dedent(
        """\
        title: needs a missing rule
        name: orphan
        correlation:
          type: event_count
          rules: [no_such_rule]
          group-by: [actor.id]
          timespan: 10m
          condition: {gte: 3}
        """
    ),
    "also_good.yml": _rule("sel: {action: user.logout}\ncondition: sel", "good_two"),
}


@pytest.fixture
def bad_pack(tmp_path: Path) -> Path:
    for name, text in BAD_PACK.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_every_problem_is_reported_with_file_and_line_and_good_rules_load(bad_pack: Path) -> None:
    pack = load([bad_pack])
    assert sorted(pack.rules) == ["good_one", "good_two"]
    found = {(Path(p.path).name, p.line): p.message for p in pack.problems}
    assert len(found) == 5, pack.problems
    assert any(name == "yaml.yml" and "bad YAML" in m for (name, _), m in found.items())
    assert "sometimes" in found[("modifier.yml", 6)]
    assert "unclosed" in next(m for (name, _), m in found.items() if name == "regex.yml")
    assert "catastrophically" in found[("redos.yml", 6)]
    assert "no_such_rule" in next(m for (name, _), m in found.items() if name == "corr.yml")


def test_rules_lint_lists_problems_and_exits_1(bad_pack: Path) -> None:
    result = run_cli("rules", "lint", bad_pack)
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    problems = [line for line in lines if line.startswith("error: ")]
    assert len(problems) == 5
    assert all(re.match(r"error: .+\.yml:\d+: ", line) for line in problems)
    assert "2 rules and 0 correlations load" in lines[-1]


def test_the_builtin_pack_lints_clean() -> None:
    result = run_cli("rules", "lint", BUILTIN)
    assert result.returncode == 0, result.stderr.decode()
    pack = load([BUILTIN])
    assert {"bulk_export", "access_outside_unit", "off_shift_login_new_country"} <= set(pack.rules)
    assert set(pack.correlations) == {
        "many_records_one_shift",
        "mass_deletion",
        "role_change_then_bulk_export",
    }


def test_rules_test_shows_which_events_match_and_why(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "1", "time": "2026-03-01T10:00:00Z", "actor": {"id": "u1"}, '
        '"action": "export.create", "resource": {"type": "export", "count": 500}}\n'
        '{"id": "2", "time": "2026-03-01T10:00:00Z", "actor": {"id": "u1"}, '
        '"action": "export.create", "resource": {"type": "export", "count": 3}}\n'
    )
    result = run_cli(
        "rules", "test", "bulk_export", "--events", events, "--rules", "builtin", check=True
    )
    out = result.stdout.decode().splitlines()
    assert out[0].startswith("1: MATCH")
    assert "many=yes" in out[0]
    assert out[1].startswith("2: no match")
    assert "many=no" in out[1]


# -- Sigma fidelity (issue 14): each as the Sigma specification and pySigma say ----------

_EVIL = base64.b64encode(b"run evil now").decode()
FIDELITY = [
    # a number rule value matches the number, or text that is exactly it written plainly
    ("sel: {x: 10}\ncondition: sel", {"x": 10}, True),
    ("sel: {x: 10}\ncondition: sel", {"x": "10"}, True),
    ("sel: {x: 10}\ncondition: sel", {"x": "010"}, False),
    ("sel: {x: 10}\ncondition: sel", {"x": " 10"}, False),
    ("sel: {x|gt: 9}\ncondition: sel", {"x": "1e1"}, False),
    # a boolean matches the boolean or its text, as text "true" matches a boolean
    ("sel: {x: true}\ncondition: sel", {"x": True}, True),
    ("sel: {x: true}\ncondition: sel", {"x": "true"}, True),
    ("sel: {x: true}\ncondition: sel", {"x": "TRUE"}, True),
    ("sel: {x: true}\ncondition: sel", {"x": "false"}, False),
    ("sel: {x: 'true'}\ncondition: sel", {"x": True}, True),
    # an object equals no value, whatever its text would contain
    ("sel: {x|contains: a}\ncondition: sel", {"x": {"a": 1}}, False),
    ("sel: {x: '*'}\ncondition: sel", {"x": {"k": "v"}}, False),
    ("sel: {x|re: '.*'}\ncondition: sel", {"x": {"k": 1}}, False),
    ("sel: {x: v}\ncondition: sel", {"x": [{"k": "v"}, "v"]}, True),
    # fieldref: case-insensitive, and with startswith, endswith and contains
    ("sel: {a|fieldref: b}\ncondition: sel", {"a": "ICU", "b": "icu"}, True),
    ("sel: {a|fieldref: b}\ncondition: sel", {"a": 3, "b": 3}, True),
    ("sel: {a|fieldref|startswith: b}\ncondition: sel", {"a": "ADMIN-x", "b": "admin"}, True),
    ("sel: {a|fieldref|startswith: b}\ncondition: sel", {"a": "x-admin", "b": "admin"}, False),
    ("sel: {a|fieldref|endswith: b}\ncondition: sel", {"a": "x-admin", "b": "ADMIN"}, True),
    ("sel: {a|fieldref|contains: b}\ncondition: sel", {"a": "xadminy", "b": "admin"}, True),
    ("sel: {a|fieldref|contains: b}\ncondition: sel", {"a": "xadmy", "b": "admin"}, False),
    # time modifiers take that part of a timestamp (UTC), never the raw value
    ("sel: {time|hour: 3}\ncondition: sel", {"time": "2026-03-01T03:15:00Z"}, True),
    ("sel: {time|hour: 3}\ncondition: sel", {"time": "2026-03-01T05:15:00+02:00"}, True),
    ("sel: {time|hour: 3}\ncondition: sel", {"time": "2026-03-01T04:15:00Z"}, False),
    ("sel: {time|hour: 3}\ncondition: sel", {"time": 3}, False),
    ("sel: {time|minute: 15}\ncondition: sel", {"time": "2026-03-01T03:15:00Z"}, True),
    ("sel: {time|day: 1}\ncondition: sel", {"time": "2026-03-01T03:15:00Z"}, True),
    ("sel: {time|week: 9}\ncondition: sel", {"time": "2026-03-01T03:15:00Z"}, True),
    ("sel: {time|month: 3}\ncondition: sel", {"time": "2026-03-01T03:15:00Z"}, True),
    ("sel: {time|year: 2026}\ncondition: sel", {"time": "2026-03-01T03:15:00Z"}, True),
    # windash and base64offset, expanded as pySigma expands them
    ("sel: {cmd|windash|contains: ' -c '}\ncondition: sel", {"cmd": "x /c y"}, True),
    ("sel: {cmd|windash|contains: ' -c '}\ncondition: sel", {"cmd": "x -c y"}, True),
    ("sel: {cmd|windash|contains: ' -c '}\ncondition: sel", {"cmd": "x +c y"}, False),
    ("sel: {x|base64offset|contains: evil}\ncondition: sel", {"x": _EVIL}, True),
    ("sel: {x|base64offset|contains: evil}\ncondition: sel", {"x": "ZXZpbA"}, True),
    ("sel: {x|base64offset|contains: evil}\ncondition: sel", {"x": "bm90aGluZw=="}, False),
    # a selection may be named with a dot or a pipe, as Sigma allows
    ("sel.one: {x: 1}\ncondition: sel.one", {"x": 1}, True),
    ("sel|one: {x: 1}\ncondition: sel|one", {"x": 1}, True),
    ("sel.a: {x: 1}\nsel.b: {y: 2}\ncondition: all of sel.*", {"x": 1, "y": 2}, True),
    ("sel.a: {x: 1}\nsel.b: {y: 2}\ncondition: all of sel.*", {"x": 1}, False),
    ("a.b: {x: 1}\nf.c: {y: 2}\ncondition: a.b and not f.c", {"x": 1, "y": 2}, False),
]


@pytest.mark.parametrize(("detection", "fields", "expected"), FIDELITY)
def test_sigma_fidelity(tmp_path: Path, detection: str, fields: dict, expected: bool) -> None:
    assert _predicate(tmp_path, detection)(fields) is expected


def test_an_expand_placeholder_is_refused_naming_it_never_dropped(tmp_path: Path) -> None:
    """A placeholder trailseal has no list for would otherwise match nothing, silently
    losing a filter such as `not 1 of filter_main_*`: the rule is refused instead."""
    (tmp_path / "r.yml").write_text(
        _rule(
            "sel: {action: iam.role.assign}\n"
            "filter_main_admins: {actor.id|expand: '%admins%'}\n"
            "condition: sel and not 1 of filter_main_*"
        )
    )
    pack = load([tmp_path])
    assert "r" not in pack.rules
    (problem,) = pack.problems
    assert "%admins%" in str(problem)
    assert "r.yml" in str(problem)


def test_the_action_gate_keeps_a_rule_that_compares_action_by_fieldref(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(_rule("sel: {action|fieldref: expected}\ncondition: sel"))
    rule = load([tmp_path]).rules["r"]
    assert rule.gate is None or rule.gate({"action": "record.read"})
    assert rule.predicate({"action": "record.read", "expected": "RECORD.READ"})


def test_rules_test_and_the_engine_read_the_same_fields_at_any_depth() -> None:
    """`rules test` flattens an event whole; the engine reads only the fields rules name.
    Both reach any depth, and both give an object as an object (which equals no value)."""
    from trailseal.detect.fields import FieldPlan, entry_fields  # noqa: PLC0415

    deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": "x"}}}}}}}}
    entry = {"event": {"action": "record.read", "detail_commitment": None}}
    names = {"detail.a.b.c.d.e.f.g.h", "detail.a.b"}
    flat = entry_fields(0, entry, deep)
    planned = FieldPlan(names).fields(0, entry, deep)
    for name in names:
        assert flat[name] == planned[name]
    assert flat["detail.a.b.c.d.e.f.g.h"] == "x"


def test_watch_with_a_rules_folder_that_does_not_exist_refuses_and_moves_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    assert run_cli("init", "--data", str(data)).returncode == 0
    result = run_cli("watch", "--once", "--rules", str(tmp_path / "nope"), "--data", str(data))
    assert result.returncode != 0
    assert b"no such folder or file of rules" in result.stderr
    assert not (data / "detection.db").exists()  # no cursor was moved (none was made)


CORPUS = shared() / "corpus" / "sigma-aws-cloudtrail"


def test_sigmahq_cloudtrail_rules_load_unmodified() -> None:
    """SigmaHQ's published CloudTrail rules (read where the shared corpus is, never copied
    here) all load as published: docs/detection.md states the count."""
    if not CORPUS.is_dir():
        pytest.skip(f"SigmaHQ's CloudTrail rules are not at {CORPUS} on this machine")
    files = sorted(CORPUS.glob("*.yml"))
    pack = load([CORPUS])
    assert pack.problems == []
    assert len(pack.rules) == len(files) == 57
