"""GET /v1/entries and /v1/entries/{index}; POST /v1/entries/{index}/erase-detail."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from trailseal.app import search_filter
from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES, Problem

router = APIRouter(responses=PROBLEM_RESPONSES)
MAX_INDEX = 2**62  # beyond any log; keeps SQLite integers in range


def encode_cursor(after: int, pinned: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([after, pinned])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(last index seen, log size pinned when the first page was served)."""
    try:
        after, pinned = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (
            isinstance(after, int) and isinstance(pinned, int) and -1 <= after < pinned <= MAX_INDEX
        ):
            raise ValueError(cursor)  # noqa: TRY301 - one refusal for every malformed shape
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise Problem(400, "Bad cursor", "the cursor is not one this service issued") from None
    return after, pinned


Index = Annotated[int, PathParam(ge=0, le=MAX_INDEX, description="an entry's index")]


@router.get("/v1/entries/{index}")
def get_entry(index: Index, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    view = service.app.entries.get(caller, index)
    return {"index": index, **view.to_json()}


class Filters(BaseModel):
    """The search filters; all given ones must hold."""

    actor: str | None = Field(default=None, max_length=256)
    action: str | None = Field(default=None, max_length=128)
    resource_type: str | None = Field(default=None, max_length=256)
    resource_id: str | None = Field(default=None, max_length=256)
    outcome: str | None = Field(default=None, max_length=16)
    tenant: str | None = Field(default=None, max_length=256)
    since: str | None = Field(default=None, max_length=64)
    until: str | None = Field(default=None, max_length=64)
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
    after, pinned = (
        decode_cursor(filters.cursor) if filters.cursor else (-1, service.app.entries.size())
    )
    query = search_filter(
        actor=filters.actor,
        action=filters.action,
        resource_type=filters.resource_type,
        resource_id=filters.resource_id,
        outcome=filters.outcome,
        tenant=filters.tenant,
        since=filters.since,
        until=filters.until,
        limit=filters.limit,
        after_index=after,
        below_index=pinned,
    )
    views = service.app.entries.search(caller, query)
    last = views[-1].index if len(views) == filters.limit else None
    return {
        "entries": [{"index": view.index, **view.to_json()} for view in views],
        "next_cursor": None if last is None else encode_cursor(last, pinned),
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
