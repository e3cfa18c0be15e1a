"""Capture at the source: web middleware and what handlers add to it."""

from trailseal.capture.asgi import AuditMiddleware, Emitter, MemoryEmitter, Resource
from trailseal.capture.context import set_actor, set_count

__all__ = ["AuditMiddleware", "Emitter", "MemoryEmitter", "Resource", "set_actor", "set_count"]
