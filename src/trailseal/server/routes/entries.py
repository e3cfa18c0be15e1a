"""GET /v1/entries and /v1/entries/{index}; POST /v1/entries/{index}/erase-detail."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from trailseal.access import Permission
from trailseal.errors import EventError, NotFoundError
from trailseal.ledger import SearchFilter
from trailseal.ledger.search import normalize_time
from trailseal.server.deps import CallerDep, ServiceDep, allow, client_ip
from trailseal.server.problems import PROBLEM_RESPONSES, Problem

router = APIRouter(responses=PROBLEM_RESPONSES)
MAX_INDEX = 2**62  # beyond any log; keeps SQLite integers in range


def encode_cursor(after: int, pinned: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([after, pinned])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(last index seen, log size pinned when the first page was served)."""
    try:
        after, pinned = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(after, int) and isinstance(pinned, int) and -1 <= after < pinned):
            raise ValueError(cursor)  # noqa: TRY301 - one refusal for every malformed shape
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise Problem(400, "Bad cursor", "the cursor is not one this service issued") from None
    return after, pinned


Index = Annotated[int, PathParam(ge=0, le=MAX_INDEX, description="an entry's index")]


@router.get("/v1/entries/{index}")
def get_entry(
    index: Index, request: Request, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    allow(service, caller, Permission.READ, request)
    view = service.get_visible(caller, index)
    service.record(
        "audit.read",
        caller,
        source_ip=client_ip(request),
        resource={"type": "entry", "id": str(index)},
    )
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
    request: Request,
    service: ServiceDep,
    caller: CallerDep,
    filters: Annotated[Filters, Query()],
) -> dict[str, Any]:
    """Entries matching the filters in index order, a page at a time. The cursor pins
    the log's size when the first page was served, so paging always ends and never
    shows an entry twice."""
    allow(service, caller, Permission.READ, request)
    if filters.limit > service.limits.max_page:
        raise Problem(400, "Page too large", f"limit is at most {service.limits.max_page}")
    tenant = filters.tenant
    if caller.tenant != "*":
        if tenant not in (None, caller.tenant):
            raise Problem(403, "Forbidden", f"this principal sees only tenant {caller.tenant!r}")
        tenant = caller.tenant
    after, pinned = decode_cursor(filters.cursor) if filters.cursor else (-1, service.ledger.size())
    try:
        query = SearchFilter(
            actor=filters.actor,
            action=filters.action,
            resource_type=filters.resource_type,
            resource_id=filters.resource_id,
            outcome=filters.outcome,
            tenant=tenant,
            since=normalize_time(filters.since, "since") if filters.since else None,
            until=normalize_time(filters.until, "until") if filters.until else None,
            limit=filters.limit,
            after_index=after,
            below_index=pinned,
        )
    except EventError as exc:
        raise Problem(400, "Bad query", str(exc)) from None
    views = service.ledger.search(query)
    service.record(
        "audit.read",
        caller,
        source_ip=client_ip(request),
        resource={"type": "log", "count": len(views)},
        labels={"query": str(request.url.query)[:1000]},
    )
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
    index: Index, body: EraseRequest, request: Request, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    """Erase an entry's detail, with a reason; the erasure is itself an entry."""
    allow(service, caller, Permission.ERASE, request)
    service.get_visible(caller, index)
    try:
        record = service.ledger.erase(index, body.reason, actor=caller.id)
    except (NotFoundError, EventError) as exc:
        raise Problem(409, "Cannot erase", str(exc)) from None
    return {"erased": index, "record_index": record}
