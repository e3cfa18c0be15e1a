"""Signing in (with an API token), signing out, and the viewer's time zone."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from trailseal.errors import AuthenticationError
from trailseal.reports.model import zone
from trailseal.web.door import (
    SECURITY_HEADERS,
    SERVICE,
    check_form,
    client_ip,
    dashboard,
    page,
    pages_for,
    render,
    viewer,
)
from trailseal.web.sessions import COOKIE, SIGNIN_COOKIE, same

router = APIRouter(include_in_schema=False)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another origin."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _signin_page(
    request: Request, target: str | None, message: str | None, status_code: int = 200
) -> Response:
    """The sign-in form with a fresh CSRF token of its own, kept in a cookie for the post."""
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        None,
        "signin.html.j2",
        status_code=status_code,
        csrf=token,
        next=_safe_next(target),
        message=message,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/signin",
    )
    return response


@router.get("/signin")
def signin_form(request: Request, next: str | None = None, expired: str | None = None) -> Response:  # noqa: A002 - the parameter's name in the URL
    return _signin_page(request, next, "Your session expired; sign in again." if expired else None)


@router.post("/signin")
def signin(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002 - the form field's name
) -> Response:
    board = dashboard(request)
    if not same(csrf, request.cookies.get(SIGNIN_COOKIE, "")):
        return render(
            request,
            None,
            "error.html.j2",
            status_code=403,
            title="Form refused",
            message="The sign-in form did not carry its CSRF token; reload the page and "
            "sign in again.",
        )
    try:
        principal = board.app.principals.sign_in(token or None, client_ip(request), SERVICE)
    except AuthenticationError:
        return _signin_page(request, next, "That token is unknown, malformed or revoked.", 401)
    session = board.sessions.start(principal.id, principal.token_hint)
    landing = _safe_next(next)
    if landing == "/":  # the first page the role may open (an administrator's reads no event)
        pages = pages_for(principal.role)
        landing = pages[0][0] if pages else "/"
    response = RedirectResponse(landing, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
@page
def signout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    found = viewer(request)
    check_form(found, {"csrf": csrf})
    dashboard(request).app.principals.sign_out(found.caller)
    dashboard(request).sessions.end(found.session.id)
    response = RedirectResponse("/signin", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/zone")
@page
def choose_zone(
    request: Request,
    zone_name: Annotated[str, Form(alias="zone", max_length=64)] = "UTC",
    csrf: Annotated[str, Form(max_length=200)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Show times in another zone (any IANA name); the offset is always shown."""
    found = viewer(request)
    check_form(found, {"csrf": csrf})
    zone(zone_name)  # an unknown zone is a ConfigError, shown as a page
    found.session.zone = zone_name
    return RedirectResponse(_safe_next(back), status_code=303, headers=SECURITY_HEADERS)
