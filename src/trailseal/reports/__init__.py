"""Compliance reports and evidence bundles (docs/reports.md).

A report is built from entries the application layer has already scoped to the
principal that asked (:class:`~trailseal.reports.model.Source`), rendered as HTML, PDF,
CSV or JSON, and packed with the entries it cites and their inclusion proofs into an
evidence bundle that :func:`verify_bundle` checks with no database.
"""

from trailseal.reports.bundle import BundleParts, BundleReport, build, verify_bundle
from trailseal.reports.changes import change_management
from trailseal.reports.documents import DocumentCheck, check_document, document_trail
from trailseal.reports.entries import entries_report
from trailseal.reports.hipaa import hipaa_access
from trailseal.reports.history import record_history
from trailseal.reports.model import Builder, Moment, Producer, Report, Section, Source
from trailseal.reports.procedures import Environment, procedures
from trailseal.reports.render import FORMATS, MEDIA_TYPES, render
from trailseal.reports.timeline import actor_timeline

# Every report by name: what `trailseal report NAME` and POST /v1/reports/NAME produce.
REPORTS: dict[str, Builder] = {
    "record-history": record_history,
    "hipaa-access": hipaa_access,
    "actor-timeline": actor_timeline,
    "document-trail": document_trail,
    "change-management": change_management,
    "procedures": procedures,
    "entries": entries_report,
}

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "REPORTS",
    "Builder",
    "BundleParts",
    "BundleReport",
    "DocumentCheck",
    "Environment",
    "Moment",
    "Producer",
    "Report",
    "Section",
    "Source",
    "build",
    "check_document",
    "render",
    "verify_bundle",
]
