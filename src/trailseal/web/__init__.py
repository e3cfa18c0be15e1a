"""The compliance dashboard: server-rendered pages over the application layer.

Served by `trailseal serve` at ``/`` beside the API. Every page calls the application
layer and nothing else, so what a page shows and allows follows the principal's role
and tenant exactly as the API does, and every read it makes is recorded. See
docs/dashboard.md.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from trailseal.app import App
from trailseal.web import alert_pages, auth, log_pages, principal_pages, report_pages
from trailseal.web.door import Dashboard, not_found
from trailseal.web.sessions import IDLE_SECONDS, Sessions

__all__ = ["IDLE_SECONDS", "mount"]


def mount(app: FastAPI, application: App, idle_seconds: float = IDLE_SECONDS) -> None:
    """Add the dashboard's pages and static files to ``app``."""
    app.state.dashboard = Dashboard(application, Sessions(idle=idle_seconds))
    for module in (auth, log_pages, alert_pages, report_pages, principal_pages):
        app.include_router(module.router)
    app.add_api_route("/favicon.ico", _no_icon, include_in_schema=False)
    static = files("trailseal.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # An address nothing answers is a page that says so; the API's stay problem documents.
    api_handler = app.exception_handlers[StarletteHTTPException]
    app.add_exception_handler(StarletteHTTPException, not_found(api_handler))


def _no_icon() -> Response:
    """Browsers ask for an icon on every page; there is none (and no 404 in their logs)."""
    return Response(status_code=204)
