"""An entry as rules see it: a flat mapping of dotted field paths.

``actor.id``, ``action``, ``resource.unit``, ``source.ip``, ``context.labels.capture``,
``detail.role`` and so on, as the event spells them, plus ``index`` and
``received_at`` from the entry, and ``enrich.*`` from the organisation's context
(see :mod:`trailseal.detect.context`). Lists stay lists (``actor.roles``): a
rule value matches a list when it matches any element.
"""

from __future__ import annotations

from typing import Any

from trailseal.events import exact_json

Fields = dict[str, Any]

# Details that hold another system's record whole, as the text it delivered (see
# trailseal.ingest): rules read the record's own fields, ``detail.cloudtrail.eventName``.
RECORDS = frozenset({"cloudtrail", "terraform"})


def _record(text: str) -> Any:
    try:
        return exact_json(text)
    except ValueError:
        return None


def readable(detail: Any) -> Any:
    """The detail as rules read it: a record kept as text is read as the record."""
    if not isinstance(detail, dict) or not any(isinstance(detail.get(key), str) for key in RECORDS):
        return detail
    return {
        key: _record(value) if key in RECORDS and isinstance(value, str) else value
        for key, value in detail.items()
    }


def _flatten(prefix: str, value: dict[str, Any], into: Fields) -> None:
    """Every field at any depth, as the engine's :class:`FieldPlan` reads them (events are
    validated to a bounded depth, so the recursion is bounded too); an object is also a
    field of its own, which equals no rule value."""
    for key, item in value.items():
        name = f"{prefix}.{key}"
        into[name] = item
        if isinstance(item, dict):
            _flatten(name, item, into)


def entry_fields(index: int, entry: dict[str, Any], detail: Any) -> Fields:
    """The fields of one stored entry (``{"event": ..., "received_at": ...}``)."""
    fields: Fields = {"index": index, "received_at": entry.get("received_at")}
    for key, value in entry.get("event", {}).items():
        if isinstance(value, dict):
            _flatten(key, value, fields)
        else:
            fields[key] = value
    if isinstance(detail, dict):
        _flatten("detail", readable(detail), fields)
    return fields


_MISSING = object()
# What the engine and the context read besides the rules' own fields.
ENGINE_FIELDS = frozenset(
    {
        "time",
        "action",
        "actor.id",
        "actor.unit",
        "actor.tenant",
        "resource.type",
        "resource.id",
        "resource.unit",
        "resource.tenant",
        "source.ip",
        "source.user_agent",
        "source.service",
    }
)


Tree = dict[str, tuple[str | None, "Tree"]]  # key: (field name if read, deeper keys)


class FieldPlan:
    """Only the fields a rule pack reads, looked up directly: cheaper than flattening
    every entry whole (most of an entry is never read by any rule). The paths form a
    tree, so a shared prefix (``actor.``) is looked up once."""

    def __init__(self, names: set[str] | frozenset[str]) -> None:
        self.event: Tree = {}
        self.detail: Tree = {}
        for name in sorted(names | ENGINE_FIELDS):
            if name in ("index", "received_at") or name.startswith("enrich."):
                continue
            parts = name.split(".")
            tree, parts = (self.detail, parts[1:]) if parts[0] == "detail" else (self.event, parts)
            if not parts:
                continue  # "detail" itself: rules read its fields
            for depth, part in enumerate(parts):
                known, deeper = tree.get(part, (None, {}))
                tree[part] = (name if depth == len(parts) - 1 else known, deeper)
                tree = deeper

    def fields(self, index: int, entry: dict[str, Any], detail: Any) -> Fields:
        found: Fields = {"index": index, "received_at": entry.get("received_at")}
        _walk(entry.get("event", {}), self.event, found)
        if self.detail and isinstance(detail, dict):
            _walk(readable(detail), self.detail, found)
        return found


def _walk(source: dict[str, Any], tree: Tree, into: Fields) -> None:
    for key, (name, deeper) in tree.items():
        value = source.get(key, _MISSING)
        if value is _MISSING:
            continue
        if name is not None:
            into[name] = value
        if deeper and isinstance(value, dict):
            _walk(value, deeper, into)
