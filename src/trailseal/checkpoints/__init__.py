"""Checkpoints: C2SP signed notes over a log's size and root, with Ed25519 keys."""

from trailseal.checkpoints.checkpoint import Checkpoint
from trailseal.checkpoints.deployment import DeploymentCheckpoint, LogHead
from trailseal.checkpoints.note import Signer, Verifier, key_id, open_note

__all__ = [
    "Checkpoint",
    "DeploymentCheckpoint",
    "LogHead",
    "Signer",
    "Verifier",
    "key_id",
    "open_note",
]
