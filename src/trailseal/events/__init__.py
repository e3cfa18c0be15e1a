"""Events: the schema applications report, parsed at the boundary, and canonical bytes."""

from trailseal.events.canonical import canonical
from trailseal.events.model import (
    Actor,
    Context,
    Event,
    Geo,
    Outcome,
    Request,
    Resource,
    Source,
)
from trailseal.events.parse import (
    DEFAULT_MAX_EVENT_BYTES,
    EventLimits,
    event_from_mapping,
    exact_json,
    parse_event,
)

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "Actor",
    "Context",
    "Event",
    "EventLimits",
    "Geo",
    "Outcome",
    "Request",
    "Resource",
    "Source",
    "canonical",
    "event_from_mapping",
    "exact_json",
    "parse_event",
]
