"""An entry as rules see it: a flat mapping of dotted field paths.

``actor.id``, ``action``, ``resource.unit``, ``source.ip``, ``context.labels.capture``,
``detail.role`` and so on, as the event spells them, plus ``index`` and
``received_at`` from the entry, and ``enrich.*`` from the organisation's context
(see :mod:`trailseal.detect.context`). Lists stay lists (``actor.roles``): a
rule value matches a list when it matches any element.
"""

from __future__ import annotations

from typing import Any

Fields = dict[str, Any]

_MAX_DEPTH = 6


def _flatten(prefix: str, value: dict[str, Any], into: Fields, depth: int) -> None:
    for key, item in value.items():
        name = f"{prefix}.{key}"
        if isinstance(item, dict) and depth < _MAX_DEPTH:
            _flatten(name, item, into, depth + 1)
        else:
            into[name] = item


def entry_fields(index: int, entry: dict[str, Any], detail: Any) -> Fields:
    """The fields of one stored entry (``{"event": ..., "received_at": ...}``)."""
    fields: Fields = {"index": index, "received_at": entry.get("received_at")}
    for key, value in entry.get("event", {}).items():
        if isinstance(value, dict):
            _flatten(key, value, fields, 2)
        else:
            fields[key] = value
    if isinstance(detail, dict):
        _flatten("detail", detail, fields, 2)
    return fields
