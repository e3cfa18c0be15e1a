"""Opaque cursors over the log index, pinned to the log's size when the first page was
served, so paging always ends and never shows an entry twice (API and dashboard)."""

from __future__ import annotations

import base64
import binascii

import orjson

from trailseal.errors import CursorError

MAX_INDEX = 2**62  # beyond any log; keeps SQLite integers in range


def encode_cursor(last: int, pinned: int, newest_first: bool = False) -> str:
    shape = [last, pinned, 1] if newest_first else [last, pinned]
    return base64.urlsafe_b64encode(orjson.dumps(shape)).decode().rstrip("=")


def decode_cursor(cursor: str, newest_first: bool = False) -> tuple[int, int]:
    """(last index seen, log size pinned when the first page was served); a cursor
    remembers the order it was issued for. Anything else is a CursorError."""
    try:
        shape = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        last, pinned, *order = shape
        if not (
            isinstance(last, int)
            and isinstance(pinned, int)
            and -1 <= last < pinned <= MAX_INDEX
            and order == ([1] if newest_first else [])
        ):
            raise ValueError(cursor)  # noqa: TRY301 - one refusal for every malformed shape
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise CursorError("the cursor is not one this service issued for this order") from None
    return last, pinned


def page_bounds(cursor: str | None, size: int, newest_first: bool) -> tuple[int, int, int]:
    """(after_index, below_index, pinned size) of a page: the first from the log's size
    now, the next from its cursor."""
    if cursor:
        last, pinned = decode_cursor(cursor, newest_first)
    else:
        pinned = size
        last = pinned if newest_first else -1
    if newest_first:
        return -1, last, pinned
    return last, pinned, pinned
