"""The event is parsed at the boundary; every kind of bad input names the field."""

from __future__ import annotations

import copy

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailseal.errors import EventError
from trailseal.events import (
    Event,
    EventLimits,
    canonical,
    event_from_mapping,
    parse_event,
)
from trailseal.events.canonical import canonical_struct
from trailseal.ledger.bulk import prepare_lines
from trailseal.testing import sample_events

GOOD = {
    "id": "0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
    "time": "2026-03-01T14:05:09.123456Z",
    "actor": {"id": "u-1042", "type": "user", "roles": ["nurse"], "impersonator_id": None},
    "action": "record.read",
    "resource": {"type": "patient", "id": "p-88123", "count": 1},
    "outcome": {"result": "success", "status": 200},
    "source": {"ip": "10.20.30.40", "geo": {"country": "US"}},
    "context": {"ticket": "CHG-1234", "labels": {"env": "prod"}},
    "detail": {"before": {"ward": "3B"}, "after": {"ward": "4A"}},
}


def _with(path: str, value: object) -> dict:
    event = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = event
    for name in parents:
        target = target[name]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return event


_DELETE = object()


def test_good_event_parses_into_frozen_objects() -> None:
    event = parse_event(orjson.dumps(GOOD))
    assert event.actor.id == "u-1042"
    assert event.resource is not None
    assert event.resource.count == 1
    with pytest.raises(AttributeError):
        event.id = "other"  # type: ignore[misc]


def test_nulls_are_absent_in_canonical_bytes() -> None:
    event = parse_event(orjson.dumps(GOOD))
    assert b"impersonator_id" not in canonical_struct(event)


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("surprise", 1, "$.surprise", "unknown field; an event has only id, time"),
        ("actor.password", "x", "$.actor.password", "unknown field"),
        ("detail_commitment", "0" * 64, "$.detail_commitment", "trailseal computes"),
        ("id", _DELETE, "$.id", "required field is missing"),
        ("actor", _DELETE, "$.actor", "required field is missing"),
        ("actor.id", 1042, "$.actor.id", "Expected `str`, got `int`"),
        ("id", "", "$.id", "length >= 1"),
        ("action", "record read", "$.action", "dotted verb"),
        ("time", "2026-03-01 14:05:09Z", "$.time", "RFC 3339 in UTC"),
        ("time", "2026-03-01T14:05:09+01:00", "$.time", "RFC 3339 in UTC"),
        ("time", "2026-03-01T14:05:09.1234567Z", "$.time", "at most 6 fractional digits"),
        ("time", "2026-02-30T14:05:09Z", "$.time", "not a real date"),
        ("actor.type", "robot", "$.actor.type", "'robot' is not one of user, service or system"),
        ("outcome.result", "ok", "$.outcome.result", "is not one of success, failure or denied"),
        ("outcome.status", 200.0, "$.outcome.status", "got `float`"),
        ("resource.count", -1, "$.resource.count", ">= 0"),
        ("resource.count", 2**53, "$.resource.count", "<= 9007199254740991"),
        ("source.ip", "10.0.0.256", "$.source.ip", "not an IPv4 or IPv6 address"),
        ("context.labels", {"k": 1.5}, "$.context.labels", "got `float`"),
        ("detail", {"price": 9.99}, "$.detail.price", "floating-point"),
        ("detail", {"n": 2**60}, "$.detail.n", "exact integer range"),
    ],
)
def test_bad_fields_are_named(path: str, value: object, field: str, words: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(orjson.dumps(_with(path, value), option=orjson.OPT_PASSTHROUGH_DATACLASS))
    assert caught.value.field.startswith(field), caught.value
    assert words in str(caught.value)


def test_deeply_nested_detail_is_refused() -> None:
    deep: object = "bottom"
    for _ in range(40):
        deep = {"down": deep}
    with pytest.raises(EventError, match="nested deeper than 32 levels"):
        parse_event(orjson.dumps(_with("detail", deep)))


def test_pathological_nesting_does_not_crash() -> None:
    text = b'{"id":"x","time":"2026-03-01T14:05:09Z","actor":{"id":"u"},"action":"a","detail":'
    text += b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(EventError, match="nested too deeply"):
        parse_event(text, EventLimits(max_bytes=1_000_000))


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"id": "x",', "malformed JSON"),
        (b'{"id": "\xff"}', "malformed JSON"),
        (b'{"id": "\\ud800"}', "malformed JSON"),
        (b"[1, 2]", "Expected `object`, got `array`"),
        (b"", "malformed JSON"),
        (b"nonsense", "malformed JSON"),
    ],
)
def test_malformed_json_is_refused(raw: bytes, words: str) -> None:
    with pytest.raises(EventError, match=words):
        parse_event(raw)


