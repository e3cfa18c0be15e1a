"""The ledger: sequencing, storage and verification of one append-only log."""

from trailseal.ledger.log import ConsistencyProof, EntryView, InclusionProof, Ledger
from trailseal.ledger.search import SearchFilter
from trailseal.ledger.sequencer import AppendResult
from trailseal.ledger.verify import VerificationReport, verify_export

__all__ = [
    "AppendResult",
    "ConsistencyProof",
    "EntryView",
    "InclusionProof",
    "Ledger",
    "SearchFilter",
    "VerificationReport",
    "verify_export",
]
