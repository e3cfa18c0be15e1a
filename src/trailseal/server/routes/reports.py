"""POST /v1/reports/{name}: a compliance report, rendered or as an evidence bundle."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from trailseal.app import REPORT_NAMES
from trailseal.server.deps import CallerDep, ServiceDep
from trailseal.server.problems import PROBLEM_RESPONSES

router = APIRouter(responses=PROBLEM_RESPONSES)
MEDIA = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "bundle": "application/zip",
}


class ReportRequest(BaseModel):
    """A report's parameters (each report's own, as on the command line) and how to
    deliver it. ``tickets`` is the ticket file's text for change-management."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["html", "pdf", "csv", "json", "bundle"] = "json"
    timezone: str = Field(default="UTC", max_length=64)
    resource: str | None = Field(default=None, max_length=512)
    actor: str | None = Field(default=None, max_length=256)
    document: str | None = Field(default=None, max_length=512)
    period: str | None = Field(default=None, max_length=128)
    from_: str | None = Field(default=None, alias="from", max_length=64)
    to: str | None = Field(default=None, max_length=64)
    lists: Literal["collapsed", "shown"] | None = None
    phi: str | None = Field(default=None, max_length=4096)
    hours: str | None = Field(default=None, max_length=32)
    changes: str | None = Field(default=None, max_length=4096)
    tickets: str | None = Field(default=None, max_length=64 * 1024 * 1024)
    tickets_name: str | None = Field(default=None, max_length=256)


Name = Annotated[
    Literal[REPORT_NAMES],  # type: ignore[valid-type]
    PathParam(description="the report"),
]


@router.post(
    "/v1/reports/{name}",
    response_class=Response,
    responses={
        200: {
            "description": "The report in the format asked for, or its evidence bundle",
            "content": {
                media: {"schema": {"type": "object"}}
                if media == "application/json"
                else {"schema": {"type": "string", "format": "binary"}}
                for media in MEDIA.values()
            },
        }
    },
)
def produce(name: Name, body: ReportRequest, service: ServiceDep, caller: CallerDep) -> Response:
    """Produce a report for the caller (its tenant's entries only; recorded as
    report.produce). ``format: bundle`` answers the evidence bundle (a zip)."""
    params = {
        key: value
        for key, value in body.model_dump(by_alias=True, exclude={"format", "timezone"}).items()
        if value is not None
    }
    reports = service.app.reports
    report = reports.produce(caller, name, params, timezone=body.timezone)
    if body.format == "bundle":
        content = reports.bundle(caller, report)
        disposition = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
        return Response(content, media_type=MEDIA["bundle"], headers=disposition)
    return Response(reports.render(report, body.format), media_type=MEDIA[body.format])
