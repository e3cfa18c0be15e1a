"""Alerts raised by the detection engine: list and read (security, auditor), acknowledge
and resolve (security). Reads are entries in the log (``alert.read``: reading alerts is
not reading the log's events), and so is every change of status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from trailseal.access import Permission, Principal
from trailseal.detect.store import DetectionStore, open_store
from trailseal.errors import NotFoundError
from trailseal.server.deps import CallerDep, ServiceDep, allow, client_ip
from trailseal.server.problems import PROBLEM_RESPONSES, Problem
from trailseal.server.service import Service

router = APIRouter(responses=PROBLEM_RESPONSES)
AlertId = Annotated[int, Path(ge=1, le=2**62)]


class Acknowledgement(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class Resolution(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@contextmanager
def _alerts(service: Service) -> Iterator[DetectionStore]:
    store = open_store(service.ledger.settings.data_dir)
    try:
        yield store
    except NotFoundError as exc:
        raise Problem(404, "No such alert", str(exc)) from None
    finally:
        store.close()


@router.get("/v1/alerts")
def list_alerts(
    request: Request,
    service: ServiceDep,
    caller: CallerDep,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    rule: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    """Alerts, oldest first, each with the entry indexes that are its evidence."""
    allow(service, caller, Permission.READ_ALERTS, request)
    with _alerts(service) as store:
        found = [a.to_json() for a in store.alerts(status=status, rule=rule)]
    service.record("alert.read", caller, source_ip=client_ip(request), resource={"type": "alert"})
    return {"alerts": found}


@router.get("/v1/alerts/{alert_id}")
def get_alert(
    alert_id: AlertId, request: Request, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    allow(service, caller, Permission.READ_ALERTS, request)
    with _alerts(service) as store:
        found = store.alert(alert_id).to_json()
    service.record(
        "alert.read",
        caller,
        source_ip=client_ip(request),
        resource={"type": "alert", "id": str(alert_id)},
    )
    return found


def _change(  # noqa: PLR0913 - a status change, who asks and where
    alert_id: int,
    status: str,
    reason: str | None,
    *,
    request: Request,
    service: Service,
    caller: Principal,
) -> dict[str, Any]:
    from trailseal.detect.engine import record_status  # noqa: PLC0415 - pySigma loads on first use

    allow(service, caller, Permission.MANAGE_ALERTS, request)
    with _alerts(service) as store:
        return record_status(
            service.ledger, store, alert_id, status=status, reason=reason, actor=caller.name
        )


@router.post("/v1/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: AlertId,
    body: Acknowledgement,
    request: Request,
    service: ServiceDep,
    caller: CallerDep,
) -> dict[str, Any]:
    return _change(
        alert_id, "acknowledged", body.note, request=request, service=service, caller=caller
    )


@router.post("/v1/alerts/{alert_id}/resolve")
def resolve(
    alert_id: AlertId, body: Resolution, request: Request, service: ServiceDep, caller: CallerDep
) -> dict[str, Any]:
    return _change(
        alert_id, "resolved", body.reason, request=request, service=service, caller=caller
    )
