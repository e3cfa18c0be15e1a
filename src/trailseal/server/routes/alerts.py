"""Alerts raised by the detection engine: list and read (security, auditor); acknowledge,
note and resolve with a disposition (security). Reads are entries in the log
(``alert.read``: reading alerts is not reading the log's events), and so is every change
of status and every note."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES

router = APIRouter(responses=PROBLEM_RESPONSES)
AlertId = Annotated[int, Path(ge=1, le=2**62)]


class Acknowledgement(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class Resolution(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    disposition: Literal["explained", "false-positive", "confirmed"] | None = Field(
        default=None, description="how the alert is closed"
    )


class Note(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


@router.get("/v1/alerts")
def list_alerts(
    service: ServiceDep,
    caller: CallerDep,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    rule: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    """Alerts, oldest first, each with the entry indexes that are its evidence."""
    found = service.app.alerts.list(caller, status=status, rule=rule)
    return {"alerts": [alert.to_json() for alert in found]}


@router.get("/v1/alerts/{alert_id}")
def get_alert(alert_id: AlertId, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    return service.app.alerts.get(caller, alert_id).to_json()


@router.post("/v1/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: AlertId, body: Acknowledgement, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    return service.app.alerts.change(caller, alert_id, "acknowledged", body.note)


@router.post("/v1/alerts/{alert_id}/resolve")
def resolve(
    alert_id: AlertId, body: Resolution, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    return service.app.alerts.change(caller, alert_id, "resolved", body.reason, body.disposition)


@router.post("/v1/alerts/{alert_id}/notes")
def add_note(
    alert_id: AlertId, body: Note, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    """A note on the alert's triage (``alert.noted``); its state is unchanged."""
    return service.app.alerts.note(caller, alert_id, body.note)


@router.get("/v1/alerts/{alert_id}/history")
def history(alert_id: AlertId, service: ServiceDep, caller: CallerDep) -> dict[str, Any]:
    """The log's entries about the alert (raised, merged, acknowledged, noted, resolved),
    oldest first, each with its index."""
    found = service.app.alerts.history(caller, alert_id)
    return {"entries": [{"index": view.index, "entry": view.entry} for view in found]}
