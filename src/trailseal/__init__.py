"""trailseal: a tamper-evident audit log for regulated systems.

The names below load on first use (PEP 562), so that ``import trailseal.client`` or
``trailseal.capture`` in an application that only sends events loads neither the ledger,
the server nor the detection engine, and ``trailseal --version`` starts at once.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name: the module it comes from
_PUBLIC = {
    "AppendResult": "trailseal.ledger",
    "BatchError": "trailseal.errors",
    "CaptureError": "trailseal.errors",
    "Checkpoint": "trailseal.checkpoints",
    "ConfigError": "trailseal.errors",
    "ConsistencyProof": "trailseal.ledger",
    "EntryView": "trailseal.ledger",
    "Event": "trailseal.events",
    "EventError": "trailseal.errors",
    "IdConflictError": "trailseal.errors",
    "InclusionProof": "trailseal.ledger",
    "Ledger": "trailseal.ledger",
    "NotFoundError": "trailseal.errors",
    "ProofError": "trailseal.errors",
    "SearchFilter": "trailseal.ledger",
    "Signer": "trailseal.checkpoints",
    "StorageError": "trailseal.errors",
    "StoreUnavailableError": "trailseal.errors",
    "TamperError": "trailseal.errors",
    "TrailsealError": "trailseal.errors",
    "VerificationError": "trailseal.errors",
    "VerificationReport": "trailseal.ledger",
    "Verifier": "trailseal.checkpoints",
    "canonical": "trailseal.events",
    "parse_event": "trailseal.events",
    "verify_consistency": "trailseal.proofs",
    "verify_export": "trailseal.ledger",
    "verify_inclusion": "trailseal.proofs",
}

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


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'trailseal' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
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
