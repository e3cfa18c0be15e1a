"""Canonical bytes are RFC 8785: the RFC's own examples and a property test against `rfc8785`."""

from __future__ import annotations

import orjson
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from trailseal.events import canonical, parse_event
from trailseal.events.canonical import canonical_struct
from trailseal.events.model import SAFE_INT
from trailseal.testing import sample_events


def test_rfc8785_sorting_example() -> None:
    """RFC 8785 section 3.2.3: keys sorted by UTF-16 code units (an emoji before U+FB33)."""
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    assert canonical(value) == expected


def test_rfc8785_string_and_literals_example() -> None:
    """RFC 8785 section 3.2.2, without the floating-point numbers events never hold."""
    value = {
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = '{"literals":[null,true,false],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonical(value) == expected.encode()


json_keys = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE_INT, max_value=SAFE_INT)
    | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(json_keys, inner, max_size=6),
    max_leaves=30,
)
# Keys that exercise the one place orjson's order differs from UTF-16 order.
tricky_keys = st.sampled_from(["\ue000", "\uffff", "\U0001f600", "\U00010000", "a", "\ufb33", "é"])


@settings(max_examples=400)
@given(json_values)
def test_canonical_matches_rfc8785_package(value: object) -> None:
    assert canonical(value) == rfc8785.dumps(value)


@given(st.dictionaries(tricky_keys | json_keys, json_scalars, max_size=8))
def test_astral_and_private_use_keys_sort_like_utf16(value: dict) -> None:
    assert canonical(value) == rfc8785.dumps(value)


def _controls(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


@settings(max_examples=100)
@given(
    st.integers(min_value=0, max_value=2**31),
    st.dictionaries(tricky_keys | json_keys, st.text(max_size=8), max_size=5),
)
def test_canonical_struct_matches_rfc8785_for_events(seed: int, labels: dict) -> None:
    raw = next(sample_events(1, seed=seed))
    # label names are names: control characters are refused (tests/test_events.py)
    raw["context"]["labels"] = {k: v for k, v in labels.items() if k and not _controls(k)}
    event = parse_event(orjson.dumps(raw))
    assert canonical_struct(event) == rfc8785.dumps(raw)
