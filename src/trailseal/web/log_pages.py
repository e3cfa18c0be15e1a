"""The pages that read the log: overview, search, one entry, a record's history and an
actor's timeline. Each asks the application layer, which decides and records."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from trailseal.app import search_filter
from trailseal.app.paging import MAX_INDEX, encode_cursor, page_bounds
from trailseal.errors import ConfigError, NotFoundError, PermissionDeniedError, QueryError
from trailseal.events.canonical import canonical
from trailseal.ledger import EntryView, SearchFilter
from trailseal.ledger.counting import COUNTERS
from trailseal.query import Between, Exact, Match, ResourceValue, both
from trailseal.query.times import fixed, span
from trailseal.web.charts import bars
from trailseal.web.diff import changes
from trailseal.web.door import Viewer, dashboard, page, render, viewer

router = APIRouter(include_in_schema=False)


def _moment(text: str, field: str, *, end: bool = False) -> str:
    """A time as the search language reads one (RFC 3339, a date, ``now-24h``): its
    start, or with ``end`` the end of what it names (a date's whole day)."""
    try:
        low, high = span(text, datetime.now(UTC))
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None
    return fixed(high if end else low)


PAGE = 50
MAX_PAGE = 500


@router.get("/")
@page
def overview(request: Request, at: str | None = None) -> Response:
    found = viewer(request)
    moment = _moment(at, "at", end=True) if at else None
    board = dashboard(request)
    seen = board.app.overviews.overview(found.caller, moment)
    intake = bars(
        "Entries received per day, last 30 days",
        [(day[5:], n) for day, n in seen.intake],
        every=5,
    )
    return render(request, found, "overview.html.j2", seen=seen, intake=intake, at=at or "")


def _page_size(limit: str | None) -> int:
    if limit is None:
        return PAGE
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise ConfigError(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(limit)


def _listing(
    request: Request,
    found: Viewer,
    query: SearchFilter,
    cursor: str | None,
    size: int,
) -> dict[str, Any]:
    """One page of entries for ``query`` and the link to the next; the page is pinned to
    the log's size when the first one was served."""
    newest = query.newest_first
    after, below, pinned = page_bounds(cursor, dashboard(request).app.entries.size(), newest)
    paged = replace(query, limit=size, after_index=after, below_index=below)
    views = dashboard(request).app.entries.search(found.caller, paged)
    end = views[-1].index if len(views) == size else None
    return {
        "views": views,
        "next_cursor": None if end is None else encode_cursor(end, pinned, newest),
        "pinned": pinned,
        "size": size,
    }


@router.get("/search")
@page
def search(
    request: Request,
    q: str = "",
    order: str = "newest",
    cursor: str | None = None,
    count_by: str = "",
    limit: str | None = None,
) -> Response:
    """The search language in a box; the URL is the permalink. No cap: the next page
    is always one link away, however many there are."""
    found = viewer(request)
    board = dashboard(request)
    order = order if order in ("oldest", "newest") else "newest"
    context: dict[str, Any] = {
        "q": q,
        "order": order,
        "count_by": count_by,
        "fields": list(COUNTERS),
    }
    try:
        size = _page_size(limit)
        query = search_filter(q=q or None, limit=size, newest_first=order == "newest")
        if count_by:
            counts = board.app.entries.count_by(found.caller, query, count_by)
            context["counts"] = counts
            context["chart"] = bars(
                f"Entries by {count_by}", [(str(v), n) for v, n in counts.values[:30]]
            )
        else:
            context |= _listing(request, found, query, cursor, size)
    except (QueryError, ConfigError) as exc:
        context["error"] = exc
        return render(request, found, "search.html.j2", status_code=400, **context)
    return render(request, found, "search.html.j2", **context)


def _index(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_INDEX:
        raise NotFoundError(f"{text[:40]!r} is not an entry's index (a whole number from 0)")
    return int(text)


def _proof_data(request: Request, found: Viewer, view: EntryView) -> dict[str, Any]:
    """What the browser needs to check the entry's inclusion itself: the entry's bytes,
    the proof, the signed checkpoint and the key."""
    entries = dashboard(request).app.entries
    note = entries.checkpoint(found.caller)
    size = int(note.split("\n")[1])
    if view.index >= size:
        return {"pending": f"entry {view.index} is not yet covered by a checkpoint ({size})"}
    try:
        proof = entries.prove_inclusion(found.caller, view.index, size)
    except PermissionDeniedError as exc:
        return {"refused": str(exc)}
    return {
        "index": view.index,
        "size": size,
        "leaf_hash": view.leaf_hash.hex(),
        "proof": [node.hex() for node in proof.proof],
        "entry": base64.b64encode(canonical(view.entry)).decode(),
        "checkpoint": note,
        "vkey": str(dashboard(request).app.verifier),
    }


@router.get("/entries/{index}")
@page
def entry(request: Request, index: str) -> Response:
    found = viewer(request)
    view = dashboard(request).app.entries.get(found.caller, _index(index))
    detail = view.detail if isinstance(view.detail, dict) else {}
    proof = _proof_data(request, found, view)
    return render(
        request,
        found,
        "entry.html.j2",
        view=view,
        event=view.entry["event"],
        diff=changes(detail.get("before"), detail.get("after")),
        detail=view.detail,
        proof=proof,
        # Inside <script type="application/json">: no "<" may end the element early.
        proof_json=orjson.dumps(proof).decode().replace("<", "\\u003c"),
        entry_json=orjson.dumps(view.entry, option=orjson.OPT_INDENT_2).decode(),
    )


@router.get("/history")
@page
def history(
    request: Request, resource: str = "", cursor: str | None = None, limit: str | None = None
) -> Response:
    """Every entry about one record (``resource=TYPE/ID``), oldest first."""
    found = viewer(request)
    kind, _, ident = resource.partition("/")
    if not kind or not ident:
        raise ConfigError("name a record as TYPE/ID, e.g. patient/MRN-0001")
    where = Match("resource", (ResourceValue(Exact(kind), Exact(ident)),))
    query = SearchFilter(where=where, text=f"resource:{resource}")
    listing = _listing(request, found, query, cursor, _page_size(limit))
    return render(request, found, "history.html.j2", resource=resource, **listing)


@router.get("/timeline")
@page
def timeline(
    request: Request,
    actor: str = "",
    since: str = "",
    until: str = "",
    cursor: str | None = None,
    limit: str | None = None,
) -> Response:
    """Everything one actor did, oldest first, optionally between two times."""
    found = viewer(request)
    if not actor:
        raise ConfigError("name an actor's id")
    low = _moment(since, "since") if since else None
    high = _moment(until, "until", end=True) if until else None
    window = Match("time", (Between(low, high),)) if low or high else None
    where = both(Match("actor", (Exact(actor),)), window)
    text = f"actor:{actor}" + (f" time:{since}..{until}" if window else "")
    query = SearchFilter(where=where, text=text)
    listing = _listing(request, found, query, cursor, _page_size(limit))
    return render(
        request, found, "timeline.html.j2", actor=actor, since=since, until=until, **listing
    )
