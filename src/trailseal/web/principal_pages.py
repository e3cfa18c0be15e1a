"""Principals (administrators): create, rotate, revoke. A new token is shown once, on the
page that answers the form, and is never stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from trailseal.access import ALL_TENANTS, TOKEN_ROLES, Principal
from trailseal.errors import ConfigError
from trailseal.web.door import Viewer, check_form, dashboard, page, render, viewer

router = APIRouter(include_in_schema=False)


def _page(
    request: Request, found: Viewer, *, token: str | None = None, issued: Principal | None = None
) -> Response:
    listed = dashboard(request).app.principals.list(found.caller)
    return render(
        request,
        found,
        "principals.html.j2",
        principals=listed,
        roles=TOKEN_ROLES,
        token=token,
        issued=issued,
        every_tenant=ALL_TENANTS,
    )


@router.get("/principals")
@page
def principals(request: Request) -> Response:
    return _page(request, viewer(request))


@router.post("/principals")
@page
def create(
    request: Request,
    csrf: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    tenant: Annotated[str, Form(max_length=200)] = ALL_TENANTS,
) -> Response:
    found = viewer(request)
    check_form(found, {"csrf": csrf})
    if role not in TOKEN_ROLES:
        raise ConfigError(f"choose a role: {', '.join(TOKEN_ROLES)}")
    made, token = dashboard(request).app.principals.create(
        found.caller, name.strip(), role, tenant.strip() or ALL_TENANTS
    )
    return _page(request, found, token=token, issued=made)


@router.post("/principals/{principal_id}/{step}")
@page
def change(
    request: Request,
    principal_id: str,
    step: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """``rotate`` (a new token, shown once) or ``revoke``."""
    found = viewer(request)
    check_form(found, {"csrf": csrf})
    managed = dashboard(request).app.principals
    if step == "rotate":
        rotated, token = managed.rotate(found.caller, principal_id)
        return _page(request, found, token=token, issued=rotated)
    if step == "revoke":
        managed.revoke(found.caller, principal_id)
        return _page(request, found)
    raise ConfigError("the step is rotate or revoke")
