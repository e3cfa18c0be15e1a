"""Capture at the source: web middleware and what handlers add to it."""

from trailseal.capture.asgi import AuditMiddleware
from trailseal.capture.context import set_actor, set_count, set_resource
from trailseal.capture.explicit import AuditTrail
from trailseal.capture.request import Emitter, MemoryEmitter, Resource
from trailseal.capture.values import json_safe
from trailseal.capture.wsgi import WSGIAuditMiddleware, instrument_flask

__all__ = [
    "AuditMiddleware",
    "AuditTrail",
    "Emitter",
    "MemoryEmitter",
    "Resource",
    "WSGIAuditMiddleware",
    "instrument_flask",
    "json_safe",
    "set_actor",
    "set_count",
    "set_resource",
]
