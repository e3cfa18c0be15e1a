"""Reports: produce any report for chosen parameters, download it and its evidence
bundle (the same production: the bundle proves the report downloaded beside it), and
see the scheduled ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from trailseal.app import REPORT_NAMES
from trailseal.errors import ConfigError, NotFoundError
from trailseal.reports import FORMATS, MEDIA_TYPES
from trailseal.reports.model import now_utc
from trailseal.web.door import SECURITY_HEADERS, check_form, dashboard, page, render, viewer
from trailseal.web.sessions import Produced

router = APIRouter(include_in_schema=False)
# The parameters the form offers, each passed to the report only when filled in; a
# report refuses one it does not take, naming it.
PARAMETERS = ("period", "from", "to", "actor", "resource", "document", "changes", "phi")
_FIELD = 512


@router.get("/reports")
@page
def reports(request: Request, done: str = "") -> Response:
    found = viewer(request)
    board = dashboard(request)
    produced = found.session.produced.get(done) if done else None
    schedules = board.app.reports.schedules().schedules
    return render(
        request,
        found,
        "reports.html.j2",
        names=REPORT_NAMES,
        formats=FORMATS,
        produced=produced,
        done=done,
        schedules=schedules,
    )


@router.post("/reports")
@page
def produce(
    request: Request,
    csrf: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=64)] = "",
    fmt: Annotated[str, Form(alias="format", max_length=8)] = "html",
    period: Annotated[str, Form(max_length=_FIELD)] = "",
    from_: Annotated[str, Form(alias="from", max_length=_FIELD)] = "",
    to: Annotated[str, Form(max_length=_FIELD)] = "",
    actor: Annotated[str, Form(max_length=_FIELD)] = "",
    resource: Annotated[str, Form(max_length=_FIELD)] = "",
    document: Annotated[str, Form(max_length=_FIELD)] = "",
    changes: Annotated[str, Form(max_length=4096)] = "",
    phi: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """Produce the report (recorded as report.produce) and its evidence bundle, kept in
    the session for download."""
    found = viewer(request)
    check_form(found, {"csrf": csrf})
    if name not in REPORT_NAMES:
        raise ConfigError(f"choose a report: {', '.join(REPORT_NAMES)}")
    if fmt not in FORMATS:
        raise ConfigError(f"choose a format: {', '.join(FORMATS)}")
    given = dict(
        zip(PARAMETERS, (period, from_, to, actor, resource, document, changes, phi), strict=True)
    )
    params = {key: value.strip() for key, value in given.items() if value.strip()}
    board = dashboard(request).app.reports
    report = board.produce(found.caller, name, params, timezone=found.session.zone)
    rendered = board.render(report, fmt)
    bundle = board.bundle(found.caller, report)
    key = found.session.keep(Produced(name, fmt, rendered, bundle, now_utc()))
    return RedirectResponse(f"/reports?done={key}", status_code=303, headers=SECURITY_HEADERS)


@router.get("/reports/{key}/{part}")
@page
def download(request: Request, key: str, part: str) -> Response:
    """A produced report (``report``) or its evidence bundle (``bundle``)."""
    found = viewer(request)
    produced = found.session.produced.get(key)
    if produced is None or part not in ("report", "bundle"):
        raise NotFoundError("no such report in this session; produce it again")
    if part == "bundle":
        body, media, filename = produced.bundle, "application/zip", f"{produced.name}.zip"
    else:
        body, media = produced.report, MEDIA_TYPES[produced.fmt]
        filename = f"{produced.name}.{produced.fmt}"
    headers = SECURITY_HEADERS | {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=media, headers=headers)
