"""trailseal: a tamper-evident audit log for regulated systems."""

from trailseal.checkpoints import Checkpoint, Signer, Verifier
from trailseal.errors import (
    BatchError,
    CaptureError,
    ConfigError,
    EventError,
    IdConflictError,
    NotFoundError,
    ProofError,
    StorageError,
    StoreUnavailableError,
    TamperError,
    TrailsealError,
    VerificationError,
)
from trailseal.events import Event, canonical, parse_event
from trailseal.ledger import (
    AppendResult,
    ConsistencyProof,
    EntryView,
    InclusionProof,
    Ledger,
    SearchFilter,
    VerificationReport,
    verify_export,
)
from trailseal.proofs import verify_consistency, verify_inclusion

__version__ = "0.1.0"

__all__ = [
    "AppendResult",
    "BatchError",
    "CaptureError",
    "Checkpoint",
    "ConfigError",
    "ConsistencyProof",
    "EntryView",
    "Event",
    "EventError",
    "IdConflictError",
    "InclusionProof",
    "Ledger",
    "NotFoundError",
    "ProofError",
    "SearchFilter",
    "Signer",
    "StorageError",
    "StoreUnavailableError",
    "TamperError",
    "TrailsealError",
    "VerificationError",
    "VerificationReport",
    "Verifier",
    "__version__",
    "canonical",
    "parse_event",
    "verify_consistency",
    "verify_export",
    "verify_inclusion",
]
