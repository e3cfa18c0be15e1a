"""The application layer: the operations users perform, each given the caller that asks.

It applies the role table and the tenant rule (:mod:`trailseal.access`), writes the
log's own entries (every read, refusal, export, verification and principal change)
and raises domain errors only. The HTTP routes, the CLI and the web pages are thin
adapters over it.
"""

from trailseal.app.caller import Caller
from trailseal.app.core import App
from trailseal.app.entries import AppendOutcome, CheckedBatch, search_filter
from trailseal.app.imports import ImportSummary, Tenancy
from trailseal.reports import REPORTS

REPORT_NAMES = tuple(REPORTS)  # for the doors' schemas

__all__ = [
    "REPORT_NAMES",
    "App",
    "AppendOutcome",
    "Caller",
    "CheckedBatch",
    "ImportSummary",
    "Tenancy",
    "search_filter",
]
