"""A batch of row changes, as change capture writes it into the outbox, and its events.

Capture runs inside the application's write, so it does the least it can
there: it notes each changed row (action, table, key, before, after; sensitive
columns already dropped or HMAC'd, so the outbox never holds them) and writes
the batch as one outbox row. Turning the batch into events (one per row, with
big values digested and floats as strings) happens when the outbox ships,
off the request's path. Event ids are the batch id and the row's position
(``<uuid>.3``), so shipping a batch twice after a crash yields the same ids,
which the log accepts once.

What row values cannot fix (the actor, the service, a table name) is
validated at capture time, once per combination, so a bad one is refused in
the application, not at shipping.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypedDict

import orjson

from trailseal.capture.rows import column_value
from trailseal.capture.values import safe_name
from trailseal.errors import EventError
from trailseal.events import event_from_mapping

Row = dict[str, Any]
Change = tuple[str, str, str | None, Row | None, Row | None]  # action, table, id, before, after


class ChangeBatch(TypedDict):
    """One outbox row of change capture."""

    changes: list[Change]
    batch: str  # a UUIDv7; event n of the batch has the id "<batch>.<n>"
    time: str
    actor: dict[str, Any]
    service: str
    via: str  # "unit-of-work" or "statement"


def dumps(batch: ChangeBatch) -> str:
    """The batch as outbox JSON. Values orjson cannot write take their safe form;
    datetimes too (an aware one in UTC "Z" form, a naive one as its wall-clock text)."""
    try:
        options = orjson.OPT_PASSTHROUGH_DATETIME
        return orjson.dumps(batch, default=column_value, option=options).decode()
    except (TypeError, orjson.JSONEncodeError):
        # an integer beyond 64 bits, a lone surrogate: convert every value first
        safe = batch | {
            "changes": [
                (a, t, i, _safe_row(before), _safe_row(after))
                for a, t, i, before, after in batch["changes"]
            ]
        }
        return orjson.dumps(safe).decode()


def _safe_row(row: Row | None) -> Row | None:
    return None if row is None else {str(k): column_value(v) for k, v in row.items()}


def event(batch: ChangeBatch, position: int) -> dict[str, Any]:
    """Change ``position`` of ``batch`` as an event the log accepts.

    Row values that the log would still refuse (a JSON column nested deeper than
    an event may be) are replaced by the SHA-256 of their JSON, so a batch that
    committed always ships."""
    action, table, record_id, before, after = batch["changes"][position]
    resource: dict[str, Any] = {"type": table}
    if record_id:
        resource["id"] = safe_name(record_id)
    built = {
        "id": f"{batch['batch']}.{position}",
        "time": batch["time"],
        "actor": batch["actor"],
        "action": action,
        "resource": resource,
        "outcome": {"result": "success"},
        "source": {"service": batch["service"]},
        "context": {"labels": {"capture": batch["via"]}},
        "detail": {"before": _safe_row(before) or None, "after": _safe_row(after) or None},
    }
    try:
        event_from_mapping(built)
    except EventError as exc:
        if not exc.field.startswith("$.detail"):
            raise
        built["detail"] = {"before": _flat_row(before), "after": _flat_row(after)}
        event_from_mapping(built)
    return built


def _flat_row(row: Row | None) -> Row | None:
    """A row whose nested values are replaced by their digest."""
    if not row:
        return None
    flat = _safe_row(row) or {}
    return {
        key: _digest_json(value) if isinstance(value, dict | list) else value
        for key, value in flat.items()
    }


def _digest_json(value: Any) -> dict[str, Any]:
    data = orjson.dumps(value)
    return {"sha256": hashlib.sha256(data).hexdigest(), "chars": len(data)}


def events(batch: ChangeBatch) -> list[dict[str, Any]]:
    return [event(batch, n) for n in range(len(batch["changes"]))]


def check(batch: ChangeBatch, seen: set[bytes]) -> None:
    """Refuse, in the application, a batch the log would refuse: its actor, service or a
    table name (EventError names the field). Each combination is checked once and
    remembered in ``seen``; row values cannot make an event fail (see :func:`event`)."""
    first_of_table: dict[str, int] = {}
    for position, change in enumerate(batch["changes"]):
        first_of_table.setdefault(change[1], position)
    for table, position in first_of_table.items():  # one key per table, not per row
        key = orjson.dumps([table, batch["actor"], batch["service"], batch["via"]])
        if key not in seen:
            event(batch, position)
            if len(seen) > 10_000:
                seen.clear()
            seen.add(key)