def test_size_limit_default_and_configurable() -> None:
    big = _with("detail", {"blob": "x" * 70_000})
    with pytest.raises(EventError, match="the limit is 65536 bytes"):
        parse_event(orjson.dumps(big))
    assert parse_event(orjson.dumps(big), EventLimits(max_bytes=100_000)).detail is not None
    with pytest.raises(ValueError, match="at least 256"):
        EventLimits(max_bytes=10)


def test_prepare_lines_reports_every_bad_line_with_its_number() -> None:
    lines = [orjson.dumps(GOOD), b"{oops", b"", orjson.dumps(_with("time", "yesterday"))]
    (chunk,) = prepare_lines(lines, EventLimits(), workers=1)
    assert chunk.line_numbers == [1]
    assert [problem.line for problem in chunk.problems] == [2, 4]
    assert chunk.problems[1].error.field == "$.time"


def test_event_from_mapping_refuses_non_objects() -> None:
    with pytest.raises(EventError, match="JSON object"):
        event_from_mapping(["not", "an", "event"])


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_parse_serialize_round_trip(seed: int) -> None:
    raw = next(sample_events(1, seed=seed))
    event = parse_event(orjson.dumps(raw))
    again = parse_event(canonical_struct(event))
    assert again == event
    assert canonical_struct(again) == canonical(raw)


strings = st.text(max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(Event.__struct_fields__)) | strings,
        strings | st.integers() | st.floats(),
        max_size=6,
    )
)
def test_hostile_objects_parse_or_raise_event_error(value: dict) -> None:
    """Whatever arrives, the answer is an Event or an EventError, never another exception."""
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return
    try:
        event = parse_event(data)
    except EventError:
        return
    assert isinstance(event, Event)
    msgspec.json.encode(event)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": "record.read\n"}, "$.action"),  # `$` once let a trailing newline pass
        ({"time": "2026-03-01T14:05:09Z\n"}, "$.time"),
        ({"actor": {"id": "u-1\n"}}, "$.actor.id"),
        ({"actor": {"id": "u-\x1b[31mroot"}}, "$.actor.id"),  # a terminal escape
        ({"actor": {"id": "u-1", "roles": ["a\x07"]}}, "$.actor.roles[0]"),
        ({"resource": {"type": "patient", "id": "p\x00"}}, "$.resource.id"),
        ({"context": {"labels": {"k\n": 1}}}, "$.context.labels"),
        ({"source": {"ip": "10.0.0.1\n"}}, "$.source.ip"),
    ],
)
def test_names_refuse_control_characters_and_trailing_newlines(change: dict, field: str) -> None:
    """Issue 10, point 14: validation accepted `record.read\\n` and ids ending in a newline
    or holding terminal escapes. Free text (reasons, details) keeps its newlines."""
    base = {"id": "e-1", "time": "2026-03-01T14:05:09Z", "actor": {"id": "u-1"}, "action": "a.b"}
    for parse in (lambda v: parse_event(orjson.dumps(v)), event_from_mapping):
        with pytest.raises(EventError) as refused:
            parse({**base, **change})
        assert refused.value.field == field
    text = {**base, "outcome": {"reason": "line one\nline two"}, "detail": {"note": "a\nb"}}
    assert parse_event(orjson.dumps(text)).outcome.reason == "line one\nline two"
