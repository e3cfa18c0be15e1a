"""Every parser has a serializer: round-trip properties for checkpoints, notes and keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailseal.checkpoints import Checkpoint, Signer, Verifier, open_note
from trailseal.errors import NoteError

names = st.from_regex(r"[a-z0-9.-]{1,20}(/[a-z0-9.-]{1,10})?", fullmatch=True)
SIGNER = Signer.generate("roundtrip.example/log")


@settings(max_examples=100)
@given(
    names,
    st.integers(min_value=0, max_value=2**63 - 1),
    st.binary(min_size=32, max_size=32),
    st.data(),
)
def test_checkpoint_text_round_trip(
    origin: str, size: int, root: bytes, data: st.DataObject
) -> None:
    prev = data.draw(st.none() | st.integers(min_value=0, max_value=size))
    checkpoint = Checkpoint(origin, size, root, prev)
    assert Checkpoint.parse_text(checkpoint.text()) == checkpoint


@settings(max_examples=50)
@given(st.integers(min_value=0, max_value=10**12), st.binary(min_size=32, max_size=32))
def test_signed_checkpoint_opens_only_with_its_key(size: int, root: bytes) -> None:
    checkpoint = Checkpoint("roundtrip.example/log", size, root, 0)
    note = checkpoint.sign(SIGNER)
    assert Checkpoint.open(note, SIGNER.verifier, "roundtrip.example/log") == checkpoint
    other = Signer.generate("roundtrip.example/log")
    with pytest.raises(NoteError):
        Checkpoint.open(note, other.verifier)
    with pytest.raises(NoteError):
        Checkpoint.open(note, SIGNER.verifier, "another.example/log")


lines = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40
).filter(lambda line: line.strip() == line and line)


@settings(max_examples=100)
@given(st.lists(lines, min_size=1, max_size=5))
def test_note_sign_open_round_trip(body: list[str]) -> None:
    text = "\n".join(body) + "\n"
    note = SIGNER.sign(text)
    assert open_note(note, SIGNER.verifier) == text
    tampered = note.replace(body[0], body[0] + "x", 1)
    with pytest.raises(NoteError):
        open_note(tampered, SIGNER.verifier)


@settings(max_examples=30)
@given(names)
def test_key_strings_round_trip(name: str) -> None:
    signer = Signer.generate(name)
    assert Signer.from_string(signer.to_string()).verifier == signer.verifier
    assert Verifier.from_string(str(signer.verifier)) == signer.verifier


@pytest.mark.parametrize(
    "text",
    [
        "origin\n12\n",
        "origin\n012\nAAAA\n",
        "origin\n-1\n" + "A" * 43 + "=\n",
        "origin\n5\nnot base64!\n",
        "origin\n5\n" + "AAAA" * 4 + "\n",
    ],
)
def test_malformed_checkpoint_text_is_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse_text(text)
