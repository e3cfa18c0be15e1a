"""GET /v1/entries and /v1/entries/{index}; POST /v1/entries/{index}/erase-detail."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from trailseal.app import paging, search_filter
from trailseal.app.paging import MAX_INDEX, encode_cursor
from trailseal.errors import CursorError
from trailseal.query import MAX_QUERY
from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES, Problem

router = APIRouter(responses=PROBLEM_RESPONSES)


def decode_cursor(cursor: str, newest_first: bool = False) -> tuple[int, int]:
    try:
        return paging.decode_cursor(cursor, newest_first)
    except CursorError as exc:
        raise Problem(400, "Bad cursor", str(exc)) from None


Index = Annotated[int, PathParam(ge=0, le=MAX_INDEX, description="an entry's index")]


@router.get("/v1/entries/{index}")
def get_entry(index: Index, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    view = service.app.entries.get(caller, index)
    return {"index": index, **view.to_json()}


class Filters(BaseModel):
    """A query in the search language (``q``) and its older shorthands; all given
    ones must hold."""

    q: str | None = Field(default=None, max_length=MAX_QUERY, description="the search language")
    actor: str | None = Field(default=None, max_length=256)
    action: str | None = Field(default=None, max_length=128)
    resource_type: str | None = Field(default=None, max_length=256)
    resource_id: str | None = Field(default=None, max_length=256)
    outcome: str | None = Field(default=None, max_length=16)
    tenant: str | None = Field(default=None, max_length=256)
    since: str | None = Field(default=None, max_length=64)
    until: str | None = Field(default=None, max_length=64)
    order: Literal["oldest", "newest"] = "oldest"
    count_by: str | None = Field(default=None, max_length=64, description="count by a field")
    limit: int = Field(default=100, ge=1, le=2**31)
    cursor: str | None = Field(default=None, max_length=200)


@router.get("/v1/entries")
def list_entries(
    service: ServiceDep, caller: CallerDep, filters: Annotated[Filters, Query()]
) -> dict[str, Any]:
    """Entries matching the filters in index order, a page at a time. The cursor pins
    the log's size when the first page was served, so paging always ends and never
    shows an entry twice."""
    if filters.limit > service.limits.max_page:
        raise Problem(400, "Page too large", f"limit is at most {service.limits.max_page}")
    newest = filters.order == "newest"
    if filters.cursor:
        last, pinned = decode_cursor(filters.cursor, newest)
    else:
        pinned = service.app.entries.size()
        last = pinned if newest else -1
    query = search_filter(
        q=filters.q,
        actor=filters.actor,
        action=filters.action,
        resource_type=filters.resource_type,
        resource_id=filters.resource_id,
        outcome=filters.outcome,
        tenant=filters.tenant,
        since=filters.since,
        until=filters.until,
        limit=filters.limit,
        after_index=-1 if newest else last,
        below_index=last if newest else pinned,
        newest_first=newest,
    )
    if filters.count_by:
        return service.app.entries.count_by(caller, query, filters.count_by).to_json()
    views = service.app.entries.search(caller, query)
    end = views[-1].index if len(views) == filters.limit else None
    return {
        "entries": [{"index": view.index, **view.to_json()} for view in views],
        "next_cursor": None if end is None else encode_cursor(end, pinned, newest),
        "size": pinned,
    }


class EraseRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=4096)


@router.post("/v1/entries/{index}/erase-detail")
def erase_detail(
    index: Index, body: EraseRequest, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    """Erase an entry's detail, with a reason; the erasure is itself an entry."""
    record = service.app.entries.erase(caller, index, body.reason)
    return {"erased": index, "record_index": record}
