"""The tenant rule, defined once: an entry belongs to its resource's tenant, else its actor's.

Every door, the search index and the detection engine ask this module; none
spells the rule again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailseal.events import Event

ALL_TENANTS = "*"


def tenant_of(resource_tenant: str | None, actor_tenant: str | None) -> str | None:
    """The tenant of an event with these two fields: the resource's wins."""
    return resource_tenant or actor_tenant


def event_tenant(event: Event) -> str | None:
    """The tenant of a parsed event."""
    return tenant_of(event.resource.tenant if event.resource else None, event.actor.tenant)


def entry_tenant(event: Mapping[str, Any]) -> str | None:
    """The tenant of an entry's event, as stored (decoded JSON)."""
    resource = event.get("resource") or {}
    actor = event.get("actor") or {}
    return tenant_of(resource.get("tenant"), actor.get("tenant"))


def sees(bound_to: str, tenant: str | None) -> bool:
    """Whether a principal bound to ``bound_to`` may see or write entries of ``tenant``."""
    return bound_to in (ALL_TENANTS, tenant)
