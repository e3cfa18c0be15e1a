"""Terraform Cloud (HCP Terraform) audit trail events as trailseal events.

The organisation audit-trail API (``GET /api/v2/organization/audit-trail``, with an
organisation token) answers pages of events in its own format (not JSON:API)::

    {"data": [{"id": "…", "version": "0", "type": "Resource",
               "timestamp": "2020-06-30T17:52:46.000Z",
               "auth": {"accessor_id": "user-…", "description": "name", "type": "Client",
                        "impersonator_id": null, "organization_id": "org-…"},
               "request": {"id": "…"},
               "resource": {"id": "ws-…", "type": "workspace", "action": "create",
                            "meta": null}}],
     "pagination": {"current_page": 1, "next_page": 2, "total_pages": 8, …}}

``since`` returns the events created after a moment; ``page[number]`` and
``page[size]`` (at most 1000) page through them. The API keeps 14 days.

Each event becomes one trailseal event, kept whole as delivered in
``detail.terraform``: id ``tfc:`` + its id, time its timestamp, actor its accessor
(``Client`` a user, ``System`` the system, an impersonator named), action
``terraform.RESOURCE_TYPE.ACTION`` (``terraform.workspace.create``), resource its type
and id, request its request id, and labels for the organisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from trailseal.errors import ConfigError, EventError
from trailseal.ingest.cloudtrail import event_time
from trailseal.ingest.names import fit, part
from trailseal.ingest.records import Record, records_of

API_PATH = "/api/v2/organization/audit-trail"
DEFAULT_URL = "https://app.terraform.io"
PAGE_SIZE = 1000
MAX_PAGES = 10_000  # 10 million events: far past 14 days of any organisation
MAX_PAGE_BYTES = 64 << 20
RETAINED_DAYS = 14  # the API keeps this long
DETAIL_KEY = "terraform"


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def to_event(item: Any, text: bytes, organization: str) -> dict[str, Any]:
    """The event for one audit trail event whose delivered text is ``text``."""
    if not isinstance(item, dict):
        raise EventError("$", f"an audit trail event is a JSON object, not {type(item).__name__}")
    ident = fit(item.get("id"))
    if ident is None:
        raise EventError("id", "the audit trail event has no id")
    auth = _object(item.get("auth"))
    resource = _object(item.get("resource"))
    kind = auth.get("type")
    actor: dict[str, Any] = {
        "id": fit(auth.get("accessor_id")) or "terraform:" + part(kind or "unknown", 60).lower(),
        "type": "system" if kind == "System" else "user",
    }
    if name := fit(auth.get("description")):
        actor["name"] = name
    if impersonator := fit(auth.get("impersonator_id")):
        actor["impersonator_id"] = impersonator
    event: dict[str, Any] = {
        "id": f"tfc:{ident}"[:256],
        "time": event_time(item.get("timestamp")),
        "actor": actor,
        "action": "terraform."
        + ".".join(part(resource.get(key) or "unknown", 60) for key in ("type", "action")),
        "outcome": {"result": "success"},
        "context": {"labels": {"terraform.organization": organization}},
        "detail": {DETAIL_KEY: text.decode("utf-8", "surrogatepass")},
    }
    if org_id := fit(auth.get("organization_id")):
        event["context"]["labels"]["terraform.organization_id"] = org_id
    found = {
        key: value
        for key, value in (("type", fit(resource.get("type"))), ("id", fit(resource.get("id"))))
        if value
    }
    if found:
        event["resource"] = found
    request = _object(item.get("request"))
    if request_id := fit(request.get("id")):
        event["request"] = {"request_id": request_id}
    return event


@dataclass(frozen=True)
class Page:
    """One page of the audit trail: its records and the next page's number."""

    number: int
    records: list[Record]
    next_page: int | None
    total_pages: int | None


Sleep = Callable[[float], object]


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "")), 60.0)
    except ValueError:
        return float(min(2**attempt, 30))


def _get(
    client: httpx.Client, url: str, params: dict[str, Any], sleep: Sleep, attempts: int = 5
) -> bytes:
    """One page's body: rate limits and server errors waited out, a refused token or a
    bad organisation said plainly."""
    for attempt in range(attempts):
        try:
            response = client.get(url, params=params)
        except httpx.HTTPError as exc:
            if attempt == attempts - 1:
                raise ConfigError(f"{url}: cannot reach the audit trail API: {exc}") from None
            sleep(min(2**attempt, 30))
            continue
        if response.status_code in (401, 403):
            raise ConfigError(
                f"{url}: the token was refused ({response.status_code}); the audit trail "
                "needs an organization token (user and team tokens are refused)"
            )
        if response.status_code == 404:
            raise ConfigError(f"{url}: not found (404); is the URL a Terraform Cloud API?")
        if response.status_code == 429 or response.status_code >= 500:
            if attempt == attempts - 1:
                raise ConfigError(f"{url}: answered {response.status_code} {attempts} times")
            sleep(_retry_after(response, attempt))
            continue
        if response.status_code != 200:
            raise ConfigError(f"{url}: answered {response.status_code}: {response.text[:200]}")
        if len(response.content) > MAX_PAGE_BYTES:
            raise ConfigError(f"{url}: a page of {len(response.content)} bytes is too large")
        return response.content
    raise ConfigError(f"{url}: no answer")  # pragma: no cover - the loop returns or raises


def _page(body: bytes, where: str) -> tuple[list[Record], dict[str, Any]]:
    """A page's records and its pagination, or ConfigError naming the page."""
    try:
        whole = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON: {exc}") from None
    if not isinstance(whole, dict) or not isinstance(whole.get("data"), list):
        raise ConfigError(f"{where}: not an audit trail page (no data array)")
    paging = whole.get("pagination")
    return list(records_of(body, where, key="data")), paging if isinstance(paging, dict) else {}


def pages(
    client: httpx.Client, base_url: str, since: str | None, sleep: Sleep = time.sleep
) -> Iterator[Page]:
    """Every page of events after ``since`` (RFC 3339), following ``next_page``."""
    url = base_url.rstrip("/") + API_PATH
    number = 1
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"page[number]": number, "page[size]": PAGE_SIZE}
        if since:
            params["since"] = since
        body = _get(client, url, params, sleep)
        found, paging = _page(body, f"{url} page {number}")
        following = paging.get("next_page")
        total = paging.get("total_pages")
        yield Page(
            number,
            found,
            following if isinstance(following, int) and following > number else None,
            total if isinstance(total, int) else None,
        )
        if not isinstance(following, int) or following <= number or not found:
            return
        number = following
    raise ConfigError(f"{url}: more than {MAX_PAGES} pages; give a later since")
