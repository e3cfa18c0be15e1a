"""JSON records as other systems deliver them, each with its exact text.

A delivery file holds many records: CloudTrail writes ``{"Records": [...]}`` (gzip or
plain), others write a bare JSON array or JSON Lines. Each record is read with its
value (to fill an event's fields) and its text exactly as delivered, with only the
whitespace between tokens taken out, so the detail an importer keeps is byte for byte
what the source wrote: key order, number spelling (``1.50``, ``1e3``, integers past
2**53) and string escapes included. The same record in a compact file and in an
indented one keeps one text, so a re-import finds it already stored.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from trailseal.errors import ConfigError
from trailseal.events import exact_json

MAX_FILE_BYTES = 1 << 30  # a delivery file decompressed; CloudTrail's are megabytes
GZIP_MAGIC = b"\x1f\x8b"

# A JSON string, or a run of anything else but whitespace: the tokens, joined, are the
# text without the whitespace between them (valid JSON has none elsewhere).
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[^\s"]+', re.DOTALL)
# What the splitter steps over: a string whole, or a bracket or comma.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


class RecordFileError(ConfigError):
    """A delivery file that cannot be read as records at all (named, with the reason)."""


@dataclass(frozen=True)
class Record:
    """One record of a delivery file: its value, its exact text, and where it was."""

    value: Any
    text: bytes
    where: str  # FILE#N (the record's position, from 1)


def minify(text: bytes) -> bytes:
    """``text`` (valid JSON) without the whitespace between its tokens."""
    return b"".join(_TOKENS.findall(text))


def _compact(value: Any, text: bytes) -> bytes:
    """``text`` without whitespace between tokens: itself when orjson writes the value
    back to exactly these bytes (a compact delivery file, most often), else minified."""
    try:
        if orjson.dumps(value) == text:
            return text
    except orjson.JSONEncodeError:
        pass
    return minify(text)


def decompress(data: bytes, name: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """``data``, gunzipped when it is gzip (every member), refusing more than ``limit``
    bytes out: a small hostile file must not fill memory."""
    if not data.startswith(GZIP_MAGIC):
        if len(data) > limit:
            raise RecordFileError(f"{name}: {len(data)} bytes; the limit is {limit}")
        return data
    out: list[bytes] = []
    size = 0
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=31)
            while rest:
                piece = inflater.decompress(rest, limit + 1 - size)
                out.append(piece)
                size += len(piece)
                if size > limit:
                    raise RecordFileError(f"{name}: more than {limit} bytes once decompressed")
                rest = inflater.unconsumed_tail or inflater.unused_data
                if inflater.eof:
                    break
            if not inflater.eof:
                raise RecordFileError(f"{name}: the gzip data ends early (a truncated file?)")
            rest = inflater.unused_data
    except zlib.error as exc:
        raise RecordFileError(f"{name}: not valid gzip: {exc}") from None
    return b"".join(out)


def _element_ends(text: bytes, start: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each element of the minified JSON array whose ``[`` is at
    ``start - 1``."""
    depth, begin = 0, start
    for token in _TOKEN.finditer(text, start):
        char = text[token.start()]
        if char in b"[{":  # bytes index to int
            depth += 1
        elif char in b"]}":
            if depth == 0:  # the array's own end
                if token.start() > begin:
                    yield begin, token.start()
                return
            depth -= 1
        elif char == ord(",") and depth == 0:
            yield begin, token.start()
            begin = token.end()


def _array(values: list[Any], text: bytes, start: int, name: str) -> Iterator[Record]:
    """The records of an array whose first element starts at ``start`` of the minified
    ``text``: orjson's own compact form is tried first (it is the delivered text for
    nearly every record); a record it does not reproduce is cut out by the splitter."""
    position = start
    for number, value in enumerate(values, start=1):
        try:
            guess = orjson.dumps(value)
        except orjson.JSONEncodeError:  # past 64 bits, or a lone surrogate
            guess = b"\x00"
        after = position + len(guess)
        if text.startswith(guess, position) and text[after : after + 1] in (b",", b"]"):
            piece = guess
        else:
            begin, end = next(_element_ends(text, position))
            piece = text[begin:end]
        yield Record(value, piece, f"{name}#{number}")
        position += len(piece) + 1  # and the comma


def records(data: bytes, name: str, key: str = "Records") -> Iterator[Record]:
    """Every record of one delivery file's bytes (gzip or plain)."""
    return records_of(decompress(data, name), name, key)


def records_of(content: bytes, name: str, key: str = "Records") -> Iterator[Record]:
    """Every record of one delivery file's uncompressed content: the array under ``key``
    of an envelope (CloudTrail's ``Records``, an API page's ``data``), the elements of a
    bare array, one record per JSON line, or a single object."""
    text = content.lstrip(b"\xef\xbb\xbf \t\r\n").rstrip(b" \t\r\n")
    if not text:
        return
    try:
        whole = exact_json(text)
    except ValueError:
        whole = None  # JSON Lines, or not JSON at all
    else:
        compact = _compact(whole, text)
        if isinstance(whole, dict) and isinstance(whole.get(key), list):
            opening = _opening(compact, key)
            if opening is not None:
                yield from _array(whole[key], compact, opening, name)
                return
        if isinstance(whole, list):
            yield from _array(whole, compact, 1, name)
            return
        yield Record(whole, compact, f"{name}#1")
        return
    yield from _lines(text, name)


def _opening(compact: bytes, key: str) -> int | None:
    """Where the envelope's own ``key`` array starts (its first element), not a key of
    that name deeper in."""
    quoted = orjson.dumps(key) + b":["
    at = compact.find(quoted)
    while at != -1:
        if _top_level(compact, at):
            return at + len(quoted)
        at = compact.find(quoted, at + 1)
    return None


def _top_level(compact: bytes, at: int) -> bool:
    """Whether the key at ``at`` is one of the envelope's own (depth 1), not a nested
    ``Records`` inside an earlier key's value."""
    depth = 0
    for token in _TOKEN.finditer(compact, 0, at):
        char = compact[token.start()]
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            depth -= 1
    return depth == 1


def _lines(text: bytes, name: str) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = exact_json(line)
        except ValueError as exc:
            if number == 1:
                raise RecordFileError(
                    f"{name}: not JSON, a JSON array or JSON Lines: {exc}"
                ) from None
            yield Record(None, line, f"{name}#{number}")  # a bad line: the importer says so
            continue
        yield Record(value, minify(line), f"{name}#{number}")
