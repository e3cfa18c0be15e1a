"""Capture at the source: web middleware and what handlers add to it."""

from trailseal.capture.asgi import AuditMiddleware
from trailseal.capture.context import set_actor, set_count
from trailseal.capture.request import Emitter, MemoryEmitter, Resource
from trailseal.capture.wsgi import WSGIAuditMiddleware, instrument_flask

__all__ = [
    "AuditMiddleware",
    "Emitter",
    "MemoryEmitter",
    "Resource",
    "WSGIAuditMiddleware",
    "instrument_flask",
    "set_actor",
    "set_count",
]
