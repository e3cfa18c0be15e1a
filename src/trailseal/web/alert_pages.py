"""Alerts triage: cases by actor, one alert with its history, and the changes of state.

The states are the detection engine's: new (``open``), under review (``acknowledged``)
and closed (``resolved``, with a disposition). Every change and every note is an entry
in the log, and an alert's history is read back from those entries.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from trailseal.access import Permission
from trailseal.app.alerts import DISPOSITIONS, STATUSES, cases
from trailseal.errors import ConfigError, NotFoundError
from trailseal.web.door import SECURITY_HEADERS, check_form, dashboard, page, render, viewer

router = APIRouter(include_in_schema=False)
STATE_NAMES = {"open": "new", "acknowledged": "under review", "resolved": "closed"}
DISPOSITION_NAMES = {
    "explained": "explained",
    "false-positive": "false positive",
    "confirmed": "violation confirmed",
}
SEVERITIES = ("critical", "high", "medium", "low", "informational")
_NOTE = 2000


def _alert_id(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 2**62:
        raise NotFoundError(f"{text[:40]!r} is not an alert's number")
    return int(text)


@router.get("/alerts")
@page
def alerts(
    request: Request, status: str = "", severity: str = "", rule: str = "", actor: str = ""
) -> Response:
    """Alerts as cases (one per actor), filtered by state, severity, rule or actor."""
    found = viewer(request)
    if status and status not in STATUSES:
        raise ConfigError(f"status is one of {', '.join(STATUSES)}")
    listed = dashboard(request).app.alerts.list(found.caller, status or None, rule or None)
    listed = [a for a in listed if not severity or a.severity == severity]
    grouped = [(who, items) for who, items in cases(listed) if not actor or who == actor]
    return render(
        request,
        found,
        "alerts.html.j2",
        cases=grouped,
        count=sum(len(items) for _, items in grouped),
        status=status,
        severity=severity,
        rule=rule,
        actor=actor,
        statuses=STATUSES,
        severities=SEVERITIES,
        states=STATE_NAMES,
        dispositions=DISPOSITION_NAMES,
    )


@router.get("/alerts/{alert_id}")
@page
def alert(request: Request, alert_id: str) -> Response:
    found = viewer(request)
    number = _alert_id(alert_id)
    board = dashboard(request)
    shown = board.app.alerts.get(found.caller, number)
    history = board.app.alerts.history(found.caller, number)
    return render(
        request,
        found,
        "alert.html.j2",
        alert=shown,
        history=history,
        states=STATE_NAMES,
        dispositions=DISPOSITION_NAMES,
        may_triage=found.may(Permission.MANAGE_ALERTS),
    )


@router.post("/alerts/{alert_id}")
@page
def triage(
    request: Request,
    alert_id: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
    step: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=_NOTE)] = "",
    disposition: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """One triage step: ``review`` (under review), ``close`` (with a disposition and a
    reason), or ``note``."""
    found = viewer(request)
    check_form(found, {"csrf": csrf})
    number = _alert_id(alert_id)
    alerts_ = dashboard(request).app.alerts
    text = note.strip() or None
    if step == "review":
        alerts_.change(found.caller, number, "acknowledged", text)
    elif step == "close":
        if disposition not in DISPOSITIONS:
            raise ConfigError("choose how the alert is closed")
        if text is None:
            raise ConfigError("say why the alert is closed")
        alerts_.change(found.caller, number, "resolved", text, disposition)
    elif step == "note":
        alerts_.note(found.caller, number, note)
    else:
        raise ConfigError("the step is review, close or note")
    return RedirectResponse(f"/alerts/{number}", status_code=303, headers=SECURITY_HEADERS)
