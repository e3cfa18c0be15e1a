"""What every dashboard page shares: who is viewing, rendering, times, and errors as pages.

A page handler calls :func:`viewer` for the signed-in caller, then the application
layer, then :func:`render`. Handlers are wrapped in :func:`page`, which turns a domain
error into a page that says what went wrong (the status the API would answer, never a
stack trace) and a missing or expired session into the sign-in page.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from trailseal.access import Permission, Principal, Role, decide
from trailseal.app import App, Caller
from trailseal.errors import AuthenticationError, QueryError, TrailsealError
from trailseal.reports.model import zone
from trailseal.server.problems import problem_for
from trailseal.web.sessions import COOKIE, Session, Sessions, same

logger = logging.getLogger("trailseal.web")
SERVICE = "trailseal-web"  # source.service of what the dashboard's use writes into the log

# Every page the navigation offers, with the permission it needs: the role table
# (trailseal.access) decides which a viewer sees; the pages themselves ask the
# application layer, which decides again and records.
NAVIGATION = (
    ("/", "Overview", Permission.READ),
    ("/search", "Search", Permission.READ),
    ("/alerts", "Alerts", Permission.READ_ALERTS),
    ("/reports", "Reports", Permission.REPORT),
    ("/principals", "Principals", Permission.MANAGE_PRINCIPALS),
)

# Zones offered in the header's picker (any IANA name may be typed).
ZONES = (
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a permalink's query can name a patient
    "Cache-Control": "no-store",  # pages show audit data: never kept by a browser or proxy
    "X-Frame-Options": "DENY",
}


def pages_for(role: Role) -> list[tuple[str, str]]:
    """The pages (address, name) a role may open, in the navigation's order."""
    return [(href, label) for href, label, need in NAVIGATION if decide(role, need).allowed]


@dataclass(frozen=True)
class Dashboard:
    """The dashboard's state in one serving process."""

    app: App
    sessions: Sessions


@dataclass(frozen=True)
class Viewer:
    """The signed-in caller of one request, with its session."""

    session: Session
    principal: Principal
    caller: Caller

    def may(self, permission: Permission) -> bool:
        return decide(self.principal.role, permission).allowed

    @property
    def navigation(self) -> list[tuple[str, str]]:
        return pages_for(self.principal.role)


class SignInRequired(Exception):  # noqa: N818 - a redirect, not an error
    """No live session: the page answers with the sign-in page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FormRefused(Exception):  # noqa: N818 - a refusal the page explains
    """A form without this session's CSRF token."""


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "0.0.0.0"  # noqa: S104 - a label


def dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def viewer(request: Request) -> Viewer:
    """The signed-in caller, or SignInRequired. The principal is read afresh each time,
    so a revoked or rotated principal's session ends at its next request."""
    board = dashboard(request)
    session = board.sessions.find(request.cookies.get(COOKIE))
    if session is None:
        had = COOKIE in request.cookies
        raise SignInRequired("Your session expired; sign in again." if had else "")
    try:
        principal = board.app.principals.active(session.principal_id, session.token_hint)
    except AuthenticationError:
        board.sessions.end(session.id)
        raise SignInRequired("Your token was revoked or rotated; sign in again.") from None
    return Viewer(session, principal, Caller(principal, client_ip(request), SERVICE))


def check_form(viewer: Viewer, form: Any) -> None:
    """Refuse a form post that does not carry this session's CSRF token."""
    if not same(form.get("csrf"), viewer.session.csrf):
        raise FormRefused


# -- rendering ----------------------------------------------------------------------

_TEMPLATES = Environment(
    loader=PackageLoader("trailseal.web", "templates"),
    autoescape=select_autoescape(("html", "j2")),
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(moment: str | None, zone_name: str = "UTC") -> str:
    """An RFC 3339 UTC time in the viewer's zone, with the offset always shown."""
    if not moment:
        return ""
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    local = parsed.astimezone(zone(zone_name))
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S") + f" {offset[:3]}:{offset[3:]}"


def offset_now(zone_name: str) -> str:
    offset = datetime.now(UTC).astimezone(zone(zone_name)).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


_TEMPLATES.globals["quote"] = lambda text: quote(str(text), safe="")
_TEMPLATES.globals["when"] = when
_TEMPLATES.globals["zones"] = ZONES


def render(
    request: Request,
    viewer: Viewer | None,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    zone_name = viewer.session.zone if viewer else "UTC"
    html = _TEMPLATES.get_template(template).render(
        request=request,
        viewer=viewer,
        zone=zone_name,
        offset=offset_now(zone_name),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def error_page(request: Request, viewer: Viewer | None, exc: TrailsealError) -> HTMLResponse:
    """A domain error as a page: the status and words the API would answer."""
    problem = problem_for(exc)
    query_error = exc if isinstance(exc, QueryError) else None
    return render(
        request,
        viewer,
        "error.html.j2",
        status_code=problem.status,
        title=problem.title,
        message=problem.detail,
        query_error=query_error,
    )


P = ParamSpec("P")


def page(handler: Callable[P, Response]) -> Callable[P, Response]:
    """Wrap a page handler: sign-in when there is no session, an error page for a
    refused form or a domain error, and a plain 500 page (no trace) otherwise."""

    @functools.wraps(handler)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = next(a for a in (*args, *kwargs.values()) if isinstance(a, Request))
        try:
            return handler(*args, **kwargs)
        except SignInRequired as exc:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            where = f"/signin?next={quote(target, safe='')}"
            if exc.reason:
                where += "&expired=1"
            return RedirectResponse(where, status_code=303, headers=SECURITY_HEADERS)
        except FormRefused:
            return render(
                request,
                None,
                "error.html.j2",
                status_code=403,
                title="Form refused",
                message="The form did not carry this session's CSRF token, so it was not "
                "sent by this dashboard. Reload the page and send it again.",
            )
        except TrailsealError as exc:
            return error_page(request, _quiet_viewer(request), exc)
        except Exception:
            logger.exception("dashboard page %s failed", request.url.path)
            return render(
                request,
                None,
                "error.html.j2",
                status_code=500,
                title="Internal error",
                message="The page failed; the error is in the server's own log.",
            )

    return wrapped


def _quiet_viewer(request: Request) -> Viewer | None:
    try:
        return viewer(request)
    except SignInRequired:
        return None


_API = ("/v1/", "/healthz", "/metrics", "/openapi.json", "/static/")


def not_found(api_handler: Any) -> Callable[[Request, Exception], Any]:
    """The handler of HTTP errors: a 404 outside the API is a page for the dashboard's
    visitors; everything else goes to the API's handler (a problem document)."""

    async def handle(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code == 404
            and not path.startswith(_API)
        ):
            return render(
                request,
                None,
                "error.html.j2",
                status_code=404,
                title="Not found",
                message=f"There is no page at {path[:200]}.",
            )
        answer: Response = await api_handler(request, exc)
        return answer

    return handle
